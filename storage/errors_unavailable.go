package storage

import "errors"

// ErrUnavailable: the engine could not reach its database (a refused or
// dropped connection, a database shutting down). The same request may
// succeed later, so the server answers UNAVAILABLE, which clients retry
// with backoff. A write cut off during its commit may or may not have
// been applied, as with any UNAVAILABLE. Engines wrap the driver's error
// with it, keeping the driver's message for the logs.
var ErrUnavailable = errors.New("datastore unavailable")
