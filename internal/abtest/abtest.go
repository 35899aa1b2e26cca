// Package abtest runs the two sides of an A/B benchmark in turns, so
// that a machine whose load changes from second to second loads both
// alike: each round runs both, and which goes first alternates.
package abtest

// Round runs round i of an A/B comparison: run(a) then run(b) on even
// rounds, the other way round on odd ones, so neither side always
// follows the other.
func Round[S any](i int, a, b S, run func(S)) {
	if i%2 == 0 {
		run(a)
		run(b)
		return
	}
	run(b)
	run(a)
}
