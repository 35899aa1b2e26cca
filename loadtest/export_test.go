package loadtest

// SetBigLookup sets the fewest results of a lookup whose time per 1,000
// results is recorded, and returns a function that restores it.
func SetBigLookup(n int) (restore func()) {
	old := bigLookup
	bigLookup = n
	return func() { bigLookup = old }
}
