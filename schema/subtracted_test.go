package schema

import (
	"fmt"
	"testing"
)

// TestSubtracted lists the nodes named on subtracted sides of the
// permissions on a target's paths: nested in unions and intersections, on
// every type an arrow's tupleset allows (that defines the arrow's target),
// and under a subtracted side's own exclusions; never a base's.
func TestSubtracted(t *testing.T) {
	s := mustCompileT(t, `
definition user {}
definition org {
	relation parent: org
	relation suspended: user
	permission is_suspended = suspended + parent->is_suspended
}
definition team {
	relation member: user
	relation suspended: user
	permission is_suspended = suspended
}
definition project {
	relation org: org | team
	relation viewer: user
	relation banned: user
	relation frozen: user
	permission read = (viewer - (banned + org->is_suspended)) & (viewer - (frozen - viewer))
}
definition document {
	relation project: project
	relation owner: user
	relation viewer: user
	relation blocked: user
	permission view = (viewer + project->read) - blocked
	permission edit = owner - project->read
}`)
	cases := []struct {
		target Node
		want   string
	}{
		{Node{"document", "view"}, "[document#blocked org#is_suspended project#banned project#frozen project#viewer team#is_suspended]"},
		{Node{"document", "edit"}, "[project#read]"},
		{Node{"project", "read"}, "[org#is_suspended project#banned project#frozen project#viewer team#is_suspended]"},
		{Node{"org", "is_suspended"}, "[]"},
	}
	for _, tc := range cases {
		got := s.Reachability().Lookup(tc.target).Subtracted()
		if fmt.Sprint(got) != tc.want {
			t.Errorf("Subtracted(%s) = %v, want %s", tc.target, got, tc.want)
		}
	}
}
