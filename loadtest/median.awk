# median.awk reads Markdown rows of the load-test table (see
# loadtest.MarkdownHeader), several runs of the same rows, and prints one
# row per dataset, workload, concurrency and operation, in the order each
# first appears: every numeric cell is the median of that cell over the
# runs (the mean of the two middle values when they are even), so one
# slow or fast run on a shared machine moves it little. The count column
# becomes "median (of N)". Other lines are ignored. It runs under any
# POSIX awk.
#
#   awk -f loadtest/median.awk rows.md

function trim(s) {
	gsub(/^ +| +$/, "", s)
	return s
}

# median of the n values vals[key, 1..n], formatted like the input cells
# (decimals of the first value, a trailing % kept).
function median(key, col, n,    i, j, v, a, m, pct, dec, first) {
	first = vals[key, col, 1]
	pct = first ~ /%$/
	dec = 0
	if (match(first, /\.[0-9]+/)) dec = RLENGTH - 1
	for (i = 1; i <= n; i++) {
		v = vals[key, col, i]
		sub(/%$/, "", v)
		a[i] = v + 0
	}
	for (i = 2; i <= n; i++) {
		v = a[i]
		for (j = i - 1; j >= 1 && a[j] > v; j--) a[j + 1] = a[j]
		a[j + 1] = v
	}
	m = (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	return sprintf("%." dec "f", m) (pct ? "%" : "")
}

/^\| [a-z]/ && !/^\| dataset \|/ {
	ncell = split($0, cell, "|")
	key = trim(cell[2]) SUBSEP trim(cell[3]) SUBSEP trim(cell[4]) SUBSEP trim(cell[5])
	if (!(key in runs)) {
		order[++keys] = key
		width[key] = ncell
		for (c = 2; c <= 5; c++) label[key, c] = trim(cell[c])
	}
	r = ++runs[key]
	for (c = 6; c < ncell; c++) {
		v = trim(cell[c])
		vals[key, c, r] = v
		if (v !~ /^-?[0-9.]+%?$/) text[key, c] = v
	}
}

END {
	for (k = 1; k <= keys; k++) {
		key = order[k]
		n = runs[key]
		line = "|"
		for (c = 2; c <= 5; c++) line = line " " label[key, c] " |"
		for (c = 6; c < width[key]; c++) {
			if ((key, c) in text) v = text[key, c]
			else v = median(key, c, n)
			if (c == 6) v = v " (of " n ")"
			line = line " " v " |"
		}
		print line
	}
}
