package dataset

import (
	_ "embed"
	"iter"
	"math/rand/v2"
	"time"

	"github.com/pembadb/pemba/graph"
)

const identityPlatformName = "identity-platform"

//go:embed identity_platform.zed
var identityPlatformSchema string

// Per-scale counts of the identity-platform graph (about 1.04M
// relationships at scale 1).
const (
	ipOrgs         = 100
	ipTeams        = 2000 // a multiple of ipTeamBlock
	ipEmployees    = 40000
	ipContractors  = 10000
	ipAgents       = 10000
	ipWorkloads    = 5000
	ipProjects     = 5000
	ipModels       = 20000
	ipDatasets     = 40000
	ipRepositories = 30000
	ipClusters     = 1000
	ipSecrets      = 40000

	// ipTeamBlock: teams form trees of this many, team j of a block being
	// a sub-team of team (j-1)/3 of the same block.
	ipTeamBlock = 50
	// ipAgentScopes: projects each agent may read on its principal's behalf.
	ipAgentScopes = 4
)

// Grant lifetimes. Fixed instants keep the graph independent of the day it
// is generated: most time-bound grants end in the 2030s, and one in ten has
// already expired, so checks must skip it.
var (
	futureEpoch = time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	pastEpoch   = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
)

// identityPlatform is the graph an identity team runs: people in teams and
// nested orgs, AI agents with delegated, action-scoped and time-bound access
// on behalf of a person, workloads with their own identities, and resources
// in projects with owners, sensitivity tiers and environments; grants are
// plain, expiring or caveated (network, environment), with rare break-glass
// access. See identity_platform.zed for the model.
type identityPlatform struct {
	opts Options
	n    ipCounts
}

// ipCounts are the object counts at one scale.
type ipCounts struct {
	orgs, teams, employees, contractors, agents, workloads, projects int
	models, datasets, repositories, clusters, secrets                int
}

// resourceKind describes one resource definition for generation and
// sampling.
type resourceKind struct {
	typ, prefix string
	count       int
	readers     int  // reader (or operator) relationships per resource
	placed      bool // has an environment
}

func newIdentityPlatform(opts Options) Dataset {
	s := opts.Scale
	return &identityPlatform{opts: opts, n: ipCounts{
		// Units: teams come in whole blocks, and every count stays a
		// multiple of the "one in k" rules Size counts.
		orgs: scaled(ipOrgs, s, 2), teams: scaled(ipTeams, s, 100),
		employees: scaled(ipEmployees, s, 500), contractors: scaled(ipContractors, s, 500),
		agents: scaled(ipAgents, s, 1000), workloads: scaled(ipWorkloads, s, 10), projects: scaled(ipProjects, s, 5),
		models: scaled(ipModels, s, 20), datasets: scaled(ipDatasets, s, 40), repositories: scaled(ipRepositories, s, 30),
		clusters: scaled(ipClusters, s, 10), secrets: scaled(ipSecrets, s, 100),
	}}
}

func (p *identityPlatform) Name() string   { return identityPlatformName }
func (p *identityPlatform) Schema() string { return identityPlatformSchema }

func (p *identityPlatform) kinds() []resourceKind {
	n := p.n
	return []resourceKind{
		{typ: "model", prefix: "model-", count: n.models, readers: 2},
		{typ: "dataset", prefix: "ds-", count: n.datasets, readers: 3},
		{typ: "repository", prefix: "repo-", count: n.repositories, readers: 2},
		{typ: "cluster", prefix: "cluster-", count: n.clusters, readers: 2, placed: true},
		{typ: "secret", prefix: "secret-", count: n.secrets, readers: 2, placed: true},
	}
}

// breakGlassEvery: one resource in this many of the kind has a break-glass grant.
func breakGlassEvery(typ string) int {
	switch typ {
	case "cluster":
		return 10
	case "secret":
		return 100
	}
	return 0
}

func (p *identityPlatform) Size() int {
	n := p.n
	size := 3*(n.orgs-1) + n.orgs // nesting, admins
	size += n.teams + n.teams - n.teams/ipTeamBlock
	size += 3*n.employees + 3*n.contractors // org + two teams each
	size += n.workloads                     // owners
	size += 6 + n.teams/10 + n.teams/50 + n.employees/100 + n.workloads/10
	size += n.teams/2 + n.teams/5 + n.teams/20 + n.workloads/5
	size += 12*n.projects + n.projects/5
	size += 2 * n.workloads
	size += (3 + ipAgentScopes) * n.agents
	size += (n.employees+n.contractors)/500 + n.agents/1000
	for _, k := range p.kinds() {
		per := 3 + k.readers
		if k.placed {
			per++
		}
		size += per * k.count
		if e := breakGlassEvery(k.typ); e > 0 {
			size += k.count / e
		}
	}
	return size
}

func (p *identityPlatform) Relationships() iter.Seq[graph.Relationship] {
	return func(yield func(graph.Relationship) bool) {
		g := &ipGen{p: p, n: p.n, seed: p.opts.Seed, yield: yield}
		_ = g.orgs() && g.teams() && g.people() && g.workloads() && g.tiers() &&
			g.environments() && g.projects() && g.workloadGrants() && g.agents() &&
			g.suspensions() && g.resources()
	}
}

// ipGen is one pass of generation. Each section draws from its own random
// stream and returns false once the consumer stops.
type ipGen struct {
	p     *identityPlatform
	n     ipCounts
	seed  uint64
	yield func(graph.Relationship) bool

	// teamsOf[person] are the two teams of a person (employees first, then
	// contractors), recorded by people for agents.
	teamsOf [][2]int32
	// teamProjects[team] are the projects the team owns, edits or views,
	// recorded by projects so agents are delegated plausible projects.
	teamProjects [][]int32
}

func (g *ipGen) emit(r graph.Relationship) bool { return g.yield(r) }

func (g *ipGen) orgs() bool {
	r := newRand(g.seed, 101)
	for o := range g.n.orgs {
		oid := id("org-", o)
		if o > 0 {
			parent := id("org-", (o-1)/4)
			if !g.emit(rel("org", oid, "parent", "org", parent)) ||
				!g.emit(subjectSet("org", parent, "employee", "org", oid, "employee")) ||
				!g.emit(subjectSet("org", parent, "contractor", "org", oid, "contractor")) {
				return false
			}
		}
		if !g.emit(rel("org", oid, "admin", "user", id("emp-", r.IntN(g.n.employees)))) {
			return false
		}
	}
	return true
}

func (g *ipGen) teams() bool {
	r := newRand(g.seed, 102)
	for t := range g.n.teams {
		tid := id("team-", t)
		if !g.emit(rel("team", tid, "org", "org", id("org-", r.IntN(g.n.orgs)))) {
			return false
		}
		if j := t % ipTeamBlock; j > 0 && !g.emit(rel("team", id("team-", t-j+(j-1)/3), "subteam", "team", tid)) {
			return false
		}
	}
	return true
}

// person returns the user ID of person i (employees, then contractors).
func (g *ipGen) person(i int) string {
	if i < g.n.employees {
		return id("emp-", i)
	}
	return id("ctr-", i-g.n.employees)
}

func (g *ipGen) people() bool {
	r := newRand(g.seed, 103)
	total := g.n.employees + g.n.contractors
	g.teamsOf = make([][2]int32, total)
	for i := range total {
		uid := g.person(i)
		contractor := i >= g.n.employees
		relation := "employee"
		if contractor {
			relation = "contractor"
		}
		orgRel := rel("org", id("org-", r.IntN(g.n.orgs)), relation, "user", uid)
		if contractor {
			orgRel.Expiration = expiration(r)
		}
		if !g.emit(orgRel) {
			return false
		}
		for k, t := range distinct(r, 2, g.n.teams) {
			g.teamsOf[i][k] = int32(t)
			m := rel("team", id("team-", t), "member", "user", uid)
			if contractor {
				m.Expiration = expiration(r)
			}
			if !g.emit(m) {
				return false
			}
		}
	}
	return true
}

func (g *ipGen) workloads() bool {
	r := newRand(g.seed, 104)
	for w := range g.n.workloads {
		if !g.emit(rel("workload", id("svc-", w), "owner", "team", id("team-", r.IntN(g.n.teams)))) {
			return false
		}
	}
	return true
}

func (g *ipGen) tiers() bool {
	fixed := []graph.Relationship{
		rel("tier", "public", "cleared", "user", graph.Wildcard),
		rel("tier", "public", "cleared", "workload", graph.Wildcard),
		rel("tier", "public", "cleared", "agent", graph.Wildcard),
		rel("tier", "internal", "cleared", "user", graph.Wildcard),
		rel("tier", "internal", "cleared", "workload", graph.Wildcard),
		rel("tier", "internal", "cleared", "agent", graph.Wildcard),
	}
	for _, f := range fixed {
		if !g.emit(f) {
			return false
		}
	}
	for t := range g.n.teams {
		if t%10 == 0 && !g.emit(rel("tier", "confidential", "cleared_team", "team", id("team-", t))) {
			return false
		}
		if t%50 == 0 && !g.emit(rel("tier", "restricted", "cleared_team", "team", id("team-", t))) {
			return false
		}
	}
	for e := 0; e < g.n.employees; e += 100 {
		if !g.emit(rel("tier", "restricted", "cleared", "user", id("emp-", e))) {
			return false
		}
	}
	for w := 0; w < g.n.workloads; w += 10 {
		if !g.emit(rel("tier", "restricted", "cleared", "workload", id("svc-", w))) {
			return false
		}
	}
	return true
}

func (g *ipGen) environments() bool {
	for t := range g.n.teams {
		tid := id("team-", t)
		if t%2 == 0 && !g.emit(rel("environment", "dev", "deployer", "team", tid)) {
			return false
		}
		if t%5 == 0 && !g.emit(rel("environment", "staging", "deployer", "team", tid)) {
			return false
		}
		if t%20 == 0 && !g.emit(rel("environment", "prod", "deployer", "team", tid)) {
			return false
		}
	}
	for w := 0; w < g.n.workloads; w += 5 {
		if !g.emit(rel("environment", "prod", "deployer", "workload", id("svc-", w))) {
			return false
		}
	}
	return true
}

// corpNetwork is the caveat context of network-restricted grants.
func corpNetwork() *graph.Caveat {
	return &graph.Caveat{Name: "on_network", Context: map[string]any{"allowed_cidr": "10.0.0.0/8"}}
}

func (g *ipGen) projects() bool {
	r := newRand(g.seed, 105)
	g.teamProjects = make([][]int32, g.n.teams)
	for p := range g.n.projects {
		pid := id("proj-", p)
		record := func(t int) { g.teamProjects[t] = append(g.teamProjects[t], int32(p)) }
		owner := r.IntN(g.n.teams)
		record(owner)
		rels := []graph.Relationship{
			rel("project", pid, "org", "org", id("org-", r.IntN(g.n.orgs))),
			rel("project", pid, "owner", "team", id("team-", owner)),
			rel("project", pid, "owner", "user", id("emp-", r.IntN(g.n.employees))),
		}
		teams := distinct(r, 5, g.n.teams)
		for i, t := range teams {
			record(t)
			relation := "viewer"
			if i < 2 {
				relation = "editor"
			}
			rels = append(rels, rel("project", pid, relation, "team", id("team-", t)))
		}
		users := distinct(r, 3, g.n.employees)
		rels = append(rels,
			rel("project", pid, "viewer", "user", id("emp-", users[0])),
			rel("project", pid, "viewer", "user", id("emp-", users[1])),
			rel("project", pid, "viewer", "user", id("ctr-", r.IntN(g.n.contractors))))
		networked := rel("project", pid, "viewer", "user", id("emp-", users[2]))
		networked.Caveat = corpNetwork()
		rels = append(rels, networked)
		rels[len(rels)-2].Expiration = expiration(r)
		if p%5 == 0 {
			rels = append(rels, rel("project", pid, "viewer", "org", id("org-", r.IntN(g.n.orgs))))
		}
		for _, x := range rels {
			if !g.emit(x) {
				return false
			}
		}
	}
	return true
}

func (g *ipGen) workloadGrants() bool {
	r := newRand(g.seed, 106)
	for w := range g.n.workloads {
		wid := id("svc-", w)
		if !g.emit(rel("project", id("proj-", r.IntN(g.n.projects)), "editor", "workload", wid)) ||
			!g.emit(rel("project", id("proj-", r.IntN(g.n.projects)), "viewer", "workload", wid)) {
			return false
		}
	}
	return true
}

func (g *ipGen) agents() bool {
	r := newRand(g.seed, 107)
	people := g.n.employees + g.n.contractors
	for a := range g.n.agents {
		aid := id("agent-", a)
		principal := r.IntN(people)
		uid := g.person(principal)
		delegate := rel("user", uid, "delegate", "agent", aid)
		delegate.Expiration = expiration(r)
		if !g.emit(delegate) || !g.emit(rel("agent", aid, "principal", "user", uid)) {
			return false
		}
		// Mostly projects the principal's teams work on, so the delegation
		// and the principal's own access meet; one at random, which the
		// intersection must refuse unless the principal has access anyway.
		var own []int32
		for _, t := range g.teamsOf[principal] {
			own = append(own, g.teamProjects[t]...)
		}
		scopes := make([]int, 0, ipAgentScopes)
		for tries := 0; len(scopes) < ipAgentScopes; tries++ {
			var p int
			if len(own) > 0 && tries < 3*ipAgentScopes && len(scopes) < ipAgentScopes-1 {
				p = int(own[r.IntN(len(own))])
			} else {
				p = r.IntN(g.n.projects)
			}
			if !containsInt(scopes, p) {
				scopes = append(scopes, p)
			}
		}
		for _, p := range scopes {
			x := rel("project", id("proj-", p), "agent_reader", "agent", aid)
			x.Expiration = expiration(r)
			if !g.emit(x) {
				return false
			}
		}
		w := rel("project", id("proj-", scopes[0]), "agent_writer", "agent", aid)
		w.Expiration = expiration(r)
		if !g.emit(w) {
			return false
		}
	}
	return true
}

func (g *ipGen) suspensions() bool {
	r := newRand(g.seed, 108)
	people := g.n.employees + g.n.contractors
	for i := 0; i < people; i += 500 {
		if !g.emit(rel("org", id("org-", r.IntN(g.n.orgs)), "suspended", "user", g.person(i))) {
			return false
		}
	}
	for a := 0; a < g.n.agents; a += 1000 {
		if !g.emit(rel("org", id("org-", r.IntN(g.n.orgs)), "suspended", "agent", id("agent-", a))) {
			return false
		}
	}
	return true
}

// tierOf draws a sensitivity tier: 10% public, 50% internal, 30%
// confidential, 10% restricted.
func tierOf(r *rand.Rand) string {
	switch x := r.IntN(10); {
	case x < 1:
		return "public"
	case x < 6:
		return "internal"
	case x < 9:
		return "confidential"
	default:
		return "restricted"
	}
}

// environmentOf draws an environment: 50% dev, 20% staging, 30% prod.
func environmentOf(r *rand.Rand) string {
	switch x := r.IntN(10); {
	case x < 5:
		return "dev"
	case x < 7:
		return "staging"
	default:
		return "prod"
	}
}

func (g *ipGen) resources() bool {
	r := newRand(g.seed, 109)
	for _, k := range g.p.kinds() {
		relation := "reader"
		if k.typ == "cluster" {
			relation = "operator"
		}
		bg := breakGlassEvery(k.typ)
		for i := range k.count {
			rid := id(k.prefix, i)
			env := ""
			if k.placed {
				env = environmentOf(r)
			}
			rels := []graph.Relationship{
				rel(k.typ, rid, "project", "project", id("proj-", r.IntN(g.n.projects))),
				rel(k.typ, rid, "tier", "tier", tierOf(r)),
				rel(k.typ, rid, "owner", "user", id("emp-", r.IntN(g.n.employees))),
			}
			if k.placed {
				rels = append(rels, rel(k.typ, rid, "environment", "environment", env))
			}
			seen := make([]graph.SubjectRef, 0, k.readers)
			for len(seen) < k.readers {
				x := g.reader(r, k.typ, rid, relation, env)
				if containsSubject(seen, x.Subject) {
					continue
				}
				seen = append(seen, x.Subject)
				rels = append(rels, x)
			}
			if bg > 0 && i%bg == 0 {
				x := rel(k.typ, rid, "break_glass", "user", id("emp-", r.IntN(g.n.employees)))
				x.Caveat = &graph.Caveat{Name: "break_glass", Context: map[string]any{"min_severity": float64(1 + r.IntN(3))}}
				x.Expiration = expiration(r)
				rels = append(rels, x)
			}
			for _, x := range rels {
				if !g.emit(x) {
					return false
				}
			}
		}
	}
	return true
}

// reader draws one reader (operator, for clusters) grant on a resource of
// type typ, in the mix of plain, expiring and caveated grants that type
// allows.
func (g *ipGen) reader(r *rand.Rand, typ, rid, relation, env string) graph.Relationship {
	employee := func() graph.Relationship { return rel(typ, rid, relation, "user", id("emp-", r.IntN(g.n.employees))) }
	team := func() graph.Relationship { return rel(typ, rid, relation, "team", id("team-", r.IntN(g.n.teams))) }
	workload := func() graph.Relationship {
		return rel(typ, rid, relation, "workload", id("svc-", r.IntN(g.n.workloads)))
	}
	expiring := func() graph.Relationship {
		x := rel(typ, rid, relation, "user", g.person(r.IntN(g.n.employees+g.n.contractors)))
		x.Expiration = expiration(r)
		return x
	}
	networked := func() graph.Relationship {
		x := employee()
		x.Caveat = corpNetwork()
		return x
	}
	x := r.IntN(10)
	switch typ {
	case "secret":
		switch {
		case x < 3:
			return expiring()
		case x < 5:
			return team()
		case x < 7:
			return workload()
		default:
			w := workload()
			w.Caveat = &graph.Caveat{Name: "in_environment", Context: map[string]any{"allowed_environments": []any{env}}}
			return w
		}
	case "cluster":
		switch {
		case x < 4:
			return employee()
		case x < 6:
			return networked()
		case x < 9:
			return team()
		default:
			return workload()
		}
	case "repository":
		switch {
		case x < 5:
			return employee()
		case x < 7:
			return expiring()
		case x < 9:
			return team()
		default:
			return workload()
		}
	default: // model, dataset
		switch {
		case x < 4:
			return employee()
		case x < 6:
			return expiring()
		case x < 7:
			return networked()
		case x < 9:
			return team()
		default:
			return workload()
		}
	}
}

// expiration draws the end of a time-bound grant; one in ten has already
// passed.
func expiration(r *rand.Rand) *time.Time {
	var t time.Time
	if r.IntN(10) == 0 {
		t = pastEpoch.Add(time.Duration(r.IntN(300*24)) * time.Hour)
	} else {
		t = futureEpoch.Add(time.Duration(r.IntN(3650*24)) * time.Hour)
	}
	return &t
}

func containsInt(xs []int, x int) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func containsSubject(xs []graph.SubjectRef, x graph.SubjectRef) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func (p *identityPlatform) NewSampler(seed uint64) *Sampler { return newSampler(p, seed) }

func (p *identityPlatform) NewEnemy(worker int) NewEnemyCase {
	// A public model with no project: the reader grant is the only path.
	w := id("ne-", worker)
	return NewEnemyCase{
		Setup: []graph.Relationship{rel("model", w, "tier", "tier", "public")},
		Grant: rel("model", w, "reader", "user", w),
		Check: Check{
			Resource:   graph.ObjectRef{Type: "model", ID: w},
			Permission: "read",
			Subject:    graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: w}},
		},
	}
}

// resource draws a resource, each kind in proportion to its count.
func (p *identityPlatform) resource(r *rand.Rand) graph.ObjectRef {
	kinds := p.kinds()
	total := 0
	for _, k := range kinds {
		total += k.count
	}
	x := r.IntN(total)
	for _, k := range kinds {
		if x < k.count {
			return graph.ObjectRef{Type: k.typ, ID: id(k.prefix, x)}
		}
		x -= k.count
	}
	panic("unreachable: x is below the total count")
}

// subject draws a principal: 80% people, 10% agents, 10% workloads.
func (p *identityPlatform) subject(r *rand.Rand) graph.SubjectRef {
	var o graph.ObjectRef
	switch x := r.IntN(10); {
	case x < 8:
		people := p.n.employees + p.n.contractors
		i := r.IntN(people)
		o = graph.ObjectRef{Type: "user", ID: id("emp-", i)}
		if i >= p.n.employees {
			o.ID = id("ctr-", i-p.n.employees)
		}
	case x < 9:
		o = graph.ObjectRef{Type: "agent", ID: id("agent-", r.IntN(p.n.agents))}
	default:
		o = graph.ObjectRef{Type: "workload", ID: id("svc-", r.IntN(p.n.workloads))}
	}
	return graph.SubjectRef{Object: o}
}

// requestContext draws the caveat context a client sends: half the
// requests carry none, so caveated grants come back conditional.
func requestContext(r *rand.Rand) map[string]any {
	if r.IntN(2) == 0 {
		return nil
	}
	ips := []string{"10.1.2.3", "192.168.7.9"}
	envs := []string{"dev", "staging", "prod"}
	return map[string]any{
		"source_ip":         ips[r.IntN(len(ips))],
		"environment":       envs[r.IntN(len(envs))],
		"incident_severity": float64(r.IntN(4)),
	}
}

func (p *identityPlatform) check(r *rand.Rand) Check {
	perm := "read"
	if r.IntN(5) == 0 {
		perm = "write"
	}
	return Check{Resource: p.resource(r), Permission: perm, Subject: p.subject(r), Context: requestContext(r)}
}

func (p *identityPlatform) lookupResources(r *rand.Rand) LookupResources {
	res := p.resource(r)
	return LookupResources{ResourceType: res.Type, Permission: "read", Subject: p.subject(r), Context: requestContext(r)}
}

func (p *identityPlatform) lookupSubjects(r *rand.Rand) LookupSubjects {
	return LookupSubjects{Resource: p.resource(r), Permission: "read", SubjectType: "user", Context: requestContext(r)}
}

func (p *identityPlatform) expand(r *rand.Rand) Expand {
	return Expand{Resource: p.resource(r), Permission: "read"}
}

func (p *identityPlatform) write(r *rand.Rand) graph.Relationship {
	return rel("dataset", id("ds-", r.IntN(p.n.datasets)), "reader", "user", writerID(r))
}
