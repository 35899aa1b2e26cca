package storage

import "context"

// InstanceIdentifier is implemented by engines that keep a random
// identity, created once with the datastore and never changed. The server
// binds zookies to it, so a zookie from one datastore is refused by
// another instead of naming an unrelated revision. Engines that do not
// implement it leave the choice to the opener (cmd/pemba keeps an ID file
// beside an embedded store and a per-process ID for a memory one).
type InstanceIdentifier interface {
	InstanceID(ctx context.Context) (string, error)
}
