package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/proto"

	pb "github.com/pembadb/pemba/proto/pemba/v1"
)

// How `pemba access` prints its answers: a table for people (the
// default), CSV for spreadsheets, or JSON (one response per line, the
// API's messages as they are).

// accessFormat is an output format of `pemba access`.
type accessFormat string

const (
	formatTable accessFormat = "table"
	formatCSV   accessFormat = "csv"
	formatJSON  accessFormat = "json"
)

// parseFormat reads --format; --json wins, as on every other command.
func parseFormat(s string, json bool) (accessFormat, error) {
	if json {
		return formatJSON, nil
	}
	switch f := accessFormat(strings.ToLower(s)); f {
	case formatTable, formatCSV, formatJSON:
		return f, nil
	}
	return "", fmt.Errorf("--format %q: want table, csv or json", s)
}

// tableFlushRows is how many rows a table holds before it is written:
// columns are aligned within each block of rows, so a long answer
// streams instead of being held in memory.
const tableFlushRows = 1000

// rowWriter writes the rows of one answer in one format. Rows are lists
// of cells; header names the columns (table and CSV).
type rowWriter struct {
	format accessFormat
	w      io.Writer
	header []string
	tw     *tabwriter.Writer
	cw     *csv.Writer
	rows   int
}

func newRowWriter(w io.Writer, format accessFormat, header ...string) *rowWriter {
	rw := &rowWriter{format: format, w: w, header: header}
	switch format {
	case formatTable:
		rw.tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	case formatCSV:
		rw.cw = csv.NewWriter(w)
	}
	return rw
}

// row writes one row of cells; the header goes before the first.
func (rw *rowWriter) row(cells ...string) error {
	if rw.rows == 0 && len(rw.header) > 0 {
		if err := rw.write(rw.header); err != nil {
			return err
		}
	}
	rw.rows++
	if err := rw.write(cells); err != nil {
		return err
	}
	if rw.tw != nil && rw.rows%tableFlushRows == 0 {
		return rw.tw.Flush()
	}
	return nil
}

func (rw *rowWriter) write(cells []string) error {
	if rw.cw != nil {
		return rw.cw.Write(cells)
	}
	_, err := fmt.Fprintln(rw.tw, strings.Join(cells, "\t"))
	return err
}

// message writes one JSON line (format json).
func (rw *rowWriter) message(m proto.Message) error {
	rw.rows++
	return printJSON(rw.w, m)
}

// flush writes what is buffered.
func (rw *rowWriter) flush() error {
	switch {
	case rw.tw != nil:
		return rw.tw.Flush()
	case rw.cw != nil:
		rw.cw.Flush()
		return rw.cw.Error()
	}
	return nil
}

// accessColumns are the columns of an access row, by name; a command
// picks the ones its question leaves open (who prints no resource).
var accessColumns = map[string]func(*pb.Access) string{
	"RESOURCE":   func(a *pb.Access) string { return objectFromWire(a.GetResource()).String() },
	"PERMISSION": func(a *pb.Access) string { return a.GetPermission() },
	"SUBJECT":    subjectText,
	"HOLDING":    holdingText,
	"ENDS":       func(a *pb.Access) string { return endsText(a.GetEndsAt().AsTime(), a.GetEndsAt() != nil) },
	"PATH":       func(a *pb.Access) string { return a.GetPath().GetText() },
}

// csvAccessHeader is every column of an access row in CSV: a
// spreadsheet gets the same columns from every command.
var csvAccessHeader = []string{"resource", "permission", "subject", "excluded", "permissionship", "missing_context", "holding", "ends_at", "path"}

// accessCells returns the cells of a for the given table columns, or in
// CSV every column of csvAccessHeader.
func accessCells(format accessFormat, a *pb.Access, columns []string) []string {
	if format == formatCSV {
		ends := ""
		if a.GetEndsAt() != nil {
			ends = a.GetEndsAt().AsTime().UTC().Format(time.RFC3339)
		}
		return []string{
			objectFromWire(a.GetResource()).String(), a.GetPermission(), subjectFromWire(a.GetSubject()).String(),
			strings.Join(a.GetExcludedSubjectIds(), " "), permissionshipWord(a.GetPermissionship()),
			strings.Join(a.GetMissingContext(), " "), holdingList(a.GetHoldings()), ends, a.GetPath().GetText(),
		}
	}
	cells := make([]string, len(columns))
	for i, c := range columns {
		cells[i] = accessColumns[c](a)
	}
	return cells
}

// subjectText is a row's subject; a wildcard names its exceptions:
// "user:* except bob, carol".
func subjectText(a *pb.Access) string {
	s := subjectFromWire(a.GetSubject()).String()
	if ex := a.GetExcludedSubjectIds(); len(ex) > 0 {
		s += " except " + strings.Join(ex, ", ")
	}
	return s
}

// holdingText is how an access is held, and for a conditional one the
// caveat parameters it lacks: "group,caveated (conditional: ip)".
func holdingText(a *pb.Access) string {
	s := holdingList(a.GetHoldings())
	if a.GetPermissionship() == pb.Permissionship_PERMISSIONSHIP_CONDITIONAL_PERMISSION {
		s += " (conditional: " + strings.Join(a.GetMissingContext(), ", ") + ")"
	}
	return s
}

var holdingNames = map[pb.Holding]string{
	pb.Holding_HOLDING_DIRECT:   "direct",
	pb.Holding_HOLDING_GROUP:    "group",
	pb.Holding_HOLDING_PARENT:   "parent",
	pb.Holding_HOLDING_WILDCARD: "wildcard",
	pb.Holding_HOLDING_CAVEATED: "caveated",
}

func holdingList(hs []pb.Holding) string {
	names := make([]string, 0, len(hs))
	for _, h := range hs {
		if n, ok := holdingNames[h]; ok {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return "-"
	}
	return strings.Join(names, ",")
}

func permissionshipWord(p pb.Permissionship) string {
	if p == pb.Permissionship_PERMISSIONSHIP_CONDITIONAL_PERMISSION {
		return "conditional"
	}
	return "has_permission"
}

// endsText is when an access ends, or "-" for a standing one.
func endsText(t time.Time, set bool) string {
	if !set {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// changeText describes a relationship change that caused an access to be
// gained or lost, with the audit mark (+ written, - deleted, ~ expired)
// and, when the audit log recorded it, who wrote it and why:
// `-group:eng#member@user:dana by hr "left eng"`; an expiration names
// the write that granted it: `~...[expiration:...] granted by ci "temporary"`.
func changeText(c *pb.RelationshipChange) string {
	r := relationshipFromWire(c.GetRelationship())
	var b strings.Builder
	switch c.GetOperation() {
	case pb.RelationshipChange_OPERATION_DELETED:
		b.WriteString("-")
	case pb.RelationshipChange_OPERATION_EXPIRED:
		b.WriteString("~")
	default:
		b.WriteString("+")
	}
	b.WriteString(r.String())
	if ev := c.GetAudit(); ev != nil {
		// An expiration's event is the write that granted it.
		if c.GetOperation() == pb.RelationshipChange_OPERATION_EXPIRED {
			b.WriteString(" granted")
		}
		b.WriteString(" by " + orDash(ev.GetActor()))
		if reason := ev.GetReason(); reason != "" {
			b.WriteString(" " + strconv.Quote(reason))
		}
	}
	return b.String()
}

// causesText joins the causes of a diff row.
func causesText(cs []*pb.RelationshipChange) string {
	if len(cs) == 0 {
		return "-"
	}
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = changeText(c)
	}
	return strings.Join(parts, "; ")
}

// expiringRelationshipCells are the cells of an expiring relationship:
// when it expires, and the relationship without its expiration.
func expiringRelationshipCells(r *pb.Relationship) []string {
	rel := relationshipFromWire(r)
	exp := ""
	if rel.Expiration != nil {
		exp = rel.Expiration.UTC().Format(time.RFC3339)
	}
	rel.Expiration = nil
	return []string{exp, rel.String()}
}
