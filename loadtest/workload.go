package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/loadtest/dataset"
	pb "github.com/pembadb/pemba/proto/pemba/v1"
)

// Workload names.
const (
	WorkloadCheckRandom     = "check-random"
	WorkloadCheckHot        = "check-hot"
	WorkloadBulkCheck       = "bulk-check"
	WorkloadLookupResources = "lookup-resources"
	WorkloadLookupSubjects  = "lookup-subjects"
	WorkloadExpand          = "expand"
	WorkloadMixed           = "mixed"
	WorkloadRead            = "read"
	WorkloadNewEnemy        = "new-enemy"
	WorkloadAccessWho       = "access-who"
	WorkloadAccessWhat      = "access-what"
)

// APIs the workloads can call.
const (
	APIPemba   = "pemba"
	APISpiceDB = "spicedb"
)

// spicedbWorkloads are the workloads APISpiceDB drives: reads only, so
// the same run measures a SpiceDB server or Pemba's SpiceDB API.
var spicedbWorkloads = []string{WorkloadCheckRandom, WorkloadCheckHot, WorkloadLookupResources, WorkloadLookupSubjects, WorkloadRead}

// Operation names in reports.
const (
	opCheck           = "check"
	opBulkCheck       = "bulk-check"
	opLookupResources = "lookup-resources"
	opLookupSubjects  = "lookup-subjects"
	opExpand          = "expand"
	opRead            = "read"
	opWrite           = "write"
	opHealth          = "health"
	opPointRead       = "point-read"
	opAccessWho       = "access-who"
	opAccessWhat      = "access-what"
	// firstRowSuffix names an access query's time to its first row.
	firstRowSuffix = "-first-row"
	// per1kSuffix names a lookup's time per 1,000 results, or an
	// expand's per 1,000 nodes of its tree, recorded for the answers
	// that hold at least 1,000 (bigAnswer).
	per1kSuffix = "-per-1k"
)

// bigAnswer is the fewest results of a lookup, or nodes of an expanded
// tree, whose time per 1,000 is recorded: below it the request's fixed
// costs dominate.
var bigAnswer = 1000

// Request shapes.
const (
	// bulkCheckItems is the number of checks in one bulk-check request.
	bulkCheckItems = 50
	// lookupResourcesLimit is the page lookup-resources asks for: the first
	// screenful, as a user interface would.
	lookupResourcesLimit = 100
	// readLimit caps read's ReadRelationships.
	readLimit = 100
)

// Mixed workload shares, cumulative: 90% check, 5% lookups, 4% expand or
// read, 1% writes.
const (
	mixedCheck           = 0.90
	mixedLookupResources = 0.925
	mixedLookupSubjects  = 0.95
	mixedExpand          = 0.97
	mixedRead            = 0.99
)

// step is one request (or one short sequence, for new-enemy) of a workload.
type step func(w *worker, ctx context.Context)

var workloads = map[string]step{
	WorkloadCheckRandom:     func(w *worker, ctx context.Context) { w.check(ctx, w.sampler.Check()) },
	WorkloadCheckHot:        func(w *worker, ctx context.Context) { w.check(ctx, w.sampler.HotCheck()) },
	WorkloadBulkCheck:       (*worker).bulkCheck,
	WorkloadLookupResources: (*worker).lookupResources,
	WorkloadLookupSubjects:  (*worker).lookupSubjects,
	WorkloadExpand:          (*worker).expand,
	WorkloadMixed:           (*worker).mixed,
	WorkloadRead:            (*worker).read,
	WorkloadNewEnemy:        (*worker).newEnemy,
	WorkloadAccessWho:       (*worker).accessWho,
	WorkloadAccessWhat:      (*worker).accessWhat,
}

// Workloads lists the workload names, sorted.
func Workloads() []string {
	names := make([]string, 0, len(workloads))
	for n := range workloads {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// worker is one closed-loop client. Its fields are touched only by its own
// goroutine while a phase runs, and read by Run between phases.
type worker struct {
	id int
	// nodes is the worker's client of every endpoint; c is the one the
	// request in flight goes to, nodes[node] (set by pick), and calls
	// counts the requests sent.
	nodes   []*client
	c       *client
	node    int
	calls   int
	data    dataset.Dataset
	sampler *dataset.Sampler
	rec     *Recorder
	// nodeRecs[n] records the requests nodes[n] served (runs on several
	// endpoints only).
	nodeRecs []*Recorder

	// zookie is the newest zookie of this worker's own writes; later
	// requests ask for at_least_as_fresh(zookie), as an application
	// reading its own writes would. nil before the first write.
	zookie *pb.Zookie
	// written is the relationship the last mixed write touched, which the
	// next one deletes, so the graph does not grow.
	written *graph.Relationship

	// enemy is this worker's new-enemy case; setUp records its Setup was written.
	enemy *dataset.NewEnemyCase
	setUp bool
	// neChecks counts checks with a revoke's zookie, neViolations those
	// that granted; neMissed counts checks with a grant's zookie that did
	// not grant (a freshness bug too, though not a new-enemy one).
	neChecks, neViolations, neMissed int64

	// timeout bounds each request, as a client's deadline would.
	timeout time.Duration
	// spicedb sends checks through authzed.api.v1 instead of pemba.v1.
	spicedb bool
	// subjectsPerResponse is LookupSubjects' subjects_per_response.
	subjectsPerResponse int

	// firstErr is the first failed request's error, for the run's error
	// message when nothing succeeds.
	firstErr error
}

// timed runs one request of operation op on the worker's next node (call
// reads w.c), bounded by the worker's request timeout, and records it.
func (w *worker) timed(ctx context.Context, op string, call func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	w.pick()
	start := time.Now()
	err := call(ctx)
	w.record(op, time.Since(start), err)
	if err != nil && w.firstErr == nil {
		w.firstErr = fmt.Errorf("%s: %w", op, err)
	}
	return err
}

func (w *worker) checkRequest(q dataset.Check) *pb.CheckPermissionRequest {
	return &pb.CheckPermissionRequest{
		Consistency: consistency(w.zookie),
		Resource:    objectProto(q.Resource),
		Permission:  q.Permission,
		Subject:     subjectProto(q.Subject),
		Context:     contextProto(q.Context),
	}
}

func (w *worker) check(ctx context.Context, q dataset.Check) {
	_ = w.timed(ctx, opCheck, func(ctx context.Context) error {
		if w.spicedb {
			_, err := w.c.authzed.CheckPermission(ctx, w.authzedCheckRequest(q))
			return err
		}
		_, err := w.c.perms.CheckPermission(ctx, w.checkRequest(q))
		return err
	})
}

func (w *worker) bulkCheck(ctx context.Context) {
	req := &pb.BulkCheckPermissionRequest{Consistency: consistency(w.zookie)}
	for range bulkCheckItems {
		q := w.sampler.Check()
		req.Items = append(req.Items, &pb.BulkCheckItem{
			Resource: objectProto(q.Resource), Permission: q.Permission,
			Subject: subjectProto(q.Subject), Context: contextProto(q.Context),
		})
	}
	_ = w.timed(ctx, opBulkCheck, func(ctx context.Context) error {
		_, err := w.c.perms.BulkCheckPermission(ctx, req)
		return err
	})
}

// drain receives a server stream to its end.
func drain[T any](recv func() (T, error)) error {
	_, err := drainCount(recv)
	return err
}

// drainCount receives a server stream to its end and counts its messages.
func drainCount[T any](recv func() (T, error)) (int, error) {
	for n := 0; ; n++ {
		if _, err := recv(); err != nil {
			if errors.Is(err, io.EOF) {
				return n, nil
			}
			return n, err
		}
	}
}

// drainSubjects receives a pemba.v1 LookupSubjects stream to its end and
// counts its subjects, packed or one per response.
func drainSubjects(recv func() (*pb.LookupSubjectsResponse, error)) (int, error) {
	n := 0
	for {
		resp, err := recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return n, nil
			}
			return n, err
		}
		if packed := len(resp.GetSubjects()); packed > 0 {
			n += packed
		} else {
			n++
		}
	}
}

func (w *worker) lookupResources(ctx context.Context) {
	q := w.sampler.LookupResources()
	_ = w.timed(ctx, opLookupResources, func(ctx context.Context) error {
		if w.spicedb {
			stream, err := w.c.authzed.LookupResources(ctx, &v1.LookupResourcesRequest{
				Consistency: w.authzedConsistency(), ResourceObjectType: q.ResourceType, Permission: q.Permission,
				Subject: authzedSubject(q.Subject), Context: contextProto(q.Context), OptionalLimit: lookupResourcesLimit,
			})
			if err != nil {
				return err
			}
			return drain(stream.Recv)
		}
		stream, err := w.c.perms.LookupResources(ctx, &pb.LookupResourcesRequest{
			Consistency: consistency(w.zookie), ResourceType: q.ResourceType, Permission: q.Permission,
			Subject: subjectProto(q.Subject), Context: contextProto(q.Context), Limit: lookupResourcesLimit,
		})
		if err != nil {
			return err
		}
		return drain(stream.Recv)
	})
}

func (w *worker) lookupSubjects(ctx context.Context) {
	q := w.sampler.LookupSubjects()
	var results int
	var took time.Duration
	err := w.timed(ctx, opLookupSubjects, func(ctx context.Context) error {
		start := time.Now()
		defer func() { took = time.Since(start) }()
		if w.spicedb {
			stream, err := w.c.authzed.LookupSubjects(ctx, &v1.LookupSubjectsRequest{
				Consistency: w.authzedConsistency(), Resource: authzedObject(q.Resource), Permission: q.Permission,
				SubjectObjectType: q.SubjectType, Context: contextProto(q.Context),
			})
			if err != nil {
				return err
			}
			results, err = drainCount(stream.Recv)
			return err
		}
		stream, err := w.c.perms.LookupSubjects(ctx, &pb.LookupSubjectsRequest{
			Consistency: consistency(w.zookie), Resource: objectProto(q.Resource), Permission: q.Permission,
			SubjectType: q.SubjectType, Context: contextProto(q.Context), SubjectsPerResponse: uint32(w.subjectsPerResponse),
		})
		if err != nil {
			return err
		}
		results, err = drainSubjects(stream.Recv)
		return err
	})
	if err == nil && results >= bigAnswer {
		w.record(opLookupSubjects+per1kSuffix, took*1000/time.Duration(results), nil)
	}
}

// accessWho asks who holds lookup-subjects' permission on its random
// resource, every subject type, and reads every row: an analyst's
// question, timed to its last row and (as access-who-first-row) to its
// first.
func (w *worker) accessWho(ctx context.Context) {
	q := w.sampler.LookupSubjects()
	w.accessRows(ctx, opAccessWho, func(ctx context.Context) (accessStream, error) {
		return w.c.access.WhoCanAccess(ctx, &pb.WhoCanAccessRequest{Consistency: freshConsistency(w.zookie), Resource: objectProto(q.Resource),
			Permissions: []string{q.Permission}, Context: contextProto(q.Context)})
	})
}

// accessWhat asks which resources of lookup-resources' type its random
// subject holds its permission on, and reads every row, timed as
// accessWho is.
func (w *worker) accessWhat(ctx context.Context) {
	q := w.sampler.LookupResources()
	w.accessRows(ctx, opAccessWhat, func(ctx context.Context) (accessStream, error) {
		return w.c.access.WhatCanAccess(ctx, &pb.WhatCanAccessRequest{Consistency: freshConsistency(w.zookie), Subject: subjectProto(q.Subject),
			ResourceTypes: []string{q.ResourceType}, Permissions: []string{q.Permission}, Context: contextProto(q.Context)})
	})
}

// accessStream is a stream of access rows.
type accessStream interface {
	Recv() (*pb.AccessResponse, error)
}

// accessRows times one access query from open to its last row as op, and
// to its first row (or its end, without rows) as op-first-row.
func (w *worker) accessRows(ctx context.Context, op string, open func(ctx context.Context) (accessStream, error)) {
	var start time.Time
	var first time.Duration
	err := w.timed(ctx, op, func(ctx context.Context) error {
		start = time.Now()
		stream, err := open(ctx)
		if err != nil {
			return err
		}
		for n := 0; ; n++ {
			_, err := stream.Recv()
			if n == 0 {
				first = time.Since(start)
			}
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
		}
	})
	if err == nil {
		w.record(op+firstRowSuffix, first, nil)
	}
}

// expand asks for the tree of a sampled resource's permission. A tree
// of at least bigAnswer nodes is also timed per 1,000 of them: trees
// grow with the graph (an organization's employees at ×10 are ten times
// as many), so this row compares the cost of a node across scales where
// the expand row compares whole answers.
func (w *worker) expand(ctx context.Context) {
	q := w.sampler.Expand()
	var took time.Duration
	var nodes int
	err := w.timed(ctx, opExpand, func(ctx context.Context) error {
		start := time.Now()
		resp, err := w.c.perms.ExpandPermission(ctx, &pb.ExpandPermissionRequest{
			Consistency: consistency(w.zookie), Resource: objectProto(q.Resource), Permission: q.Permission,
		})
		took = time.Since(start)
		nodes = treeNodes(resp.GetTree())
		return err
	})
	if err == nil && nodes >= bigAnswer {
		w.record(opExpand+per1kSuffix, took*1000/time.Duration(nodes), nil)
	}
}

// treeNodes counts the nodes of an expanded tree.
func treeNodes(n *pb.ExpandNode) int {
	if n == nil {
		return 0
	}
	count := 1
	for _, c := range n.GetChildren() {
		count += treeNodes(c)
	}
	return count
}

// read reads the relationships of a sampled resource: one indexed range
// read in the datastore, the baseline a check's cost compares with.
func (w *worker) read(ctx context.Context) {
	q := w.sampler.Check()
	_ = w.timed(ctx, opRead, func(ctx context.Context) error {
		if w.spicedb {
			stream, err := w.c.authzed.ReadRelationships(ctx, &v1.ReadRelationshipsRequest{
				Consistency:        w.authzedConsistency(),
				RelationshipFilter: &v1.RelationshipFilter{ResourceType: q.Resource.Type, OptionalResourceId: q.Resource.ID},
				OptionalLimit:      readLimit,
			})
			if err != nil {
				return err
			}
			return drain(stream.Recv)
		}
		stream, err := w.c.rels.ReadRelationships(ctx, &pb.ReadRelationshipsRequest{
			Consistency: consistency(w.zookie),
			Filter:      &pb.RelationshipFilter{ResourceType: q.Resource.Type, ResourceIds: []string{q.Resource.ID}},
			Limit:       readLimit,
		})
		if err != nil {
			return err
		}
		return drain(stream.Recv)
	})
}

// write alternately touches a sampled relationship and deletes it, keeping
// the resulting zookie for the worker's later requests.
func (w *worker) write(ctx context.Context) {
	update := &pb.RelationshipUpdate{Operation: pb.RelationshipUpdate_OPERATION_DELETE}
	if w.written == nil {
		r := w.sampler.Write()
		w.written = &r
		update.Operation = pb.RelationshipUpdate_OPERATION_TOUCH
	} else {
		defer func() { w.written = nil }()
	}
	update.Relationship = relationshipProto(*w.written)
	_ = w.timed(ctx, opWrite, func(ctx context.Context) error {
		resp, err := w.c.rels.WriteRelationships(ctx, &pb.WriteRelationshipsRequest{
			Updates: []*pb.RelationshipUpdate{update}, Reason: "loadtest mixed",
		})
		if err == nil {
			w.zookie = resp.GetWrittenAt()
		}
		return err
	})
}

func (w *worker) mixed(ctx context.Context) {
	switch x := w.sampler.Float64(); {
	case x < mixedCheck:
		w.check(ctx, w.sampler.Check())
	case x < mixedLookupResources:
		w.lookupResources(ctx)
	case x < mixedLookupSubjects:
		w.lookupSubjects(ctx)
	case x < mixedExpand:
		w.expand(ctx)
	case x < mixedRead:
		w.read(ctx)
	default:
		w.write(ctx)
	}
}

// writeOne applies one update and returns its zookie.
func (w *worker) writeOne(ctx context.Context, op pb.RelationshipUpdate_Operation, r graph.Relationship) (*pb.Zookie, error) {
	var z *pb.Zookie
	err := w.timed(ctx, opWrite, func(ctx context.Context) error {
		resp, err := w.c.rels.WriteRelationships(ctx, &pb.WriteRelationshipsRequest{
			Updates: []*pb.RelationshipUpdate{{Operation: op, Relationship: relationshipProto(r)}},
			Reason:  "loadtest new-enemy",
		})
		z = resp.GetWrittenAt()
		return err
	})
	return z, err
}

// checkAt checks q at least as fresh as z and returns the permissionship.
func (w *worker) checkAt(ctx context.Context, q dataset.Check, z *pb.Zookie) (pb.Permissionship, error) {
	req := w.checkRequest(q)
	req.Consistency = consistency(z)
	var got pb.Permissionship
	err := w.timed(ctx, opCheck, func(ctx context.Context) error {
		resp, err := w.c.perms.CheckPermission(ctx, req)
		got = resp.GetPermissionship()
		return err
	})
	return got, err
}

// newEnemy grants, checks with the grant's zookie, revokes, and checks
// with the revoke's zookie: that check granting is a new-enemy violation
// (the server answered from a revision, or a cache entry, older than the
// revoke).
func (w *worker) newEnemy(ctx context.Context) {
	ne := w.enemy
	if !w.setUp {
		for _, r := range ne.Setup {
			if _, err := w.writeOne(ctx, pb.RelationshipUpdate_OPERATION_TOUCH, r); err != nil {
				return
			}
		}
		w.setUp = true
	}
	z, err := w.writeOne(ctx, pb.RelationshipUpdate_OPERATION_TOUCH, ne.Grant)
	if err != nil {
		return
	}
	if got, err := w.checkAt(ctx, ne.Check, z); err == nil && got != pb.Permissionship_PERMISSIONSHIP_HAS_PERMISSION {
		w.neMissed++
	}
	if z, err = w.writeOne(ctx, pb.RelationshipUpdate_OPERATION_DELETE, ne.Grant); err != nil {
		return
	}
	got, err := w.checkAt(ctx, ne.Check, z)
	if err != nil {
		return
	}
	w.neChecks++
	if got != pb.Permissionship_PERMISSIONSHIP_NO_PERMISSION {
		w.neViolations++
	}
}

// health is the floor's request: the gRPC health check, which does no
// authorization work.
// pointRead reads one relationship of a sampled resource, fully
// consistent: a request that does one indexed datastore read, the second
// floor a check's rate compares with (the first is health, which reads
// nothing).
func (w *worker) pointRead(ctx context.Context) {
	q := w.sampler.Check()
	_ = w.timed(ctx, opPointRead, func(ctx context.Context) error {
		if w.spicedb {
			stream, err := w.c.authzed.ReadRelationships(ctx, &v1.ReadRelationshipsRequest{
				Consistency:        &v1.Consistency{Requirement: &v1.Consistency_FullyConsistent{FullyConsistent: true}},
				RelationshipFilter: &v1.RelationshipFilter{ResourceType: q.Resource.Type, OptionalResourceId: q.Resource.ID},
				OptionalLimit:      1,
			})
			if err != nil {
				return err
			}
			return drain(stream.Recv)
		}
		stream, err := w.c.rels.ReadRelationships(ctx, &pb.ReadRelationshipsRequest{
			Consistency: &pb.Consistency{Requirement: &pb.Consistency_FullyConsistent{FullyConsistent: true}},
			Filter:      &pb.RelationshipFilter{ResourceType: q.Resource.Type, ResourceIds: []string{q.Resource.ID}},
			Limit:       1,
		})
		if err != nil {
			return err
		}
		return drain(stream.Recv)
	})
}

func (w *worker) health(ctx context.Context) {
	_ = w.timed(ctx, opHealth, func(ctx context.Context) error {
		_, err := w.c.health.Check(ctx, &healthpb.HealthCheckRequest{})
		return err
	})
}
