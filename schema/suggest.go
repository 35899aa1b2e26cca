package schema

import "sort"

// maxSuggestBytes bounds the names suggest compares: edit distance costs
// the product of the lengths, and no valid name is longer.
const maxSuggestBytes = 256

// hint is suggest for an error sink reports to: it computes the candidates
// only when sink will keep the error.
func hint(sink *errorSink, name string, candidates func() []string) string {
	if sink.full() || len(name) > maxSuggestBytes {
		return ""
	}
	return suggest(name, candidates())
}

// suggest returns the candidate closest to name by edit distance, when it
// is close enough to be a likely typo, or "".
func suggest(name string, candidates []string) string {
	if len(name) > maxSuggestBytes {
		return ""
	}
	// Allow about one edit per three characters, at least one.
	limit := max(len(name)/3, 1)
	best, bestDist := "", -1
	sorted := append([]string(nil), candidates...)
	sort.Strings(sorted)
	for _, c := range sorted {
		// The distance is at least the difference in length.
		if c == name || len(c) > len(name)+limit || len(name) > len(c)+limit {
			continue
		}
		d := editDistance(name, c)
		// Ties go to the candidate sharing more of name's ends: "viewr"
		// means "viewer" rather than "view".
		if bestDist < 0 || d < bestDist || (d == bestDist && sharedEnds(name, c) > sharedEnds(name, best)) {
			best, bestDist = c, d
		}
	}
	if bestDist < 0 || bestDist > limit {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// sharedEnds is the length of the common prefix plus the common suffix.
func sharedEnds(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	m := 0
	for m < len(a)-n && m < len(b)-n && a[len(a)-1-m] == b[len(b)-1-m] {
		m++
	}
	return n + m
}
