// Package cputime reads the CPU time the process has used, which the
// benchmarks report beside wall time: on a shared machine wall time
// mostly measures waiting for a core, CPU time does not.
package cputime
