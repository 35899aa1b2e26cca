package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/pembadb/pemba/proto/pemba/v1"
	"github.com/pembadb/pemba/server"
)

// expiringOptions are the flags of `pemba access expiring`.
type expiringOptions struct {
	within            string
	resourceType      string
	subject           string
	relationshipsOnly bool
	format            string
	limit             int
}

// diffOptions are the flags of `pemba access diff`.
type diffOptions struct {
	from, to           string
	types, permissions []string
	contextJSON        string
	format             string
}

func init() {
	accessCmd.AddCommand(expiringCommand(), diffCommand())
}

func expiringCommand() *cobra.Command {
	var o expiringOptions
	cmd := &cobra.Command{
		Use:   "expiring --within DURATION",
		Short: "List the relationships that expire soon, and the accesses that end with them",
		Long: `expiring lists the relationships whose expiration falls between now and
--within from now (7d, 36h; at most 366d), soonest first, then the
accesses that end in that window because an expiring relationship is on
every path that grants them: the subject, resource and permission, when
the access ends, and the path. --relationships-only leaves the accesses
out. When the server stops at one of its bounds, a note on stderr says
so; narrow the question with --type or --subject.`,
		Example: `  pemba access expiring --within 7d
  pemba access expiring --within 30d --type document --subject user:dana
  pemba access expiring --within 24h --relationships-only --format csv`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			format, err := parseFormat(o.format, client.json)
			if err != nil {
				return usageError("access expiring: %v", err)
			}
			req, err := o.request()
			if err != nil {
				return usageError("access expiring: %v", err)
			}
			return withConn(cmd, func(ctx context.Context, c *conn) error {
				req.Consistency = c.consistency
				out := bufio.NewWriter(cmd.OutOrStdout())
				defer out.Flush()
				p := newExpiringPrinter(out, format)
				z, note, err := pageExpiring(ctx, pb.NewAccessServiceClient(c.cc), req, o.limit, p.print)
				if err != nil {
					p.flushRows()
					return err
				}
				if err := p.flush(); err != nil {
					return err
				}
				if note != "" {
					fmt.Fprintln(cmd.ErrOrStderr(), "note:", note)
				}
				printZookie(cmd, "read at", z)
				return nil
			})
		},
	}
	o.addFlags(cmd.Flags())
	addConsistencyFlag(cmd)
	return cmd
}

func (o *expiringOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.within, "within", "", "the window from now: a duration (7d, 36h, 90m); required")
	f.StringVar(&o.resourceType, "type", "", "only relationships and accesses on resources of this type")
	f.StringVar(&o.subject, "subject", "", "only relationships and accesses of this subject: TYPE:ID[#RELATION]")
	f.BoolVar(&o.relationshipsOnly, "relationships-only", false, "list the expiring relationships only, not the accesses that end with them")
	f.IntVar(&o.limit, "limit", 0, "print at most this many rows (0: all)")
	addFormatFlagSet(f, &o.format)
}

// request builds the ExpiringAccess request the flags ask for.
func (o expiringOptions) request() (*pb.ExpiringAccessRequest, error) {
	if o.within == "" {
		return nil, fmt.Errorf("--within is required: a duration such as 7d or 36h")
	}
	d, ok := parseAge(o.within)
	if !ok {
		return nil, fmt.Errorf("--within %q: want a duration such as 7d, 36h or 90m", o.within)
	}
	if o.limit < 0 {
		return nil, fmt.Errorf("--limit %d: want 0 (all) or more", o.limit)
	}
	req := &pb.ExpiringAccessRequest{Within: durationpb.New(d), ResourceType: o.resourceType, RelationshipsOnly: o.relationshipsOnly}
	if o.subject != "" {
		sub, err := parseSubjectArg("--subject", o.subject)
		if err != nil {
			return nil, err
		}
		req.Subject = sub
	}
	return req, nil
}

// pageExpiring calls each for the items of an ExpiringAccess answer, at
// most limit of them (0: all), page after page. It returns the zookie
// the answer was read at and the server's note when it stopped at a
// bound.
func pageExpiring(ctx context.Context, c pb.AccessServiceClient, req *pb.ExpiringAccessRequest, limit int,
	each func(*pb.ExpiringAccessResponse) error) (*pb.Zookie, string, error) {
	const what = "access expiring"
	var zookie *pb.Zookie
	note, printed := "", 0
	for {
		if limit > 0 {
			req.Limit = uint32(min(limit-printed, 1<<31))
		}
		stream, err := c.ExpiringAccess(ctx, req)
		if err != nil {
			return nil, "", rpcError(what, err)
		}
		n := 0
		err = receive(what, stream.Recv, func(resp *pb.ExpiringAccessResponse) error {
			n++
			printed++
			req.Cursor, zookie = resp.GetCursor(), resp.GetReadAt()
			return each(resp)
		})
		if zookie == nil {
			zookie = headerZookie(stream)
		}
		if v := stream.Trailer().Get(server.TruncatedTrailer); len(v) > 0 {
			note = v[0]
		}
		if err != nil || n == 0 || req.Cursor == "" || limit > 0 && printed >= limit {
			return zookie, note, err
		}
	}
}

// expiringPrinter prints an ExpiringAccess answer: the relationships,
// then, after a blank line, the accesses (a table each); in CSV one
// table whose kind column says which.
type expiringPrinter struct {
	format   accessFormat
	rels     *rowWriter
	accesses *rowWriter
}

func newExpiringPrinter(w io.Writer, format accessFormat) *expiringPrinter {
	p := &expiringPrinter{format: format}
	switch format {
	case formatCSV:
		p.rels = newRowWriter(w, format, "kind", "ends_at", "relationship", "resource", "permission", "subject", "holding", "path")
		p.accesses = p.rels
	default:
		p.rels = newRowWriter(w, format, "EXPIRES", "RELATIONSHIP")
		p.accesses = newRowWriter(w, format, "ENDS", "RESOURCE", "PERMISSION", "SUBJECT", "HOLDING", "PATH")
	}
	return p
}

// print prints one item.
func (p *expiringPrinter) print(resp *pb.ExpiringAccessResponse) error {
	if p.format == formatJSON {
		return p.rels.message(resp)
	}
	if r := resp.GetRelationship(); r != nil {
		cells := expiringRelationshipCells(r)
		if p.format == formatCSV {
			return p.rels.row("relationship", cells[0], cells[1], "", "", "", "", "")
		}
		return p.rels.row(cells...)
	}
	a := resp.GetAccess()
	if p.format == formatCSV {
		return p.rels.row("access", endsText(a.GetEndsAt().AsTime(), a.GetEndsAt() != nil), "",
			objectFromWire(a.GetResource()).String(), a.GetPermission(), subjectText(a), holdingText(a), a.GetPath().GetText())
	}
	if p.accesses.rows == 0 && p.rels.rows > 0 {
		if err := p.rels.flush(); err != nil {
			return err
		}
		fmt.Fprintln(p.rels.w)
	}
	return p.accesses.row(accessCells(p.format, a, []string{"ENDS", "RESOURCE", "PERMISSION", "SUBJECT", "HOLDING", "PATH"})...)
}

// flushRows writes the rows buffered.
func (p *expiringPrinter) flushRows() error {
	if err := p.rels.flush(); err != nil {
		return err
	}
	return p.accesses.flush()
}

// flush writes what is buffered; a table answer with no rows says so.
func (p *expiringPrinter) flush() error {
	if err := p.flushRows(); err != nil {
		return err
	}
	if p.format == formatTable && p.rels.rows == 0 && p.accesses.rows == 0 {
		fmt.Fprintln(p.rels.w, "nothing expires in the window")
	}
	return nil
}

func diffCommand() *cobra.Command {
	var o diffOptions
	cmd := &cobra.Command{
		Use:   "diff SUBJECT --from WHEN [--to WHEN]",
		Short: "List the accesses SUBJECT gained and lost between two revisions, and why",
		Long: `diff compares what SUBJECT could access at two revisions and lists each
access gained (+) or lost (-): resource, permission, how it is held (at
--to for a gain, at --from for a loss) and the relationship changes that
caused it — written (+), deleted (-) or expired (~), with who wrote them
and why when the audit log recorded it.

--from and --to take a duration before now (24h, 7d), an RFC 3339 time
(the revision current then) or a zookie; --to defaults to now. Both must
be within the server's garbage-collection window (--gc-window).`,
		Example: `  pemba access diff user:dana --from 24h
  pemba access diff user:dana --from 2026-12-01T09:00:00Z --to 2026-12-01T18:00:00Z --type document
  pemba access diff group:eng#member --from AY2-ZAjf5cGUBQ --format json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			format, err := parseFormat(o.format, client.json)
			if err != nil {
				return usageError("access diff: %v", err)
			}
			req, err := o.request(args[0], time.Now())
			if err != nil {
				return usageError("access diff: %v", err)
			}
			return withConn(cmd, func(ctx context.Context, c *conn) error {
				out := bufio.NewWriter(cmd.OutOrStdout())
				defer out.Flush()
				rw := newDiffWriter(out, format)
				stream, err := pb.NewAccessServiceClient(c.cc).AccessDiff(ctx, req)
				if err != nil {
					return rpcError("access diff", err)
				}
				var from, to *pb.Zookie
				err = receive("access diff", stream.Recv, func(resp *pb.AccessDiffResponse) error {
					from, to = resp.GetFrom(), resp.GetTo()
					return writeDiff(rw, resp)
				})
				if ferr := rw.flush(); err == nil {
					err = ferr
				}
				if err != nil {
					return err
				}
				if rw.rows == 0 && format == formatTable {
					fmt.Fprintln(out, "no change")
				}
				if from == nil {
					from, to = diffHeader(stream)
				}
				printZookie(cmd, "from", from)
				printZookie(cmd, "to", to)
				return nil
			})
		},
	}
	o.addFlags(cmd.Flags())
	return cmd
}

func (o *diffOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.from, "from", "", "the earlier revision: a duration before now (24h, 7d), an RFC 3339 time or a zookie; required")
	f.StringVar(&o.to, "to", "", "the later revision, like --from (default: now)")
	f.StringSliceVar(&o.types, "type", nil, "only resources of these types (repeatable or comma-separated)")
	f.StringSliceVar(&o.permissions, "permission", nil, "only these permissions or relations (repeatable or comma-separated)")
	f.StringVar(&o.contextJSON, "context", "", "caveat context as a JSON object")
	addFormatFlagSet(f, &o.format)
}

// request builds the AccessDiff request of `access diff SUBJECT`;
// relative times count back from now.
func (o diffOptions) request(subject string, now time.Time) (*pb.AccessDiffRequest, error) {
	sub, err := parseSubjectArg("SUBJECT", subject)
	if err != nil {
		return nil, err
	}
	if o.from == "" {
		return nil, fmt.Errorf("--from is required: a duration before now (24h), an RFC 3339 time or a zookie")
	}
	caveatCtx, err := parseContextFlag(o.contextJSON)
	if err != nil {
		return nil, err
	}
	req := &pb.AccessDiffRequest{Subject: sub, ResourceTypes: o.types, Permissions: o.permissions, Context: caveatCtx}
	at, z, err := parseWhen("--from", o.from, now)
	if err != nil {
		return nil, err
	}
	if z != nil {
		req.From = &pb.AccessDiffRequest_FromZookie{FromZookie: z}
	} else {
		req.From = &pb.AccessDiffRequest_FromTime{FromTime: at}
	}
	if o.to != "" {
		at, z, err := parseWhen("--to", o.to, now)
		if err != nil {
			return nil, err
		}
		if z != nil {
			req.To = &pb.AccessDiffRequest_ToZookie{ToZookie: z}
		} else {
			req.To = &pb.AccessDiffRequest_ToTime{ToTime: at}
		}
	}
	return req, nil
}

// diffHeader returns the zookies of the revisions an AccessDiff
// compared, from its response header (set even when no row came).
func diffHeader(stream interface{ Header() (metadata.MD, error) }) (from, to *pb.Zookie) {
	md, err := stream.Header()
	if err != nil {
		return nil, nil
	}
	if v := md.Get(server.DiffFromHeader); len(v) > 0 {
		from = &pb.Zookie{Token: v[0]}
	}
	if v := md.Get(server.DiffToHeader); len(v) > 0 {
		to = &pb.Zookie{Token: v[0]}
	}
	return from, to
}

// parseWhen reads a revision flag: a duration before now, an RFC 3339
// time, or else a zookie (the server decodes it).
func parseWhen(flag, s string, now time.Time) (*timestamppb.Timestamp, *pb.Zookie, error) {
	if d, ok := parseAge(s); ok {
		if d < 0 {
			return nil, nil, fmt.Errorf("%s %q: a duration before now cannot be negative", flag, s)
		}
		return timestamppb.New(now.Add(-d)), nil, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return timestamppb.New(t), nil, nil
	}
	return nil, &pb.Zookie{Token: s}, nil
}

// newDiffWriter returns the writer of a diff's rows.
func newDiffWriter(w io.Writer, format accessFormat) *rowWriter {
	if format == formatCSV {
		return newRowWriter(w, format, "change", "resource", "permission", "subject", "holding", "ends_at", "path", "causes")
	}
	return newRowWriter(w, format, "CHANGE", "RESOURCE", "PERMISSION", "HOLDING", "CAUSES")
}

// writeDiff writes one gained or lost access.
func writeDiff(rw *rowWriter, resp *pb.AccessDiffResponse) error {
	if rw.format == formatJSON {
		return rw.message(resp)
	}
	a := resp.GetAccess()
	change := "+"
	if resp.GetChange() == pb.AccessDiffResponse_CHANGE_LOST {
		change = "-"
	}
	if rw.format == formatCSV {
		word := "gained"
		if change == "-" {
			word = "lost"
		}
		return rw.row(word, objectFromWire(a.GetResource()).String(), a.GetPermission(), subjectText(a), holdingText(a),
			endsText(a.GetEndsAt().AsTime(), a.GetEndsAt() != nil), a.GetPath().GetText(), causesText(resp.GetCauses()))
	}
	return rw.row(change, objectFromWire(a.GetResource()).String(), a.GetPermission(), holdingText(a), causesText(resp.GetCauses()))
}
