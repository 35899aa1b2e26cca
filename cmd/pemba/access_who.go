package main

import (
	"bufio"
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"

	"github.com/pembadb/pemba/graph"
	pb "github.com/pembadb/pemba/proto/pemba/v1"
)

// whoOptions are the arguments and flags of `pemba access who`.
type whoOptions struct {
	subjectTypes []string
	contextJSON  string
	format       string
	limit        int
}

// whatOptions are the flags of `pemba access what`.
type whatOptions struct {
	types, permissions []string
	contextJSON        string
	format             string
	limit              int
}

func init() {
	accessCmd.AddCommand(whoCommand(), whatCommand())
	addClientFlags(accessCmd)
}

func whoCommand() *cobra.Command {
	var o whoOptions
	cmd := &cobra.Command{
		Use:   "who RESOURCE [PERMISSION...]",
		Short: "List every subject that holds a permission on RESOURCE, and how",
		Long: `who lists every subject that holds PERMISSION on RESOURCE (every
permission of its definition when none is given), subject sets expanded
to their members, one row per permission and subject: how it is held
(direct, group, parent, wildcard, caveated), when it ends if nothing is
written (- for a standing access), and one shortest path that proves it.
A wildcard row, "user:* except bob", is every subject of the type but the
ones it names.`,
		Example: `  pemba access who document:plan
  pemba access who document:plan view edit --subject-type user
  pemba access who document:plan view --format csv > plan-access.csv`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			format, err := parseFormat(o.format, client.json)
			if err != nil {
				return usageError("access who: %v", err)
			}
			req, err := o.request(args)
			if err != nil {
				return usageError("access who: %v", err)
			}
			return withConn(cmd, func(ctx context.Context, c *conn) error {
				req.Consistency = c.consistency
				out := bufio.NewWriter(cmd.OutOrStdout())
				defer out.Flush()
				rw := newRowWriter(out, format, "PERMISSION", "SUBJECT", "HOLDING", "ENDS", "PATH")
				if format == formatCSV {
					rw.header = csvAccessHeader
				}
				client := pb.NewAccessServiceClient(c.cc)
				z, err := pageAccess(ctx, "access who", o.limit, func(cursor string, limit uint32) (accessStream, error) {
					req.Cursor, req.Limit = cursor, limit
					return client.WhoCanAccess(ctx, req)
				}, func(resp *pb.AccessResponse) error {
					return writeAccess(rw, resp, "PERMISSION", "SUBJECT", "HOLDING", "ENDS", "PATH")
				})
				return finishAccess(cmd, rw, z, err)
			})
		},
	}
	o.addFlags(cmd.Flags())
	addConsistencyFlag(cmd)
	return cmd
}

func (o *whoOptions) addFlags(f *pflag.FlagSet) {
	f.StringSliceVar(&o.subjectTypes, "subject-type", nil, "only subjects of these types (repeatable or comma-separated)")
	f.StringVar(&o.contextJSON, "context", "", "caveat context as a JSON object; an access whose caveats need more is conditional")
	f.IntVar(&o.limit, "limit", 0, "print at most this many rows (0: all)")
	addFormatFlagSet(f, &o.format)
}

// request builds the WhoCanAccess request of `access who ARGS`.
func (o whoOptions) request(args []string) (*pb.WhoCanAccessRequest, error) {
	res, err := graph.ParseObjectRef(args[0])
	if err != nil {
		return nil, fmt.Errorf("RESOURCE %q: %v", args[0], err)
	}
	if o.limit < 0 {
		return nil, fmt.Errorf("--limit %d: want 0 (all) or more", o.limit)
	}
	caveatCtx, err := parseContextFlag(o.contextJSON)
	if err != nil {
		return nil, err
	}
	return &pb.WhoCanAccessRequest{Resource: objectToWire(res), Permissions: args[1:],
		SubjectTypes: o.subjectTypes, Context: caveatCtx}, nil
}

func whatCommand() *cobra.Command {
	var o whatOptions
	cmd := &cobra.Command{
		Use:   "what SUBJECT",
		Short: "List every resource and permission SUBJECT holds, and how",
		Long: `what lists every resource and permission SUBJECT (TYPE:ID, or a subject
set TYPE:ID#RELATION) holds, one row per resource and permission: how it
is held (direct, group, parent, wildcard, caveated), when it ends if
nothing is written (- for a standing access), and one shortest path that
proves it. --type and --permission narrow the answer.`,
		Example: `  pemba access what user:dana
  pemba access what user:dana --type document --permission view
  pemba access what group:eng#member --format json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			format, err := parseFormat(o.format, client.json)
			if err != nil {
				return usageError("access what: %v", err)
			}
			req, err := o.request(args[0])
			if err != nil {
				return usageError("access what: %v", err)
			}
			return withConn(cmd, func(ctx context.Context, c *conn) error {
				req.Consistency = c.consistency
				out := bufio.NewWriter(cmd.OutOrStdout())
				defer out.Flush()
				rw := newRowWriter(out, format, "RESOURCE", "PERMISSION", "HOLDING", "ENDS", "PATH")
				if format == formatCSV {
					rw.header = csvAccessHeader
				}
				client := pb.NewAccessServiceClient(c.cc)
				z, err := pageAccess(ctx, "access what", o.limit, func(cursor string, limit uint32) (accessStream, error) {
					req.Cursor, req.Limit = cursor, limit
					return client.WhatCanAccess(ctx, req)
				}, func(resp *pb.AccessResponse) error {
					return writeAccess(rw, resp, "RESOURCE", "PERMISSION", "HOLDING", "ENDS", "PATH")
				})
				return finishAccess(cmd, rw, z, err)
			})
		},
	}
	o.addFlags(cmd.Flags())
	addConsistencyFlag(cmd)
	return cmd
}

func (o *whatOptions) addFlags(f *pflag.FlagSet) {
	f.StringSliceVar(&o.types, "type", nil, "only resources of these types (repeatable or comma-separated)")
	f.StringSliceVar(&o.permissions, "permission", nil, "only these permissions or relations (repeatable or comma-separated)")
	f.StringVar(&o.contextJSON, "context", "", "caveat context as a JSON object; an access whose caveats need more is conditional")
	f.IntVar(&o.limit, "limit", 0, "print at most this many rows (0: all)")
	addFormatFlagSet(f, &o.format)
}

// request builds the WhatCanAccess request of `access what SUBJECT`.
func (o whatOptions) request(subject string) (*pb.WhatCanAccessRequest, error) {
	sub, err := parseSubjectArg("SUBJECT", subject)
	if err != nil {
		return nil, err
	}
	if o.limit < 0 {
		return nil, fmt.Errorf("--limit %d: want 0 (all) or more", o.limit)
	}
	caveatCtx, err := parseContextFlag(o.contextJSON)
	if err != nil {
		return nil, err
	}
	return &pb.WhatCanAccessRequest{Subject: sub, ResourceTypes: o.types, Permissions: o.permissions, Context: caveatCtx}, nil
}

// parseSubjectArg reads a subject argument or flag: TYPE:ID or
// TYPE:ID#RELATION.
func parseSubjectArg(name, s string) (*pb.SubjectRef, error) {
	sub, err := graph.ParseSubjectRef(s)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %v", name, s, err)
	}
	return subjectToWire(sub), nil
}

// addFormatFlagSet adds --format to a flag set.
func addFormatFlagSet(f *pflag.FlagSet, format *string) {
	f.StringVar(format, "format", "table", "output: table, csv or json (one response per line; --json is the same)")
}

// accessStream is a stream of access rows.
type accessStream interface {
	Recv() (*pb.AccessResponse, error)
	grpc.ClientStream
}

// pageAccess calls each for the rows of a streamed access query, at most
// limit of them (0: all), asking for page after page with the last
// cursor until a page comes back empty. It returns the zookie the answer
// was read at.
func pageAccess(ctx context.Context, what string, limit int, call func(cursor string, limit uint32) (accessStream, error),
	each func(*pb.AccessResponse) error) (*pb.Zookie, error) {
	var zookie *pb.Zookie
	cursor, printed := "", 0
	for {
		var pageLimit uint32
		if limit > 0 {
			pageLimit = uint32(min(limit-printed, 1<<31))
		}
		stream, err := call(cursor, pageLimit)
		if err != nil {
			return nil, rpcError(what, err)
		}
		n := 0
		err = receive(what, stream.Recv, func(resp *pb.AccessResponse) error {
			n++
			printed++
			cursor, zookie = resp.GetCursor(), resp.GetReadAt()
			return each(resp)
		})
		if zookie == nil {
			zookie = headerZookie(stream)
		}
		if err != nil || n == 0 || cursor == "" || limit > 0 && printed >= limit {
			return zookie, err
		}
	}
}

// writeAccess writes one access row with the given table columns.
func writeAccess(rw *rowWriter, resp *pb.AccessResponse, columns ...string) error {
	if rw.format == formatJSON {
		return rw.message(resp)
	}
	return rw.row(accessCells(rw.format, resp.GetAccess(), columns)...)
}

// finishAccess flushes an answer and reports the revision it was read at
// on stderr; a table with no rows says so.
func finishAccess(cmd *cobra.Command, rw *rowWriter, zookie *pb.Zookie, err error) error {
	if ferr := rw.flush(); err == nil {
		err = ferr
	}
	if err != nil {
		return err
	}
	if rw.rows == 0 && rw.format == formatTable {
		fmt.Fprintln(rw.w, "no access")
	}
	printZookie(cmd, "read at", zookie)
	return nil
}
