package check

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
)

// AccessCursor resumes WhoCanAccess or WhatCanAccess strictly after one
// row. It pins the revision the row was read at: a resumed call must read
// that exact revision, or the pages may skip or repeat rows.
type AccessCursor struct {
	Revision storage.Revision
	// The row's key: its resource, permission and subject.
	Resource   graph.ObjectRef
	Permission string
	Subject    graph.SubjectRef
}

// accessCursorPrefix versions the encoding.
const accessCursorPrefix = "ac1."

// Encode returns the cursor as an opaque string, safe in URLs.
func (c AccessCursor) Encode() string {
	var b strings.Builder
	for i, f := range []string{strconv.FormatUint(uint64(c.Revision), 10), c.Resource.Type, c.Resource.ID, c.Permission,
		c.Subject.Object.Type, c.Subject.Object.ID, c.Subject.Relation} {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(f)
	}
	return accessCursorPrefix + base64.RawURLEncoding.EncodeToString([]byte(b.String()))
}

// DecodeAccessCursor parses a string made by AccessCursor.Encode. A
// malformed cursor is a RequestError for the part "cursor".
func DecodeAccessCursor(s string) (AccessCursor, error) {
	bad := &RequestError{Part: "cursor", Message: "malformed cursor"}
	rest, ok := strings.CutPrefix(s, accessCursorPrefix)
	if !ok {
		return AccessCursor{}, bad
	}
	raw, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return AccessCursor{}, bad
	}
	f := strings.Split(string(raw), " ")
	if len(f) != 7 {
		return AccessCursor{}, bad
	}
	rev, err := strconv.ParseUint(f[0], 10, 64)
	if err != nil {
		return AccessCursor{}, bad
	}
	c := AccessCursor{Revision: storage.Revision(rev), Resource: graph.ObjectRef{Type: f[1], ID: f[2]}, Permission: f[3],
		Subject: graph.SubjectRef{Object: graph.ObjectRef{Type: f[4], ID: f[5]}, Relation: f[6]}}
	if graph.ValidateTypeName(c.Resource.Type) != nil || graph.ValidateObjectID(c.Resource.ID, false) != nil ||
		graph.ValidateRelationName(c.Permission) != nil ||
		graph.ValidateTypeName(c.Subject.Object.Type) != nil || graph.ValidateObjectID(c.Subject.Object.ID, true) != nil ||
		(c.Subject.Relation != "" && graph.ValidateRelationName(c.Subject.Relation) != nil) {
		return AccessCursor{}, bad
	}
	return c, nil
}

// checkCursor checks that a cursor belongs to a call reading rev.
func checkCursor(c *AccessCursor, rev storage.Revision) error {
	if c == nil || c.Revision == rev {
		return nil
	}
	return &RequestError{Part: "cursor", Message: fmt.Sprintf("cursor was issued at revision %d, the request reads revision %d", c.Revision, rev)}
}
