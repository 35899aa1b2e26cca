package check

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/internal/golden"
)

// TestAccessGolden runs the cases of testdata/access/*.txt: the commands
// of TestGolden plus
//
//	who resource [permissions=a,b] [types=t1,t2] [limit=N] [context=JSON] [now=T]
//	what subject [types=t1,t2] [permissions=a,b] [limit=N] [context=JSON] [now=T]
//	ends-at resource#permission@subject [context=JSON] [now=T]
//
// who and what print one row a line, its path on the next. Every answer
// must be the same from the cached and the uncached engine, every path
// must be valid, and with a limit the pages, resumed by cursor, must
// add up to the whole answer.
func TestAccessGolden(t *testing.T) {
	for _, path := range golden.Glob(t, "testdata/access/*.txt") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			w := newWorld(t)
			golden.RunFile(t, path, func(_ *testing.T, c *golden.Case) string {
				switch c.Command {
				case "who", "what", "ends-at":
					out, err := w.access(c)
					if err != nil {
						return "error: " + err.Error()
					}
					return out
				}
				return w.run(c)
			})
		})
	}
}

func (w *world) access(c *golden.Case) (string, error) {
	if len(c.Args) == 0 {
		return "", fmt.Errorf("usage: %s query [options]", c.Command)
	}
	o, err := options(c.Args[1:])
	if err != nil {
		return "", err
	}
	now, err := optNow(o)
	if err != nil {
		return "", err
	}
	cctx, err := optContext(o)
	if err != nil {
		return "", err
	}
	list := func(k string) []string {
		if o[k] == "" {
			return nil
		}
		return strings.Split(o[k], ",")
	}
	limit := 0
	fmt.Sscan(o["limit"], &limit)
	ctx := context.Background()
	var run func(e *Engine, after *AccessCursor, yield func(AccessRow) bool) error
	switch c.Command {
	case "ends-at":
		req, err := parseCheck(c.Args[0], c.Args[1:])
		if err != nil {
			return "", err
		}
		var lines []string
		for _, e := range []*Engine{w.nocache, w.cached} {
			t, granted, err := e.EndsAt(ctx, w.snap(), req)
			line := ""
			switch {
			case err != nil:
				line = "error: " + err.Error()
			case !granted:
				line = "not granted"
			case t.IsZero():
				line = "standing"
			default:
				line = "ends " + t.Format(time.RFC3339Nano)
			}
			lines = append(lines, line)
		}
		if lines[0] != lines[1] {
			w.t.Errorf("ends-at %s: uncached %q, cached %q", c.Args[0], lines[0], lines[1])
		}
		return lines[0], nil
	case "who":
		res, err := graph.ParseObjectRef(c.Args[0])
		if err != nil {
			return "", err
		}
		run = func(e *Engine, after *AccessCursor, yield func(AccessRow) bool) error {
			return e.WhoCanAccess(ctx, w.snap(), WhoRequest{Resource: res, Permissions: list("permissions"), SubjectTypes: list("types"),
				Context: cctx, Now: now, After: after}, yield)
		}
	case "what":
		sub, err := graph.ParseSubjectRef(c.Args[0])
		if err != nil {
			return "", err
		}
		run = func(e *Engine, after *AccessCursor, yield func(AccessRow) bool) error {
			return e.WhatCanAccess(ctx, w.snap(), WhatRequest{Subject: sub, ResourceTypes: list("types"), Permissions: list("permissions"),
				Context: cctx, Now: now, After: after}, yield)
		}
	}
	var outs []string
	for _, e := range []*Engine{w.nocache, w.cached} {
		var b strings.Builder
		err := run(e, nil, func(r AccessRow) bool {
			b.WriteString(rowString(r))
			if err := w.verifyPath(r.Path, now); err != nil {
				b.WriteString("INVALID PATH: " + err.Error() + "\n")
			}
			return true
		})
		if err != nil {
			return "", err
		}
		outs = append(outs, strings.TrimSuffix(b.String(), "\n"))
	}
	if outs[0] != outs[1] {
		w.t.Errorf("%s %s: uncached\n%s\ncached\n%s", c.Command, c.Args[0], outs[0], outs[1])
	}
	if limit > 0 {
		paged, err := pageAccess(run, w.cached, limit)
		if err != nil {
			return "", err
		}
		if paged != outs[0] {
			w.t.Errorf("%s %s limit %d: pages\n%s\none call\n%s", c.Command, c.Args[0], limit, paged, outs[0])
		}
	}
	return outs[0], nil
}

// pageAccess reads every row, limit a call, resuming each call after the
// last row by its encoded cursor.
func pageAccess(run func(*Engine, *AccessCursor, func(AccessRow) bool) error, e *Engine, limit int) (string, error) {
	var b strings.Builder
	var after *AccessCursor
	for page := 0; ; page++ {
		n := 0
		err := run(e, after, func(r AccessRow) bool {
			b.WriteString(rowString(r))
			c, err := DecodeAccessCursor(r.Cursor.Encode())
			if err != nil || c != r.Cursor {
				b.WriteString(fmt.Sprintf("CURSOR DOES NOT ROUND-TRIP: %v\n", err))
			}
			after = &c
			n++
			return n < limit
		})
		if err != nil {
			return "", err
		}
		if n < limit {
			return strings.TrimSuffix(b.String(), "\n"), nil
		}
		if page > 1000 {
			return "", fmt.Errorf("more than 1000 pages")
		}
	}
}

// rowString prints a row and, indented, its path.
func rowString(r AccessRow) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s#%s@%s %s", r.Resource, r.Permission, r.Subject, r.Permissionship)
	if len(r.Missing) > 0 {
		b.WriteString(" missing " + strings.Join(r.Missing, ","))
	}
	if len(r.Excluded) > 0 {
		b.WriteString(" except " + strings.Join(r.Excluded, ","))
	}
	if !r.EndsAt.IsZero() {
		b.WriteString(" ends " + r.EndsAt.Format(time.RFC3339Nano))
	}
	var hs []string
	for _, h := range r.Holdings {
		hs = append(hs, h.String())
	}
	b.WriteString(" [" + strings.Join(hs, ",") + "]\n")
	b.WriteString("  " + r.Path.String() + "\n")
	return b.String()
}
