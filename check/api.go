package check

import (
	"errors"
	"time"

	"github.com/pembadb/pemba/check/dispatch"
	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/relchanges"
)

// Permissionship is the answer to a permission question. It is the type
// the resolver layers of package check/dispatch carry, under this name.
type Permissionship = dispatch.Permissionship

const (
	// NoPermission: the subject does not have the permission.
	NoPermission = dispatch.No
	// HasPermission: the subject has the permission.
	HasPermission = dispatch.Yes
	// Conditional: the answer depends on caveat parameters the request did
	// not supply; Result.Missing names them.
	Conditional = dispatch.Maybe
)

// Errors callers branch on.
var (
	// ErrMaxDepth: the evaluation needed more than Config.MaxDepth nested
	// dispatches. The request has no answer; it is never guessed.
	ErrMaxDepth = errors.New("max depth exceeded")
	// ErrCycleThroughExclusion: the data forms a cycle that passes through
	// the subtracted side of an exclusion, which has no well-defined answer.
	ErrCycleThroughExclusion = errors.New("relationship cycle through an exclusion")
	// ErrInvalidRequest: the request names a type, relation or permission
	// the schema does not define, or is otherwise malformed.
	ErrInvalidRequest = errors.New("invalid request")
)

// RequestError is a request naming what the schema does not define.
// Part is the part of the request at fault, in the domain's words:
// "resource.type", "permission", "subject.type" or "subject.relation".
// errors.Is(err, ErrInvalidRequest) holds.
type RequestError struct {
	Part    string
	Message string
}

func (e *RequestError) Error() string { return e.Part + ": " + e.Message }

// Is makes a RequestError an ErrInvalidRequest.
func (e *RequestError) Is(target error) bool { return target == ErrInvalidRequest }

// ContextError reports a request's caveat context that a caveat the
// evaluation reached cannot use: a value of the wrong type for a
// parameter, say, or one that makes the expression fail. Err names the
// caveat and the parameter. It is the client's error: errors.Is(err,
// ErrInvalidRequest) holds.
type ContextError struct {
	Err error
}

func (e *ContextError) Error() string { return "context: " + e.Err.Error() }

// Unwrap returns the caveat's error.
func (e *ContextError) Unwrap() error { return e.Err }

// Is makes a ContextError an ErrInvalidRequest.
func (e *ContextError) Is(target error) bool { return target == ErrInvalidRequest }

// Snapshot is what a request reads: a compiled schema and a storage reader
// at one revision. Schema must be the schema in force at Reader.Revision().
type Snapshot struct {
	Schema *schema.Schema
	Reader storage.Reader
}

// Request asks whether Subject has Permission (a permission or relation) on
// Resource.
type Request struct {
	Resource   graph.ObjectRef
	Permission string
	Subject    graph.SubjectRef
	// Context is the request's caveat context; a value written on a
	// relationship wins over the request's value of the same name.
	Context map[string]any
	// Now is the instant expirations are judged at; zero means time.Now().
	Now time.Time
	// Explain asks for Result.Path, or Result.Denial for a NoPermission
	// answer. It costs nothing when false.
	Explain bool
}

// Result answers a Request.
type Result struct {
	Permissionship Permissionship
	// Missing names the caveat parameters that would decide a Conditional
	// result, sorted.
	Missing []string
	// Path proves a HasPermission or Conditional result when Explain was set.
	Path *Path
	// Denial explains a NoPermission result when Explain was set: the
	// branches tried and why each failed.
	Denial *Denial
}

// BulkResult is one item of BulkCheck: a Result or the item's error.
type BulkResult struct {
	Result Result
	Err    error
}

// Config configures an Engine. Zero values take the defaults.
type Config struct {
	// MaxDepth bounds nested dispatches (default 50).
	MaxDepth int
	// MaxExpandNodes bounds the nodes of an Expand tree (default
	// expand.DefaultMaxNodes).
	MaxExpandNodes int
	// MaxAccessObjects bounds the objects an access analysis that must
	// hold a permission's answer at once may hold (default 500000; see
	// ErrAccessTooLarge); beyond it the call fails with ErrAccessTooLarge.
	// Otherwise WhoCanAccess answers a larger permission a window of
	// subjects at a time, WhatCanAccess a page of resources at a time.
	MaxAccessObjects int
	// ChunkSize is how many resource IDs one storage query covers (default 100).
	ChunkSize int
	// Concurrency bounds the goroutines one BulkCheck or Lookup request uses
	// to check independent items (default 4).
	Concurrency int
	// CacheEntries bounds the cross-request result cache (default 100000;
	// negative disables the cache).
	CacheEntries int
	// CacheBytes, when positive, bounds the cache by an estimate of its
	// memory instead: CacheBytes / CacheEntryBytes entries.
	CacheBytes int64
	// DisableSingleflight turns off sharing of concurrent identical
	// sub-problems.
	DisableSingleflight bool
	// ReadCacheBytes bounds the cache of small relationship query results
	// shared by every request at the same revision (default 64 MiB;
	// negative disables it). See storage/readcache.
	ReadCacheBytes int64
	// SetCacheBytes bounds the estimated memory of the subject sets
	// lookups and access analysis compute whole and keep (0:
	// DefaultSetCacheBytes; negative keeps none). One set may take a
	// quarter of it: a larger one is computed again by each lookup that
	// needs it.
	SetCacheBytes int64
	// Cluster, when set, dispatches sub-problems other nodes own to them
	// (see dispatch.Remote); nil evaluates everything here.
	Cluster *dispatch.Cluster
	// Reach, when set, answers recursive relations, and permissions
	// recursive over a parent relation, from a reachability index
	// (package check/reach) at the revisions it holds; nil walks them
	// (see closure.go and ancestors.go).
	Reach Reach
	// Changes, when set, tells the read cache and the subject-set cache
	// which relations changed between two revisions (see
	// storage/relchanges): a result computed at one revision then serves
	// later ones across writes to other relations. nil keeps each result
	// to its own revision.
	Changes Changes
}

// Changes tells whether relationships of a relation, or of one object's
// relation, changed between two revisions; it answers false when it
// cannot tell (see relchanges.Tracker). The subject-set cache asks about
// relations, the read cache about objects.
type Changes interface {
	Unchanged(from, to storage.Revision, resourceType, relation string) bool
	UnchangedIn(from, to storage.Revision, s relchanges.Scope) bool
}

func (c Config) withDefaults() Config {
	if c.MaxDepth <= 0 {
		c.MaxDepth = 50
	}
	if c.MaxAccessObjects <= 0 {
		c.MaxAccessObjects = 500000
	}
	if c.ChunkSize <= 0 {
		c.ChunkSize = 100
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 4
	}
	if c.CacheBytes > 0 && c.CacheEntries >= 0 {
		c.CacheEntries = int(max(1, c.CacheBytes/CacheEntryBytes))
	}
	if c.CacheEntries == 0 {
		c.CacheEntries = 100000
	}
	if c.SetCacheBytes == 0 {
		c.SetCacheBytes = DefaultSetCacheBytes
	}
	return c
}

// DefaultSetCacheBytes is Config.SetCacheBytes when it is 0.
const DefaultSetCacheBytes = 256 << 20

// CacheEntryBytes is the estimated memory of one cache entry: its slot
// in the cache's table (the key's headers, the answer, hash and use
// count) and the key's strings.
const CacheEntryBytes = 256

// Stats are the engine's counters since New, for metrics.
type Stats struct {
	// CacheLen is the number of answers cached now.
	CacheLen    int
	CacheHits   uint64
	CacheMisses uint64
	// Shared counts sub-problems answered by another request's concurrent
	// evaluation (singleflight).
	Shared uint64
	// Dispatches counts sub-problems evaluated locally.
	Dispatches uint64
	// Queries counts storage queries issued, whether the read cache or the
	// datastore answered them.
	Queries uint64
	// ReadCacheHits and ReadCacheMisses count queries the read cache
	// answered and passed to the datastore.
	ReadCacheHits   uint64
	ReadCacheMisses uint64
	// SetCacheHits and SetCacheMisses count the subject sets lookups
	// looked for in the subject-set cache; SetCacheBytes and
	// SetCacheEntries are what it holds now (bytes by its estimate).
	SetCacheHits, SetCacheMisses uint64
	SetCacheBytes                int64
	SetCacheEntries              int
	// SetsComputed, SetsTooLarge and SetsFailed count the shared sets
	// computed whole in the background by outcome: cached, too large
	// (out of time, or over a quarter of the budget) and failed
	// otherwise; SetsDeferred counts the ones put off because another
	// was being computed; SetsWarmed counts the sets WarmSets cached.
	SetsComputed, SetsTooLarge, SetsFailed, SetsDeferred, SetsWarmed uint64
}
