//go:build race

package check

// raceEnabled: the race detector slows the reference model down ~10×.
const raceEnabled = true
