package core

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/pembadb/pemba/schema"
	"github.com/pembadb/pemba/storage"
)

// ErrNoSchema marks a request that needs a schema when none is stored.
var ErrNoSchema = errors.New("no schema has been written; write one with `pemba schema write`")

// Schemas compiles stored schemas once. cache's key is the revision that
// wrote the schema (StoredSchema.Revision), which identifies its text for
// the life of the datastore. atRead's key is a revision read at: the
// schema in force at a revision never changes, and requests in one
// quantum share their revision, so most requests skip reading the schema.
type Schemas struct {
	cache  *lru.Cache[storage.Revision, *schema.Schema]
	atRead *lru.Cache[storage.Revision, VersionedSchema]
}

// VersionedSchema is a compiled schema and the revision that wrote it,
// which a relationship write names in its schema guard.
type VersionedSchema struct {
	*schema.Schema
	WrittenAt storage.Revision
}

// NewSchemas returns an empty cache.
func NewSchemas() *Schemas {
	c, _ := lru.New[storage.Revision, *schema.Schema](16) // fails only for size <= 0
	r, _ := lru.New[storage.Revision, VersionedSchema](256)
	return &Schemas{cache: c, atRead: r}
}

// Compiled returns the compiled form of a stored schema, or ErrNoSchema.
func (s *Schemas) Compiled(stored storage.StoredSchema) (*schema.Schema, error) {
	if stored.Text == "" {
		return nil, ErrNoSchema
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

// At opens a reader of engine at rev and returns it with the schema in
// force there, or ErrNoSchema (with the reader).
func (s *Schemas) At(ctx context.Context, engine storage.Engine, rev storage.Revision) (storage.Reader, VersionedSchema, error) {
	reader, err := engine.SnapshotReader(ctx, rev)
	if err != nil {
		return nil, VersionedSchema{}, fmt.Errorf("read at revision %d: %w", rev, err)
	}
	if sch, ok := s.atRead.Get(rev); ok {
		return reader, sch, nil
	}
	stored, err := reader.ReadSchema(ctx)
	if err != nil {
		return nil, VersionedSchema{}, fmt.Errorf("read schema at revision %d: %w", rev, err)
	}
	compiled, err := s.Compiled(stored)
	if err != nil {
		return reader, VersionedSchema{}, err
	}
	sch := VersionedSchema{Schema: compiled, WrittenAt: stored.Revision}
	s.atRead.Add(rev, sch)
	return reader, sch, nil
}
