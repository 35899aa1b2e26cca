package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pembadb/pemba/core"
	pb "github.com/pembadb/pemba/proto/pemba/v1"
)

func init() {
	var since string
	var types []string
	cmd := &cobra.Command{
		Use:   "watch",
		Short: "Stream committed changes as they happen",
		Long: `watch prints every revision committed after --since (default: now): its
zookie, when, who (the token name), why and with which labels, then each
relationship touched (+) or deleted (-). It runs until interrupted.

--since takes a zookie, a duration before now (1h, 7d) or an RFC 3339
time; a time is found in the audit log. Either is refused once it is
older than the server's --gc-window.`,
		Example: `  pemba watch
  pemba watch --since 1h --type document
  pemba watch --since 2026-12-01T10:00:00Z --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req, err := watchRequest(since, types, time.Now())
			if err != nil {
				return usageError("watch: %v", err)
			}
			return withConn(cmd, func(ctx context.Context, c *conn) error {
				stream, err := c.watch.Watch(ctx, req)
				if err != nil {
					return rpcError("watch", err)
				}
				for {
					resp, err := stream.Recv()
					if isEOF(err) {
						return nil
					}
					if err != nil {
						// Interrupted, or --timeout reached: the server may
						// see the propagated deadline pass a moment before
						// this process's timer does.
						if ctx.Err() != nil || status.Code(err) == codes.DeadlineExceeded {
							return nil
						}
						return rpcError("watch", err)
					}
					if client.json {
						if err := printJSON(cmd.OutOrStdout(), resp); err != nil {
							return err
						}
						continue
					}
					printChange(cmd, resp)
				}
			})
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "start after this zookie, or at this time: a duration before now (1h, 7d) or RFC 3339")
	cmd.Flags().StringSliceVar(&types, "type", nil, "only changes to these resource types (repeatable)")
	addClientFlags(cmd, 0)
	rootCmd.AddCommand(cmd)
}

// watchRequest builds a Watch request starting after since: a zookie, or
// a time (see parseTimeFlag). Zookies are base64url, so a value with a
// ':' or one that parses as a duration is a time.
func watchRequest(since string, types []string, now time.Time) (*pb.WatchRequest, error) {
	req := &pb.WatchRequest{ResourceTypes: types}
	if since == "" {
		return req, nil
	}
	if _, isAge := parseAge(since); isAge || strings.Contains(since, ":") {
		t, err := parseTimeFlag("--since", since, now)
		if err != nil {
			return nil, err
		}
		req.StartTime = timestamppb.New(t)
		return req, nil
	}
	// The server checks the zookie; its shape is checked here so a
	// mistyped time is not reported as a malformed zookie.
	if _, err := core.NewZookies("").Decode(since); err != nil {
		return nil, fmt.Errorf("--since %q: want a zookie, a duration before now (1h, 7d) or an RFC 3339 time", since)
	}
	req.Since = &pb.Zookie{Token: since}
	return req, nil
}

func printChange(cmd *cobra.Command, resp *pb.WatchResponse) {
	out := cmd.OutOrStdout()
	head := []string{resp.GetRevision().GetToken()}
	if t := resp.GetCommittedAt(); t != nil {
		head = append(head, t.AsTime().UTC().Format("2006-01-02T15:04:05.000Z"))
	}
	if a := resp.GetActor(); a != "" {
		head = append(head, "by "+a)
	}
	if r := resp.GetReason(); r != "" {
		head = append(head, fmt.Sprintf("(%s)", r))
	}
	for _, l := range resp.GetLabels() {
		head = append(head, formatLabel(l))
	}
	if resp.GetSchemaChanged() {
		head = append(head, "schema changed")
	}
	fmt.Fprintln(out, strings.Join(head, " "))
	for _, u := range resp.GetUpdates() {
		mark := "+"
		if u.GetOperation() == pb.RelationshipUpdate_OPERATION_DELETE {
			mark = "-"
		}
		fmt.Fprintf(out, "  %s %s\n", mark, relationshipFromWire(u.GetRelationship()))
	}
}
