package check

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pembadb/pemba/check/dispatch"
	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
)

// enginesTransport dispatches to in-process engines, all reading snap:
// a cluster without a network, for the reference model.
type enginesTransport struct {
	snap    Snapshot
	engines map[string]*Engine
}

func (t *enginesTransport) Dispatch(ctx context.Context, peer string, p *dispatch.Problem) ([]dispatch.Answer, error) {
	ans, _, err := t.engines[peer].ResolveDispatched(ctx, t.snap, *p)
	return ans, err
}

// newClusterEngine returns the first of three engines configured by cfg
// that form a cluster over snap: most sub-problems of its checks are
// evaluated, and cached, by the other two.
func newClusterEngine(snap Snapshot, cfg Config) *Engine {
	e, _ := newCluster(snap, cfg, nil)
	return e
}

// newCluster is newClusterEngine that also returns the transport; obs
// observes the first engine's dispatches (nil: none).
func newCluster(snap Snapshot, cfg Config, obs dispatch.Observer) (*Engine, *enginesTransport) {
	names := []string{"a", "b", "c"}
	tr := &enginesTransport{snap: snap, engines: map[string]*Engine{}}
	for _, n := range names {
		c := &dispatch.Cluster{Transport: tr, HedgeDelay: time.Minute, Timeout: time.Minute}
		if n == "a" {
			c.Observer = obs
		}
		c.SetMembers(names, n)
		cfg.Cluster = c
		tr.engines[n] = New(cfg)
	}
	return tr.engines["a"], tr
}

// counts counts dispatches and fallbacks.
type counts struct{ sent, fallbacks atomic.Int64 }

func (c *counts) Sent(string)                      { c.sent.Add(1) }
func (c *counts) Fallback(string, dispatch.Reason) { c.fallbacks.Add(1) }

// TestClusterEngine: checks through a cluster are answered by the other
// engines (nothing falls back) and equal a lone engine's; checks with a
// caveat context are not dispatched.
func TestClusterEngine(t *testing.T) {
	s, err := schema.Compile("cluster.zed", `definition user {}
definition folder {
	relation parent: folder
	relation viewer: user
	permission view = viewer + parent->view
}
definition doc {
	relation parent: folder
	permission view = parent->view
}`)
	if err != nil {
		t.Fatal(err)
	}
	var rels []graph.Relationship
	for i := range 30 {
		rels = append(rels, graph.MustParseRelationship(fmt.Sprintf("doc:d%d#parent@folder:f%d", i, i%10)))
	}
	for i := range 10 {
		rels = append(rels, graph.MustParseRelationship(fmt.Sprintf("folder:f%d#parent@folder:f%d", i, (i+1)%10)))
	}
	rels = append(rels, graph.MustParseRelationship("folder:f3#viewer@user:ann"))
	store := newTestStore(t)
	store.write(t, rels)
	snap := Snapshot{Schema: s, Reader: store.reader(t)}
	obs := &counts{}
	clustered, tr := newCluster(snap, Config{}, obs)
	alone := New(Config{})
	ctx := context.Background()
	for _, caveatCtx := range []map[string]any{nil, {"x": 1}} {
		before := obs.sent.Load()
		for i := range 30 {
			for _, user := range []string{"ann", "bob"} {
				req := Request{Resource: graph.ObjectRef{Type: "doc", ID: fmt.Sprint("d", i)}, Permission: "view",
					Subject: graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: user}}, Context: caveatCtx, Now: goldenNow}
				got, err := clustered.Check(ctx, snap, req)
				if err != nil {
					t.Fatal(err)
				}
				want, err := alone.Check(ctx, snap, req)
				if err != nil {
					t.Fatal(err)
				}
				if got.Permissionship != want.Permissionship || (user == "ann") != (want.Permissionship == HasPermission) {
					t.Errorf("doc:d%d view %s: %v clustered, %v alone", i, user, got.Permissionship, want.Permissionship)
				}
			}
		}
		sent := obs.sent.Load() - before
		switch {
		case caveatCtx == nil && sent == 0:
			t.Errorf("nothing dispatched")
		case caveatCtx != nil && sent != 0:
			t.Errorf("%d problems with a caveat context dispatched", sent)
		}
	}
	if obs.fallbacks.Load() != 0 {
		t.Errorf("%d fallbacks", obs.fallbacks.Load())
	}
	if tr.engines["b"].Stats().Dispatches == 0 || tr.engines["c"].Stats().Dispatches == 0 {
		t.Errorf("peers evaluated nothing: b %+v, c %+v", tr.engines["b"].Stats(), tr.engines["c"].Stats())
	}
}
