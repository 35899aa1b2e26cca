package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pembadb/pemba/graph"
	pb "github.com/pembadb/pemba/proto/pemba/v1"
)

var relationshipCmd = &cobra.Command{
	Use:     "relationship",
	Aliases: []string{"rel"},
	Short:   "Write, delete and read relationships on the server",
}

func init() {
	for _, op := range []struct {
		verb, past string
		op         pb.RelationshipUpdate_Operation
		short      string
	}{
		{"create", "created", pb.RelationshipUpdate_OPERATION_CREATE, "Create a relationship (fails if it exists)"},
		{"touch", "touched", pb.RelationshipUpdate_OPERATION_TOUCH, "Create or replace a relationship"},
		{"delete", "deleted", pb.RelationshipUpdate_OPERATION_DELETE, "Delete a relationship (absent is not an error: it says so)"},
	} {
		relationshipCmd.AddCommand(writeCommand(op.verb, op.past, op.op, op.short))
	}

	var limit uint32
	read := &cobra.Command{
		Use:   "read RESOURCE_TYPE[:ID] [RELATION] [SUBJECT_TYPE[:ID][#RELATION]]",
		Short: "Print the relationships matching a filter, one per line",
		Example: `  pemba relationship read document
  pemba relationship read document:readme viewer
  pemba relationship read document '*' user:alice`,
		Args: cobra.RangeArgs(1, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			filter, err := parseFilterArgs(args)
			if err != nil {
				return usageError("relationship read: %v", err)
			}
			return withConn(cmd, func(ctx context.Context, c *conn) error {
				stream, err := c.rels.ReadRelationships(ctx, &pb.ReadRelationshipsRequest{Consistency: c.consistency, Filter: filter, Limit: limit})
				if err != nil {
					return rpcError("relationship read", err)
				}
				var zookie *pb.Zookie
				err = receive("relationship read", stream.Recv, func(resp *pb.ReadRelationshipsResponse) error {
					zookie = resp.GetReadAt()
					if client.json {
						return printJSON(cmd.OutOrStdout(), resp)
					}
					fmt.Fprintln(cmd.OutOrStdout(), relationshipFromWire(resp.GetRelationship()))
					return nil
				})
				if err != nil {
					return err
				}
				if zookie == nil {
					// No results: the zookie came as a header; in JSON
					// mode it still gets an object.
					zookie = headerZookie(stream)
					if client.json && zookie != nil {
						return printJSON(cmd.OutOrStdout(), &pb.ReadRelationshipsResponse{ReadAt: zookie})
					}
				}
				printZookie(cmd, "read at", zookie)
				return nil
			})
		},
	}
	read.Flags().Uint32Var(&limit, "limit", 0, "print at most this many (0: all)")
	addConsistencyFlag(read)

	var deleteLimit uint32
	var force, dryRun bool
	var reason string
	var labelFlags []string
	bulkDelete := &cobra.Command{
		Use:   "bulk-delete RESOURCE_TYPE[:ID] [RELATION] [SUBJECT_TYPE[:ID][#RELATION]]",
		Short: "Delete every relationship matching a filter, in one revision",
		Long: `bulk-delete deletes every relationship matching the filter, in one
revision. On a terminal it first says how many match and asks; elsewhere
(a script, a pipe) it needs --force. --dry-run only counts.`,
		Example: `  pemba relationship bulk-delete document '*' user:frank --dry-run
  pemba relationship bulk-delete document '*' user:frank --force --reason "offboarding"`,
		Args: cobra.RangeArgs(1, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			filter, err := parseFilterArgs(args)
			if err != nil {
				return usageError("relationship bulk-delete: %v", err)
			}
			labels, err := parseLabels(labelFlags)
			if err != nil {
				return usageError("relationship bulk-delete: %v", err)
			}
			return withConn(cmd, func(ctx context.Context, c *conn) error {
				if dryRun || !force {
					n, err := countMatching(ctx, c, filter, deleteLimit)
					if err != nil {
						return err
					}
					if dryRun {
						fmt.Fprintf(cmd.OutOrStdout(), "would delete %d relationship(s)\n", n)
						return nil
					}
					if n == 0 {
						fmt.Fprintln(cmd.OutOrStdout(), "no relationship matches: nothing deleted")
						return nil
					}
					ok, err := confirm(cmd, fmt.Sprintf("Delete %d relationship(s) matching %s?", n, strings.Join(args, " ")))
					if err != nil {
						return err
					}
					if !ok {
						fmt.Fprintln(cmd.OutOrStdout(), "nothing deleted")
						return nil
					}
				}
				resp, err := c.rels.DeleteRelationships(ctx, &pb.DeleteRelationshipsRequest{
					Filter: filter, Limit: deleteLimit, Reason: reason, Labels: labels,
				})
				if err != nil {
					return rpcError("relationship bulk-delete", err)
				}
				if client.json {
					return printJSON(cmd.OutOrStdout(), resp)
				}
				more := ""
				if resp.GetMore() {
					more = " (more match: run again)"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "deleted %d relationship(s)%s\n", resp.GetDeleted(), more)
				printZookie(cmd, "written at", resp.GetWrittenAt())
				return nil
			})
		},
	}
	bulkDelete.Flags().Uint32Var(&deleteLimit, "limit", 0, "delete at most this many (0: all)")
	bulkDelete.Flags().BoolVar(&force, "force", false, "delete without asking (required when stdin is not a terminal)")
	bulkDelete.Flags().BoolVar(&dryRun, "dry-run", false, "print how many relationships would be deleted, and delete nothing")
	bulkDelete.Flags().StringVar(&reason, "reason", "", "reason recorded with the write in the audit log (shown by watch and audit)")
	addLabelFlag(bulkDelete, &labelFlags)

	relationshipCmd.AddCommand(read, bulkDelete)
	addClientFlags(relationshipCmd)
	rootCmd.AddCommand(relationshipCmd)
}

// writeCommand builds `relationship create|touch|delete`.
func writeCommand(verb, past string, op pb.RelationshipUpdate_Operation, short string) *cobra.Command {
	var caveat, expiration, reason string
	var labelFlags []string
	cmd := &cobra.Command{
		Use:   verb + " RESOURCE RELATION SUBJECT",
		Short: short,
		Long: short + `.

RESOURCE is type:id; SUBJECT is type:id, type:id#relation or type:*.
A single argument in relationship syntax (document:a#viewer@user:b) works too.`,
		Example: fmt.Sprintf(`  pemba relationship %s document:readme viewer user:alice
  pemba relationship %s document:readme viewer group:eng#member --reason "onboarding"
  pemba relationship %s document:readme viewer user:bob --caveat 'on_network:{"cidr":"10.0.0.0/8"}'
  pemba relationship %s document:readme viewer user:carol --reason "access request" --label approver=bob --label ticket=SEC-42`, verb, verb, verb, verb),
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 && len(args) != 3 {
				return usageError("relationship %s: want RESOURCE RELATION SUBJECT (or one relationship string), got %d argument(s)", verb, len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			rel, err := relationshipFromArgs(args)
			if err != nil {
				return usageError("relationship %s: %v", verb, err)
			}
			if caveat != "" {
				if rel.Caveat, err = parseCaveatFlag(caveat); err != nil {
					return usageError("relationship %s: %v", verb, err)
				}
			}
			if expiration != "" {
				if rel.Expiration, err = parseExpirationFlag(expiration); err != nil {
					return usageError("relationship %s: %v", verb, err)
				}
			}
			wire, err := relationshipToWire(rel)
			if err != nil {
				return usageError("relationship %s: %v", verb, err)
			}
			labels, err := parseLabels(labelFlags)
			if err != nil {
				return usageError("relationship %s: %v", verb, err)
			}
			return withConn(cmd, func(ctx context.Context, c *conn) error {
				req := &pb.WriteRelationshipsRequest{
					Updates: []*pb.RelationshipUpdate{{Operation: op, Relationship: wire}},
					Reason:  reason,
					Labels:  labels,
				}
				if op == pb.RelationshipUpdate_OPERATION_DELETE {
					// Deleting an absent relationship writes nothing: the
					// precondition makes the server say so, atomically.
					req.Preconditions = []*pb.Precondition{{Operation: pb.Precondition_OPERATION_MUST_MATCH, Filter: exactFilter(wire)}}
				}
				resp, err := c.rels.WriteRelationships(ctx, req)
				if op == pb.RelationshipUpdate_OPERATION_DELETE && isPreconditionFailure(err) {
					fmt.Fprintf(cmd.OutOrStdout(), "no such relationship %s: nothing deleted\n", rel)
					return nil
				}
				if err != nil {
					return rpcError("relationship "+verb, err)
				}
				if client.json {
					return printJSON(cmd.OutOrStdout(), resp)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", past, rel)
				printZookie(cmd, "written at", resp.GetWrittenAt())
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&caveat, "caveat", "", "caveat as name or name:{json context}")
	cmd.Flags().StringVar(&expiration, "expiration", "", "expiration time, RFC 3339")
	cmd.Flags().StringVar(&reason, "reason", "", "reason recorded with the write in the audit log (shown by watch and audit)")
	addLabelFlag(cmd, &labelFlags)
	return cmd
}

// relationshipFromArgs reads RESOURCE RELATION SUBJECT or one relationship
// string.
func relationshipFromArgs(args []string) (graph.Relationship, error) {
	if len(args) == 1 {
		return graph.ParseRelationship(args[0])
	}
	res, err := graph.ParseObjectRef(args[0])
	if err != nil {
		return graph.Relationship{}, err
	}
	sub, err := graph.ParseSubjectRef(args[2])
	if err != nil {
		return graph.Relationship{}, err
	}
	r := graph.Relationship{Resource: res, Relation: strings.TrimSpace(args[1]), Subject: sub}
	if err := r.Validate(); err != nil {
		return graph.Relationship{}, err
	}
	return r, nil
}

// exactFilter selects exactly the relationship r names (whatever its
// caveat and expiration).
func exactFilter(r *pb.Relationship) *pb.RelationshipFilter {
	subRel := r.GetSubject().GetRelation()
	return &pb.RelationshipFilter{
		ResourceType: r.GetResource().GetType(), ResourceIds: []string{r.GetResource().GetId()}, Relation: r.GetRelation(),
		Subject: &pb.SubjectFilter{Type: r.GetSubject().GetObject().GetType(), Ids: []string{r.GetSubject().GetObject().GetId()}, Relation: &subRel},
	}
}

// isPreconditionFailure reports whether a write failed because one of its
// preconditions did not hold (not for another failed precondition, such
// as a missing schema).
func isPreconditionFailure(err error) bool {
	st, ok := status.FromError(err)
	return err != nil && ok && st.Code() == codes.FailedPrecondition && strings.Contains(st.Message(), "precondition 0")
}

// countMatching counts the live relationships matching filter, up to
// limit when it is not 0.
func countMatching(ctx context.Context, c *conn, filter *pb.RelationshipFilter, limit uint32) (int, error) {
	stream, err := c.rels.ReadRelationships(ctx, &pb.ReadRelationshipsRequest{Consistency: &pb.Consistency{Requirement: &pb.Consistency_FullyConsistent{FullyConsistent: true}}, Filter: filter, Limit: limit})
	if err != nil {
		return 0, rpcError("relationship bulk-delete", err)
	}
	n := 0
	err = receive("relationship bulk-delete", stream.Recv, func(*pb.ReadRelationshipsResponse) error {
		n++
		return nil
	})
	return n, err
}

// confirm asks a yes/no question on a terminal; without one it refuses,
// pointing at --force.
func confirm(cmd *cobra.Command, question string) (bool, error) {
	in, ok := cmd.InOrStdin().(*os.File)
	if !ok || !term.IsTerminal(int(in.Fd())) {
		return false, usageError("relationship bulk-delete: stdin is not a terminal to confirm on: pass --force to delete (or --dry-run to count)")
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "%s [y/N] ", question)
	answer, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && answer == "" {
		return false, nil
	}
	answer = strings.ToLower(strings.TrimSpace(answer))
	return answer == "y" || answer == "yes", nil
}
