package check

import (
	"context"
	"fmt"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
)

// answerFunc answers whether the request's subject has rel on obj.
type answerFunc func(obj graph.ObjectRef, rel string) (Permissionship, error)

// engineAnswers answers with engine e, as req would.
func engineAnswers(ctx context.Context, e *Engine, snap Snapshot, req Request) answerFunc {
	return func(obj graph.ObjectRef, rel string) (Permissionship, error) {
		r, err := e.Check(ctx, snap, Request{Resource: obj, Permission: rel, Subject: req.Subject, Context: req.Context, Now: req.Now})
		return r.Permissionship, err
	}
}

// verifyDenial checks a denial against answer: its root is the denied
// permission, every branch that says it failed does not grant, and every
// relationship it reports exists as reported.
func verifyDenial(ctx context.Context, answer answerFunc, snap Snapshot, req Request, d *Denial) error {
	if d.Root == nil {
		return fmt.Errorf("no root")
	}
	if d.Root.Object != req.Resource || d.Root.Relation != req.Permission {
		return fmt.Errorf("root is %s#%s, not the denied %s#%s", d.Root.Object, d.Root.Relation, req.Resource, req.Permission)
	}
	n := 0
	var walk func(b *Branch, depth int) error
	walk = func(b *Branch, depth int) error {
		n++
		if depth > MaxDenialDepth+1 {
			return fmt.Errorf("depth %d beyond %d", depth, MaxDenialDepth)
		}
		if err := verifyBranch(ctx, answer, snap, req, b); err != nil {
			return fmt.Errorf("%s: %w", b.Label, err)
		}
		for _, c := range b.Children {
			if err := walk(c, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(d.Root, 0); err != nil {
		return err
	}
	if n > MaxDenialBranches {
		return fmt.Errorf("%d branches, more than %d", n, MaxDenialBranches)
	}
	return nil
}

// verifyBranch checks one branch's claim.
func verifyBranch(ctx context.Context, answer answerFunc, snap Snapshot, req Request, b *Branch) error {
	switch b.Kind {
	case BranchGranted:
		if b.Permissionship == NoPermission {
			return fmt.Errorf("granted branch with NO_PERMISSION")
		}
		return nil
	case BranchExpired, BranchCaveatFalse:
		if b.Relationship == nil {
			return fmt.Errorf("no relationship")
		}
		if !storedAsIs(ctx, snap.Reader, *b.Relationship) {
			return fmt.Errorf("relationship %s is not stored", b.Relationship)
		}
		if b.Kind == BranchExpired && !b.Relationship.ExpiredAt(req.Now) {
			return fmt.Errorf("relationship %s has not expired at %s", b.Relationship, req.Now)
		}
		return nil
	}
	if b.Permissionship != NoPermission {
		return fmt.Errorf("failed branch says %s", b.Permissionship)
	}
	def := snap.Schema.Definitions[b.Object.Type]
	if def == nil || (def.Relations[b.Relation] == nil && def.Permissions[b.Relation] == nil) {
		return nil
	}
	if b.Kind == BranchIntersection || b.Kind == BranchExcluded || b.Kind == BranchArrow {
		return nil // about an expression of b.Relation, not all of it
	}
	p, err := answer(b.Object, b.Relation)
	if err != nil {
		return err
	}
	if p != NoPermission {
		return fmt.Errorf("%s#%s said to fail but it is %s", b.Object, b.Relation, p)
	}
	return nil
}

// storedAsIs reports whether r is stored, with its caveat and expiration,
// expired or not.
func storedAsIs(ctx context.Context, rd storage.Reader, r graph.Relationship) bool {
	srel := r.Subject.Relation
	f := storage.Filter{ResourceType: r.Resource.Type, ResourceIDs: []string{r.Resource.ID}, Relation: r.Relation,
		Subject: &storage.SubjectFilter{Type: r.Subject.Object.Type, IDs: []string{r.Subject.Object.ID}, Relation: &srel}}
	for got, err := range rd.QueryRelationships(ctx, f, storage.QueryOptions{Now: time.Unix(0, 1)}) {
		if err == nil && got.Equal(r) {
			return true
		}
	}
	return false
}
