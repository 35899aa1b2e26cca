package dataset

import (
	_ "embed"
	"iter"
	"math/rand/v2"

	"github.com/pembadb/pemba/graph"
)

const nestedOrgName = "nested-org"

//go:embed nested_org.zed
var nestedOrgSchema string

// Per-scale counts of the nested-org graph.
const (
	nestedUsers          = 1000
	nestedGroups         = 100
	nestedUsersPerGroup  = 20
	nestedFolders        = 200
	nestedFolderGroups   = 2 // group viewers per folder
	nestedFolderUsers    = 2 // user viewers per folder
	nestedDocuments      = 3000
	nestedDirectViewerOf = 3 // every third document has a direct viewer
)

// nestedOrg is the query engine's reference graph: users in a binary tree
// of nested groups (group k contains groups 2k+1 and 2k+2), folders in a
// ternary tree (folder f's parent is (f-1)/3) viewed by groups and users,
// and documents in folders with an owner, every third with a direct
// viewer. Checks on documents walk both trees.
type nestedOrg struct {
	opts                         Options
	users, groups, folders, docs int
}

func newNestedOrg(opts Options) Dataset {
	s := opts.Scale
	// Units divide the base counts, so whole scales are exact multiples.
	return &nestedOrg{opts: opts, users: scaled(nestedUsers, s, 40), groups: scaled(nestedGroups, s, 4),
		folders: scaled(nestedFolders, s, 2), docs: scaled(nestedDocuments, s, 3)}
}

func (n *nestedOrg) Name() string   { return nestedOrgName }
func (n *nestedOrg) Schema() string { return nestedOrgSchema }

func (n *nestedOrg) Size() int {
	groups := (n.groups - 1) + n.groups*nestedUsersPerGroup
	folders := (n.folders - 1) + n.folders*(nestedFolderGroups+nestedFolderUsers)
	docs := 2*n.docs + (n.docs+nestedDirectViewerOf-1)/nestedDirectViewerOf
	return groups + folders + docs
}

func (n *nestedOrg) Relationships() iter.Seq[graph.Relationship] {
	return func(yield func(graph.Relationship) bool) {
		r := newRand(n.opts.Seed, 1)
		for g := range n.groups {
			// The nesting edge to the parent first: group g is a child of (g-1)/2.
			if g > 0 && !yield(subjectSet("group", id("g", (g-1)/2), "member", "group", id("g", g), "member")) {
				return
			}
			for _, u := range distinct(r, nestedUsersPerGroup, n.users) {
				if !yield(rel("group", id("g", g), "member", "user", id("u", u))) {
					return
				}
			}
		}
		for f := range n.folders {
			fid := id("f", f)
			if f > 0 && !yield(rel("folder", fid, "parent", "folder", id("f", (f-1)/3))) {
				return
			}
			for _, g := range distinct(r, nestedFolderGroups, n.groups) {
				if !yield(subjectSet("folder", fid, "viewer", "group", id("g", g), "member")) {
					return
				}
			}
			for _, u := range distinct(r, nestedFolderUsers, n.users) {
				if !yield(rel("folder", fid, "viewer", "user", id("u", u))) {
					return
				}
			}
		}
		for d := range n.docs {
			did := id("d", d)
			if !yield(rel("document", did, "parent", "folder", id("f", r.IntN(n.folders)))) {
				return
			}
			if !yield(rel("document", did, "owner", "user", id("u", r.IntN(n.users)))) {
				return
			}
			if d%nestedDirectViewerOf == 0 && !yield(rel("document", did, "viewer", "user", id("u", r.IntN(n.users)))) {
				return
			}
		}
	}
}

func (n *nestedOrg) NewSampler(seed uint64) *Sampler { return newSampler(n, seed) }

func (n *nestedOrg) NewEnemy(worker int) NewEnemyCase {
	// The grant sits one arrow away from the checked document, so a stale
	// answer could come from any cached step of the walk.
	w := id("ne-", worker)
	return NewEnemyCase{
		Setup: []graph.Relationship{rel("document", w, "parent", "folder", w)},
		Grant: rel("folder", w, "viewer", "user", w),
		Check: Check{
			Resource:   graph.ObjectRef{Type: "document", ID: w},
			Permission: "view",
			Subject:    graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: w}},
		},
	}
}

func (n *nestedOrg) user(r *rand.Rand) graph.SubjectRef {
	return graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: id("u", r.IntN(n.users))}}
}

func (n *nestedOrg) document(r *rand.Rand) graph.ObjectRef {
	return graph.ObjectRef{Type: "document", ID: id("d", r.IntN(n.docs))}
}

func (n *nestedOrg) check(r *rand.Rand) Check {
	return Check{Resource: n.document(r), Permission: "view", Subject: n.user(r)}
}

func (n *nestedOrg) lookupResources(r *rand.Rand) LookupResources {
	return LookupResources{ResourceType: "document", Permission: "view", Subject: n.user(r)}
}

func (n *nestedOrg) lookupSubjects(r *rand.Rand) LookupSubjects {
	return LookupSubjects{Resource: n.document(r), Permission: "view", SubjectType: "user"}
}

func (n *nestedOrg) expand(r *rand.Rand) Expand {
	if r.IntN(2) == 0 {
		return Expand{Resource: graph.ObjectRef{Type: "folder", ID: id("f", r.IntN(n.folders))}, Permission: "view"}
	}
	return Expand{Resource: n.document(r), Permission: "view"}
}

func (n *nestedOrg) write(r *rand.Rand) graph.Relationship {
	return rel("document", n.document(r).ID, "viewer", "user", writerID(r))
}
