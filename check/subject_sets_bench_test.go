package check

import (
	"fmt"
	"testing"
)

// BenchmarkSubjectSetAlgebra times the set operations a LookupSubjects
// spends its CPU in: intersecting a large set with a larger one, and
// unioning many small sets into one in place.
func BenchmarkSubjectSetAlgebra(b *testing.B) {
	listed := func(from, n, step int) *subjectSet {
		s := emptySet()
		for i := range n {
			s.set(subjectID(from+i*step), memberYes)
		}
		return s
	}
	wide, narrow := listed(0, 50000, 1), listed(0, 5000, 7)
	b.Run("intersect", func(b *testing.B) {
		for b.Loop() {
			combine(narrow, wide, andMember)
		}
	})
	small := make([]*subjectSet, 200)
	for i := range small {
		small[i] = listed(i*37, 50, 3)
	}
	b.Run("union", func(b *testing.B) {
		for b.Loop() {
			s := emptySet()
			for _, x := range small {
				s = s.union(x, memberYes, 0, nil)
			}
		}
	})
}

// BenchmarkSubjectSetPlace times a lookup in an indexed set (a quarter
// of them of subjects it lists), and indexing a set: what intersecting with
// a cached set costs per subject, and what its first lookup pays.
func BenchmarkSubjectSetPlace(b *testing.B) {
	for _, n := range []int{64, 10000, 1000000} {
		s := emptySet()
		for i := range n {
			s.set(subjectID(i*2), memberYes)
		}
		s.place(0)
		b.Run(fmt.Sprint("lookup/", n), func(b *testing.B) {
			id := subjectID(0)
			for b.Loop() {
				s.place(id)
				id = (id + 7919) % subjectID(4*n)
			}
		})
		b.Run(fmt.Sprint("index/", n), func(b *testing.B) {
			for b.Loop() {
				s.index.Store(nil)
				s.buildIndex()
			}
		})
	}
}
