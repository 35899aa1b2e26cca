package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/pembadb/pemba/proto/pemba/v1"
)

func init() {
	var since string
	var types []string
	cmd := &cobra.Command{
		Use:   "watch",
		Short: "Stream committed changes as they happen",
		Long: `watch prints every revision committed after --since (default: now): its
zookie, when, who (the token name) and why, then each relationship
touched (+) or deleted (-). It runs until interrupted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := &pb.WatchRequest{ResourceTypes: types}
			if since != "" {
				req.Since = &pb.Zookie{Token: since}
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
	cmd.Flags().StringVar(&since, "since", "", "start after this zookie")
	cmd.Flags().StringSliceVar(&types, "type", nil, "only changes to these resource types (repeatable)")
	addClientFlags(cmd, 0)
	rootCmd.AddCommand(cmd)
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
