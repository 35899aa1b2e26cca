package main

import "fmt"

// Descriptor budget of `pemba serve`: each listener may hold
// --max-connections connections, and reservedDescriptors stay free for
// everything else, so a flood of connections cannot starve the datastore.
const (
	// reservedDescriptors are kept out of the connection budget: Pebble's
	// table cache keeps up to 1000 tables open by default, plus its WAL,
	// manifest and lock files; a SQL datastore's pool holds up to 16
	// connections by default; and the process has its own files (logs,
	// TLS material, the in-process gateway).
	reservedDescriptors = 1024
	// defaultMaxConnections is the per-listener cap when the open-file
	// limit allows it.
	defaultMaxConnections = 4096
	// minMaxConnections is the smallest per-listener cap serve accepts.
	minMaxConnections = 64
)

// connectionLimit returns the per-listener connection cap: requested, or
// when requested is 0 the default lowered to fit the open-file limit
// nofile. It refuses a cap the limit cannot honour.
func connectionLimit(requested, listeners int, nofile uint64) (int, error) {
	budget := 0
	if nofile > reservedDescriptors {
		budget = int(min(nofile-reservedDescriptors, 1<<30)) / listeners
	}
	switch {
	case requested < 0:
		return 0, fmt.Errorf("--max-connections %d is negative", requested)
	case requested == 0 && budget >= minMaxConnections:
		return min(defaultMaxConnections, budget), nil
	case requested == 0:
		return 0, fmt.Errorf("the open-file limit (ulimit -n) is %d: with %d descriptors reserved for the datastore, "+
			"%d listeners get fewer than %d connections each; raise the limit (ulimit -n, LimitNOFILE=)",
			nofile, reservedDescriptors, listeners, minMaxConnections)
	case requested > budget:
		return 0, fmt.Errorf("--max-connections %d on %d listeners needs %d descriptors besides the %d reserved for the datastore, "+
			"but the open-file limit (ulimit -n) is %d: lower --max-connections to at most %d or raise the limit",
			requested, listeners, requested*listeners, reservedDescriptors, nofile, budget)
	}
	return requested, nil
}
