package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/pembadb/pemba/proto/pemba/v1"
	"github.com/pembadb/pemba/storage/auditlog"
)

// auditOptions are the flags of `pemba audit`.
type auditOptions struct {
	resource, relation, subject, actor string
	labels                             []string
	since, until                       string
	from, to                           string
	newestFirst                        bool
	limit                              int
	kinds                              []string
}

func init() {
	var o auditOptions
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Print the audit log: who changed which relationship, when and why",
		Long: `audit prints the events of the audit log that match the filters, oldest
first, one per line: the time, the actor (the name of the token that wrote
it), the change, the reason and the labels. A change is +RELATIONSHIP
(created or touched), -RELATIONSHIP (deleted), ~RELATIONSHIP (its
expiration passed; the actor, reason and labels are the grant's) or
"schema +relation document#viewer". The log outlives the garbage
collection of history: it shows revoked and expired grants for as long as
the server's --audit-retention keeps them.

--since and --until take a duration before now (24h, 90m, 7d) or an RFC
3339 time; --from and --to take zookies (inclusive). audit pages through
the server's answers until --limit events are printed or the log ends.`,
		Example: `  pemba audit --resource document:readme
  pemba audit --subject user:alice --since 7d
  pemba audit --label ticket=SEC-42 --json
  pemba audit --actor ci --kind deleted,expired --newest-first --limit 20`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req, err := o.request(time.Now())
			if err != nil {
				return usageError("audit: %v", err)
			}
			return withConn(cmd, func(ctx context.Context, c *conn) error {
				out := bufio.NewWriter(cmd.OutOrStdout())
				defer out.Flush()
				return readAudit(ctx, c, req, o.limit, func(resp *pb.ReadAuditResponse) error {
					if client.json {
						return printJSON(out, resp)
					}
					_, err := fmt.Fprintln(out, formatAuditEvent(resp.GetEvent()))
					return err
				})
			})
		},
	}
	o.addFlags(cmd.Flags())
	cmd.AddCommand(auditVerifyCommand())
	addClientFlags(cmd, 0)
	rootCmd.AddCommand(cmd)
}

// addFlags defines the flags of `pemba audit` on f.
func (o *auditOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.resource, "resource", "", "changes to relationships of this resource type, or of one resource: TYPE[:ID]")
	f.StringVar(&o.relation, "relation", "", "changes to relationships with this relation")
	f.StringVar(&o.subject, "subject", "", "changes to relationships of this subject: TYPE[:ID][#RELATION] (#... for no relation)")
	f.StringVar(&o.actor, "actor", "", "changes written by this actor (token name)")
	f.StringArrayVar(&o.labels, "label", nil, "changes written with this key=value label (repeatable: all must match)")
	f.StringVar(&o.since, "since", "", "events at or after this time: a duration before now (24h, 7d) or RFC 3339")
	f.StringVar(&o.until, "until", "", "events before this time: a duration before now or RFC 3339")
	f.StringVar(&o.from, "from", "", "events of revisions from this zookie's on")
	f.StringVar(&o.to, "to", "", "events of revisions up to this zookie's")
	f.BoolVar(&o.newestFirst, "newest-first", false, "print the newest event first")
	f.IntVar(&o.limit, "limit", 0, "print at most this many events (0: all)")
	f.StringSliceVar(&o.kinds, "kind", nil, "only these kinds: created, touched, deleted, expired, schema (repeatable or comma-separated)")
}

// request builds the ReadAudit request the flags ask for; relative times
// count back from now.
func (o auditOptions) request(now time.Time) (*pb.ReadAuditRequest, error) {
	req := &pb.ReadAuditRequest{Relation: o.relation, Actor: o.actor, NewestFirst: o.newestFirst}
	if o.resource != "" {
		typ, id, hasID := strings.Cut(o.resource, ":")
		if typ == "" || hasID && id == "" {
			return nil, fmt.Errorf("--resource %q: want TYPE or TYPE:ID", o.resource)
		}
		req.ResourceType, req.ResourceId = typ, id
	}
	if o.subject != "" {
		obj, rel, hasRel := strings.Cut(o.subject, "#")
		typ, id, hasID := strings.Cut(obj, ":")
		if typ == "" || hasID && id == "" || hasRel && rel == "" {
			return nil, fmt.Errorf("--subject %q: want TYPE, TYPE:ID or TYPE:ID#RELATION", o.subject)
		}
		req.SubjectType, req.SubjectId, req.SubjectRelation = typ, id, rel
	}
	var err error
	if req.Labels, err = parseLabels(o.labels); err != nil {
		return nil, err
	}
	for _, t := range []struct {
		flag, text string
		dst        **timestamppb.Timestamp
	}{{"--since", o.since, &req.Since}, {"--until", o.until, &req.Until}} {
		at, err := parseTimeFlag(t.flag, t.text, now)
		if err != nil {
			return nil, err
		}
		if !at.IsZero() {
			*t.dst = timestamppb.New(at)
		}
	}
	if o.from != "" {
		req.FromRevision = &pb.Zookie{Token: o.from}
	}
	if o.to != "" {
		req.ToRevision = &pb.Zookie{Token: o.to}
	}
	if o.limit < 0 {
		return nil, fmt.Errorf("--limit %d: want 0 (all) or more", o.limit)
	}
	for _, k := range o.kinds {
		kind, ok := auditKinds[strings.ToLower(strings.TrimSpace(k))]
		if !ok {
			return nil, fmt.Errorf("--kind %q: want created, touched, deleted, expired or schema", k)
		}
		req.Kinds = append(req.Kinds, kind)
	}
	return req, nil
}

var auditKinds = map[string]pb.AuditEventKind{
	"created": pb.AuditEventKind_AUDIT_EVENT_KIND_CREATED,
	"touched": pb.AuditEventKind_AUDIT_EVENT_KIND_TOUCHED,
	"deleted": pb.AuditEventKind_AUDIT_EVENT_KIND_DELETED,
	"expired": pb.AuditEventKind_AUDIT_EVENT_KIND_EXPIRED,
	"schema":  pb.AuditEventKind_AUDIT_EVENT_KIND_SCHEMA,
}

// readAudit calls each for the events req selects, at most limit of them
// (0: all), asking for page after page with the last cursor until a page
// comes back empty.
func readAudit(ctx context.Context, c *conn, req *pb.ReadAuditRequest, limit int, each func(*pb.ReadAuditResponse) error) error {
	printed := 0
	for {
		if limit > 0 {
			req.Limit = uint32(min(limit-printed, 1<<31))
		}
		stream, err := c.audit.ReadAudit(ctx, req)
		if err != nil {
			return rpcError("audit", err)
		}
		n := 0
		err = receive("audit", stream.Recv, func(resp *pb.ReadAuditResponse) error {
			n++
			printed++
			req.Cursor = resp.GetCursor()
			return each(resp)
		})
		if err != nil || n == 0 || limit > 0 && printed >= limit {
			return err
		}
	}
}

// formatAuditEvent prints an event on one line:
//
//	2026-12-01T10:02:11Z ci  +document:x#viewer@user:alice  "SEC-42 approved by bob"  approver=bob ticket=SEC-42
func formatAuditEvent(ev *pb.AuditEvent) string {
	var b strings.Builder
	b.WriteString(ev.GetTime().AsTime().UTC().Format(time.RFC3339))
	b.WriteByte(' ')
	b.WriteString(orDash(ev.GetActor()))
	b.WriteString("  ")
	if ev.GetKind() == pb.AuditEventKind_AUDIT_EVENT_KIND_SCHEMA {
		c := ev.GetSchemaChange()
		b.WriteString("schema " + changeMark(c.GetAdded()) + c.GetKind() + " " + c.GetName())
		if c.GetDetail() != "" {
			b.WriteString(" (" + c.GetDetail() + ")")
		}
	} else {
		b.WriteString(eventMark(ev.GetKind()))
		b.WriteString(relationshipFromWire(ev.GetRelationship()).String())
	}
	if r := ev.GetReason(); r != "" {
		b.WriteString("  " + strconv.Quote(r))
	}
	for i, l := range ev.GetLabels() {
		if i == 0 {
			b.WriteByte(' ')
		}
		b.WriteString(" " + formatLabel(l))
	}
	return b.String()
}

// orDash is s, or "-" when s is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func changeMark(added bool) string {
	if added {
		return "+"
	}
	return "-"
}

func eventMark(k pb.AuditEventKind) string {
	switch k {
	case pb.AuditEventKind_AUDIT_EVENT_KIND_DELETED:
		return "-"
	case pb.AuditEventKind_AUDIT_EVENT_KIND_EXPIRED:
		return "~"
	}
	return "+"
}

// formatLabel prints key=value, quoting a value that would not read as
// one word.
func formatLabel(l *pb.Label) string {
	v := l.GetValue()
	if v == "" || strings.ContainsAny(v, " \t\"'\\") {
		v = strconv.Quote(v)
	}
	return l.GetKey() + "=" + v
}

func auditVerifyCommand() *cobra.Command {
	var anchors []string
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check the audit log's hash chain",
		Long: `verify asks the server to recompute the hash of every audit entry, oldest
first, and to check that each names the hash of the one before it. It
prints how many entries it checked and the head: the newest entry as an
anchor, REVISION:HASH. Keep the head outside the datastore and pass it
with --anchor to a later verify: an attacker with write access to the
datastore could rewrite the log from some entry on, or drop its newest
entries, and only an anchor recorded beforehand reveals that.

It exits 0 when the chain holds and 1 when it breaks, printing where and
why.`,
		Example: `  pemba audit verify
  pemba audit verify --anchor 1042:5f0c...e1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, a := range anchors {
				if _, err := auditlog.ParseAnchor(a); err != nil {
					return usageError("audit verify: --anchor: %v", err)
				}
			}
			return withConn(cmd, func(ctx context.Context, c *conn) error {
				resp, err := c.audit.VerifyAudit(ctx, &pb.VerifyAuditRequest{Anchors: anchors})
				if err != nil {
					return rpcError("audit verify", err)
				}
				if client.json {
					if err := printJSON(cmd.OutOrStdout(), resp); err != nil {
						return err
					}
				} else {
					printVerification(cmd.OutOrStdout(), resp)
				}
				if !resp.GetIntact() {
					return &exitCodeError{code: exitFailure, err: fmt.Errorf("")}
				}
				return nil
			})
		},
	}
	cmd.Flags().StringArrayVar(&anchors, "anchor", nil, "a head an earlier verify printed, REVISION:HASH, that the log must still contain (repeatable)")
	return cmd
}

// printVerification prints a VerifyAudit answer for people.
func printVerification(w io.Writer, resp *pb.VerifyAuditResponse) {
	switch n := resp.GetEntries(); {
	case n == 0:
		fmt.Fprintln(w, "checked 0 entries")
	default:
		fmt.Fprintf(w, "checked %d entries, revisions %d to %d\n", n, resp.GetFirstRevision(), resp.GetLastRevision())
	}
	if !resp.GetIntact() {
		fmt.Fprintf(w, "broken at revision %d: %s\n", resp.GetBrokenRevision(), resp.GetBrokenReason())
		return
	}
	if resp.GetHead() != "" {
		fmt.Fprintln(w, "head:", resp.GetHead())
	}
	fmt.Fprintln(w, "intact")
}

// parseTimeFlag reads a time flag: a duration before now (Go syntax, or a
// whole number of days such as 7d) or an RFC 3339 time. "" is the zero
// time.
func parseTimeFlag(flag, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, ok := parseAge(s); ok {
		if d < 0 {
			return time.Time{}, fmt.Errorf("%s %q: a duration before now cannot be negative", flag, s)
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%s %q: want a duration before now (24h, 90m, 7d) or an RFC 3339 time such as 2026-12-01T10:00:00Z", flag, s)
}

// parseAge reads a Go duration or a whole number of days ("7d").
func parseAge(s string) (time.Duration, bool) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n > 100000 {
			return 0, false
		}
		return time.Duration(n) * 24 * time.Hour, true
	}
	d, err := time.ParseDuration(s)
	return d, err == nil
}
