//go:build race

package storagetest

// raceEnabled shrinks the suite's bulk subtests under the race detector,
// which slows engines down tenfold.
const raceEnabled = true
