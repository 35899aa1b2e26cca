package loadtest

// SetBigAnswer sets the fewest results of a lookup, or nodes of an
// expanded tree, whose time per 1,000 is recorded, and returns a function
// that restores it.
func SetBigAnswer(n int) (restore func()) {
	old := bigAnswer
	bigAnswer = n
	return func() { bigAnswer = old }
}
