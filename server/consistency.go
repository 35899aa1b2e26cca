package server

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/pembadb/pemba/check"
	pb "github.com/pembadb/pemba/proto/pemba/v1"
	"github.com/pembadb/pemba/schema"
	"github.com/pembadb/pemba/storage"
)

// revisions turns a request's Consistency into a revision.
//
// minimize_latency reads at a cached head revision refreshed at most once
// per quantum: requests in the same quantum share a revision, so they
// share the check engine's cache (keyed by revision). The other modes are
// exact: fully_consistent asks the datastore for its head, at_least_as_fresh
// takes the cached head when it is new enough and otherwise the zookie's
// own revision once it is known to be committed (so the requests carrying
// one zookie share a revision, and with it the caches), at_exact_snapshot
// takes the zookie's revision.
type revisions struct {
	engine  storage.Engine
	zookies Zookies
	quantum time.Duration

	// mu guards cached and fetchedAt: the head revision last read and
	// when it was read.
	mu        sync.Mutex
	cached    storage.Revision
	fetchedAt time.Time

	// fetch shares one HeadRevision call among concurrent refreshers.
	fetch singleflight.Group

	// committed is the newest revision known to be committed: the newest
	// head read and every revision a zookie was issued for.
	committed atomic.Uint64
}

// noteCommitted records that rev is committed.
func (r *revisions) noteCommitted(rev storage.Revision) {
	for {
		cur := r.committed.Load()
		if uint64(rev) <= cur || r.committed.CompareAndSwap(cur, uint64(rev)) {
			return
		}
	}
}

// head reads the datastore's head revision and refreshes the cache with it.
func (r *revisions) head(ctx context.Context) (storage.Revision, error) {
	v, err, _ := r.fetch.Do("head", func() (any, error) {
		// Shared by every waiting request: one caller leaving must not
		// fail the others, so the read has its own bound.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		rev, err := r.engine.HeadRevision(ctx)
		if err != nil {
			return storage.Revision(0), fmt.Errorf("read head revision: %w", err)
		}
		r.mu.Lock()
		if rev > r.cached {
			r.cached = rev
		}
		r.fetchedAt = time.Now()
		r.mu.Unlock()
		r.noteCommitted(rev)
		return rev, nil
	})
	return v.(storage.Revision), err
}

// advance moves the cached head to rev if it is newer. Schema writes call
// it, so minimize_latency reads never see a schema older than one this
// server wrote (relationship writes do not: their readers opt into
// staleness, and keeping one revision per quantum keeps the cache warm).
func (r *revisions) advance(rev storage.Revision) {
	r.mu.Lock()
	if rev > r.cached {
		r.cached = rev
	}
	r.mu.Unlock()
}

// quantized returns the cached head, refreshing it when older than the
// quantum.
func (r *revisions) quantized(ctx context.Context) (storage.Revision, error) {
	r.mu.Lock()
	rev, fresh := r.cached, !r.fetchedAt.IsZero() && time.Since(r.fetchedAt) < r.quantum
	r.mu.Unlock()
	if fresh {
		return rev, nil
	}
	return r.head(ctx)
}

// lag is how many revisions the cached head trails the true head.
func (r *revisions) lag(ctx context.Context) float64 {
	h, err := r.engine.HeadRevision(ctx)
	if err != nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if h < r.cached {
		return 0
	}
	return float64(h - r.cached)
}

// resolve returns the revision c asks for; field names c in errors. A nil
// Consistency means minimize_latency.
func (r *revisions) resolve(ctx context.Context, c *pb.Consistency, field string) (storage.Revision, error) {
	switch req := c.GetRequirement().(type) {
	case nil, *pb.Consistency_MinimizeLatency:
		return r.quantized(ctx)
	case *pb.Consistency_FullyConsistent:
		return r.head(ctx)
	case *pb.Consistency_AtLeastAsFresh:
		want, err := r.decode(req.AtLeastAsFresh, field+".at_least_as_fresh")
		if err != nil {
			return 0, err
		}
		rev, err := r.quantized(ctx)
		if err != nil || rev >= want {
			return rev, err
		}
		if want <= storage.Revision(r.committed.Load()) {
			return want, nil
		}
		if rev, err = r.head(ctx); err != nil {
			return 0, err
		}
		if rev >= want {
			return want, nil
		}
		// The shared head read may have started before the zookie's write
		// committed; only a read that starts now may refuse the zookie.
		if rev, err = r.engine.HeadRevision(ctx); err != nil {
			return 0, fmt.Errorf("read head revision: %w", err)
		}
		if rev >= want {
			r.noteCommitted(rev)
			return want, nil
		}
		return 0, inField(field+".at_least_as_fresh", fmt.Errorf("revision %d: %w", want, storage.ErrRevisionUnknown))
	case *pb.Consistency_AtExactSnapshot:
		return r.decode(req.AtExactSnapshot, field+".at_exact_snapshot")
	default:
		return 0, invalidField(field, "unknown consistency requirement %T", req)
	}
}

func (r *revisions) decode(z *pb.Zookie, field string) (storage.Revision, error) {
	rev, err := r.zookies.Decode(z.GetToken())
	if err != nil {
		return 0, invalidField(field, "%v", err)
	}
	return rev, nil
}

// zookie returns the wire zookie for rev, a committed revision: the
// server issues zookies only for its writes and for revisions it read at.
func (r *revisions) zookie(rev storage.Revision) *pb.Zookie {
	r.noteCommitted(rev)
	return &pb.Zookie{Token: r.zookies.Encode(rev)}
}

// schemas compiles stored schemas once. cache's key is the revision that
// wrote the schema (StoredSchema.Revision), which identifies its text for
// the life of the datastore. atRead's key is a revision read at: the
// schema in force at a revision never changes, and requests in one
// quantum share their revision, so most requests skip reading the schema.
type schemas struct {
	cache  *lru.Cache[storage.Revision, *schema.Schema]
	atRead *lru.Cache[storage.Revision, versionedSchema]
}

// versionedSchema is a compiled schema and the revision that wrote it,
// which a relationship write names in its schema guard.
type versionedSchema struct {
	*schema.Schema
	writtenAt storage.Revision
}

func newSchemas() *schemas {
	c, _ := lru.New[storage.Revision, *schema.Schema](16) // fails only for size <= 0
	r, _ := lru.New[storage.Revision, versionedSchema](256)
	return &schemas{cache: c, atRead: r}
}

// compiled returns the compiled form of a stored schema, or errNoSchema.
func (s *schemas) compiled(stored storage.StoredSchema) (*schema.Schema, error) {
	if stored.Text == "" {
		return nil, errNoSchema
	}
	if c, ok := s.cache.Get(stored.Revision); ok {
		return c, nil
	}
	c, err := schema.Compile("schema@"+strconv.FormatUint(uint64(stored.Revision), 10), stored.Text)
	if err != nil {
		// A stored schema compiled when it was written; failing now means
		// the compiler changed incompatibly.
		return nil, fmt.Errorf("compile stored schema written at revision %d: %v", stored.Revision, err)
	}
	s.cache.Add(stored.Revision, c)
	return c, nil
}

// snapshot opens a reader at rev with the schema in force there.
// snapshotFor resolves a request's consistency to a revision and returns
// the snapshot (schema and reader) every query of the request reads.
func (s *Server) snapshotFor(ctx context.Context, c *pb.Consistency) (storage.Revision, check.Snapshot, error) {
	rev, err := s.revs.resolve(ctx, c, "consistency")
	if err != nil {
		return 0, check.Snapshot{}, err
	}
	snap, err := s.snapshot(ctx, rev)
	return rev, snap, err
}

func (s *Server) snapshot(ctx context.Context, rev storage.Revision) (check.Snapshot, error) {
	reader, sch, err := s.schemaAt(ctx, rev)
	if err != nil {
		return check.Snapshot{}, err
	}
	return check.Snapshot{Schema: sch.Schema, Reader: reader}, nil
}

// schemaAt opens a reader at rev and returns it with the schema in force
// there, or errNoSchema.
func (s *Server) schemaAt(ctx context.Context, rev storage.Revision) (storage.Reader, versionedSchema, error) {
	reader, err := s.engine.SnapshotReader(ctx, rev)
	if err != nil {
		return nil, versionedSchema{}, fmt.Errorf("read at revision %d: %w", rev, err)
	}
	if sch, ok := s.schemas.atRead.Get(rev); ok {
		return reader, sch, nil
	}
	stored, err := reader.ReadSchema(ctx)
	if err != nil {
		return nil, versionedSchema{}, fmt.Errorf("read schema at revision %d: %w", rev, err)
	}
	compiled, err := s.schemas.compiled(stored)
	if err != nil {
		return reader, versionedSchema{}, err
	}
	sch := versionedSchema{Schema: compiled, writtenAt: stored.Revision}
	s.schemas.atRead.Add(rev, sch)
	return reader, sch, nil
}

// ZookieHeader is the response header of streaming reads that carries the
// zookie they read at, so a client learns it even from an empty stream.
const ZookieHeader = "pemba-zookie"

// sendZookieHeader sends the read revision's zookie as a stream header.
func (s *Server) sendZookieHeader(stream grpc.ServerStream, rev storage.Revision) error {
	return stream.SetHeader(metadata.Pairs(ZookieHeader, s.revs.zookies.Encode(rev)))
}
