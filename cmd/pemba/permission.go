package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pembadb/pemba/graph"
	pb "github.com/pembadb/pemba/proto/pemba/v1"
)

// exitConditional is `permission check`'s exit code for a conditional
// answer (caveat context missing).
const exitConditional = 3

var permissionCmd = &cobra.Command{
	Use:     "permission",
	Aliases: []string{"perm"},
	Short:   "Ask permission questions: check, expand, lookups",
}

func init() {
	permissionCmd.AddCommand(checkCommand("check"), expandCommand(), lookupResourcesCommand(), lookupSubjectsCommand())
	addClientFlags(permissionCmd)
	rootCmd.AddCommand(permissionCmd)

	// `pemba check` is a shortcut for `pemba permission check`.
	top := checkCommand("check")
	addClientFlags(top)
	rootCmd.AddCommand(top)
}

func checkCommand(use string) *cobra.Command {
	var explain, provenance bool
	var contextJSON string
	cmd := &cobra.Command{
		Use:   use + " RESOURCE PERMISSION SUBJECT",
		Short: "Check whether SUBJECT has PERMISSION on RESOURCE",
		Long: `check prints "has permission", "no permission" or "conditional (missing: a, b)"
and exits 0, 1 or 3 accordingly; any error exits 2. --explain also prints
the access path that grants it, or for a denial the tree of branches
tried and why each failed (expired, caveat false, excluded, ...); --provenance (which implies --explain)
adds, under each relationship of the path, the audit event that wrote it:
when, by whom, why and with which labels.`,
		Example: `  pemba permission check document:readme view user:alice --explain
  pemba check document:readme view user:alice --provenance
  pemba check document:readme view user:alice --context '{"ip":"10.1.2.3"}'`,
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := graph.ParseObjectRef(args[0])
			if err != nil {
				return usageError("check: %v", err)
			}
			sub, err := graph.ParseSubjectRef(args[2])
			if err != nil {
				return usageError("check: %v", err)
			}
			caveatCtx, err := parseContextFlag(contextJSON)
			if err != nil {
				return usageError("check: %v", err)
			}
			explain = explain || provenance
			return withConn(cmd, func(ctx context.Context, c *conn) error {
				resp, err := c.perms.CheckPermission(ctx, &pb.CheckPermissionRequest{
					Consistency: c.consistency, Resource: objectToWire(res), Permission: args[1],
					Subject: subjectToWire(sub), Context: caveatCtx, Explain: explain, Provenance: provenance,
				})
				if err != nil {
					return rpcError("check", err)
				}
				out := cmd.OutOrStdout()
				if client.json {
					if err := printJSON(out, resp); err != nil {
						return err
					}
				} else {
					fmt.Fprintln(out, permissionshipText(resp.GetPermissionship(), resp.GetMissingContext()))
					if explain && resp.GetPath() != nil {
						printPath(out, resp.GetPath(), provenance)
					}
					if explain && resp.GetDenial().GetText() != "" {
						fmt.Fprintln(out, resp.GetDenial().GetText())
					}
					printZookie(cmd, "checked at", resp.GetCheckedAt())
				}
				switch resp.GetPermissionship() {
				case pb.Permissionship_PERMISSIONSHIP_HAS_PERMISSION:
					return nil
				case pb.Permissionship_PERMISSIONSHIP_CONDITIONAL_PERMISSION:
					return &exitCodeError{code: exitConditional, err: fmt.Errorf("")}
				}
				return &exitCodeError{code: exitFailure, err: fmt.Errorf("")}
			})
		},
	}
	cmd.Flags().BoolVar(&explain, "explain", false, "print the access path that proves the answer, or why each branch of a denial failed")
	cmd.Flags().BoolVar(&provenance, "provenance", false, "with the access path, print who wrote each of its relationships, when and why (from the audit log)")
	cmd.Flags().StringVar(&contextJSON, "context", "", "caveat context as a JSON object")
	addConsistencyFlag(cmd)
	return cmd
}

func permissionshipText(p pb.Permissionship, missing []string) string {
	switch p {
	case pb.Permissionship_PERMISSIONSHIP_HAS_PERMISSION:
		return "has permission"
	case pb.Permissionship_PERMISSIONSHIP_CONDITIONAL_PERMISSION:
		return "conditional (missing: " + strings.Join(missing, ", ") + ")"
	}
	return "no permission"
}

// printPath prints an access path: its one-line form, then one step per
// line with the relationship that made it, and with provenance the audit
// event that wrote the relationship on the line below.
func printPath(w io.Writer, p *pb.AccessPath, provenance bool) {
	fmt.Fprintln(w, "path:", p.GetText())
	printSteps(w, p, "  ", provenance)
}

func printSteps(w io.Writer, p *pb.AccessPath, indent string, provenance bool) {
	fmt.Fprintf(w, "%s%s\n", indent, subjectFromWire(p.GetSubject()))
	for _, st := range p.GetSteps() {
		line := fmt.Sprintf("%s→ %s#%s", indent, objectFromWire(st.GetObject()), st.GetRelation())
		if st.GetVia() != "" {
			line += " via " + st.GetVia()
		}
		if r := st.GetRelationship(); r != nil {
			line += "   (" + relationshipFromWire(r).String() + ")"
		}
		fmt.Fprintln(w, line)
		if provenance && st.GetRelationship() != nil {
			fmt.Fprintf(w, "%s    %s\n", indent, provenanceText(st.GetProvenance()))
		}
	}
	for _, a := range p.GetAlso() {
		fmt.Fprintf(w, "%sand\n", indent)
		printSteps(w, a, indent+"  ", provenance)
	}
}

// provenanceText describes the audit event that wrote a relationship:
// `written 2026-12-01T10:02:11Z by ci  "reason"  approver=bob`.
func provenanceText(ev *pb.AuditEvent) string {
	if ev == nil {
		return "written: no audit entry (written before the audit log began, or trimmed by its retention)"
	}
	var b strings.Builder
	b.WriteString("written " + ev.GetTime().AsTime().UTC().Format(time.RFC3339) + " by " + orDash(ev.GetActor()))
	if r := ev.GetReason(); r != "" {
		b.WriteString("  " + strconv.Quote(r))
	}
	for i, l := range ev.GetLabels() {
		if i == 0 {
			b.WriteByte(' ')
		}
		b.WriteString(" " + formatLabel(l))
	}
	b.WriteString("  (revision " + ev.GetRevision().GetToken() + ")")
	return b.String()
}

func expandCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "expand RESOURCE PERMISSION",
		Short: "Print the tree of subjects a permission or relation resolves to",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := graph.ParseObjectRef(args[0])
			if err != nil {
				return usageError("expand: %v", err)
			}
			return withConn(cmd, func(ctx context.Context, c *conn) error {
				resp, err := c.perms.ExpandPermission(ctx, &pb.ExpandPermissionRequest{Consistency: c.consistency, Resource: objectToWire(res), Permission: args[1]})
				if err != nil {
					return rpcError("expand", err)
				}
				if client.json {
					return printJSON(cmd.OutOrStdout(), resp)
				}
				printTree(cmd.OutOrStdout(), resp.GetTree(), "", "")
				printZookie(cmd, "expanded at", resp.GetExpandedAt())
				return nil
			})
		},
	}
	addConsistencyFlag(cmd)
	return cmd
}

// printTree draws an expansion tree with box-drawing branches.
func printTree(w io.Writer, n *pb.ExpandNode, prefix, childPrefix string) {
	if n == nil {
		return
	}
	fmt.Fprintln(w, prefix+nodeLabel(n))
	kids := n.GetChildren()
	for i, k := range kids {
		if i == len(kids)-1 {
			printTree(w, k, childPrefix+"└── ", childPrefix+"    ")
		} else {
			printTree(w, k, childPrefix+"├── ", childPrefix+"│   ")
		}
	}
}

func nodeLabel(n *pb.ExpandNode) string {
	obj := objectFromWire(n.GetObject()).String()
	var s string
	switch n.GetOperation() {
	case pb.ExpandNode_OPERATION_RELATION:
		s = obj + "#" + n.GetRelation()
	case pb.ExpandNode_OPERATION_PERMISSION:
		s = obj + "#" + n.GetRelation() + " (permission)"
	case pb.ExpandNode_OPERATION_UNION:
		s = "∪ union"
	case pb.ExpandNode_OPERATION_INTERSECTION:
		s = "∩ intersection"
	case pb.ExpandNode_OPERATION_EXCLUSION:
		s = "− exclusion"
	case pb.ExpandNode_OPERATION_ARROW:
		s = obj + " " + n.GetArrow()
	case pb.ExpandNode_OPERATION_NIL:
		s = "nil"
	case pb.ExpandNode_OPERATION_SUBJECT:
		s = subjectFromWire(n.GetSubject()).String()
	default:
		s = n.GetOperation().String()
	}
	if n.GetCaveat() != "" {
		s += " [" + n.GetCaveat() + "]"
	}
	if e := n.GetExpiration(); e != nil {
		s += " [expires " + e.AsTime().UTC().Format("2006-01-02T15:04:05Z") + "]"
	}
	if n.GetSeen() {
		s += " (see above)"
	}
	return s
}

func lookupResourcesCommand() *cobra.Command {
	var contextJSON string
	var limit uint32
	cmd := &cobra.Command{
		Use:   "lookup-resources RESOURCE_TYPE PERMISSION SUBJECT",
		Short: "List the resources of a type on which SUBJECT has PERMISSION",
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			sub, err := graph.ParseSubjectRef(args[2])
			if err != nil {
				return usageError("lookup-resources: %v", err)
			}
			caveatCtx, err := parseContextFlag(contextJSON)
			if err != nil {
				return usageError("lookup-resources: %v", err)
			}
			return withConn(cmd, func(ctx context.Context, c *conn) error {
				req := &pb.LookupResourcesRequest{Consistency: c.consistency, ResourceType: args[0], Permission: args[1],
					Subject: subjectToWire(sub), Context: caveatCtx}
				var zookie *pb.Zookie
				printed := uint32(0)
				// The server returns at most a page per call; follow the
				// cursor until a call returns nothing.
				for {
					stream, err := c.perms.LookupResources(ctx, req)
					if err != nil {
						return rpcError("lookup-resources", err)
					}
					got := 0
					for {
						resp, err := stream.Recv()
						if isEOF(err) {
							break
						}
						if err != nil {
							return rpcError("lookup-resources", err)
						}
						got++
						printed++
						zookie, req.Cursor = resp.GetLookedUpAt(), resp.GetCursor()
						if client.json {
							if err := printJSON(cmd.OutOrStdout(), resp); err != nil {
								return err
							}
						} else {
							line := args[0] + ":" + resp.GetResourceId()
							if resp.GetPermissionship() == pb.Permissionship_PERMISSIONSHIP_CONDITIONAL_PERMISSION {
								line += " (conditional, missing: " + strings.Join(resp.GetMissingContext(), ", ") + ")"
							}
							fmt.Fprintln(cmd.OutOrStdout(), line)
						}
						if limit > 0 && printed >= limit {
							break
						}
					}
					if zookie == nil {
						zookie = headerZookie(stream)
					}
					if got == 0 || (limit > 0 && printed >= limit) {
						break
					}
				}
				if printed == 0 && client.json && zookie != nil {
					return printJSON(cmd.OutOrStdout(), &pb.LookupResourcesResponse{LookedUpAt: zookie})
				}
				printZookie(cmd, "looked up at", zookie)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&contextJSON, "context", "", "caveat context as a JSON object")
	cmd.Flags().Uint32Var(&limit, "limit", 0, "print at most this many (0: all)")
	addConsistencyFlag(cmd)
	return cmd
}

// lookupSubjectsPerResponse is how many subjects lookup-subjects asks the
// server to pack into a response: an answer of thousands of subjects
// arrives in a few messages.
const lookupSubjectsPerResponse = 1000

func lookupSubjectsCommand() *cobra.Command {
	var contextJSON string
	cmd := &cobra.Command{
		Use:   "lookup-subjects RESOURCE PERMISSION SUBJECT_TYPE[#RELATION]",
		Short: "List the subjects of a type that have PERMISSION on RESOURCE",
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := graph.ParseObjectRef(args[0])
			if err != nil {
				return usageError("lookup-subjects: %v", err)
			}
			caveatCtx, err := parseContextFlag(contextJSON)
			if err != nil {
				return usageError("lookup-subjects: %v", err)
			}
			subType, subRel, _ := strings.Cut(args[2], "#")
			return withConn(cmd, func(ctx context.Context, c *conn) error {
				stream, err := c.perms.LookupSubjects(ctx, &pb.LookupSubjectsRequest{Consistency: c.consistency, Resource: objectToWire(res),
					Permission: args[1], SubjectType: subType, SubjectRelation: subRel, Context: caveatCtx,
					SubjectsPerResponse: lookupSubjectsPerResponse})
				if err != nil {
					return rpcError("lookup-subjects", err)
				}
				var zookie *pb.Zookie
				printSubject := func(resp *pb.LookupSubjectsResponse) error {
					if client.json {
						return printJSON(cmd.OutOrStdout(), resp)
					}
					line := subType + ":" + resp.GetSubjectId()
					if subRel != "" {
						line += "#" + subRel
					}
					if ex := resp.GetExcludedSubjectIds(); len(ex) > 0 {
						line += " (except " + strings.Join(ex, ", ") + ")"
					}
					if resp.GetPermissionship() == pb.Permissionship_PERMISSIONSHIP_CONDITIONAL_PERMISSION {
						line += " (conditional, missing: " + strings.Join(resp.GetMissingContext(), ", ") + ")"
					}
					fmt.Fprintln(cmd.OutOrStdout(), line)
					return nil
				}
				err = receive("lookup-subjects", stream.Recv, func(resp *pb.LookupSubjectsResponse) error {
					zookie = resp.GetLookedUpAt()
					if len(resp.GetSubjects()) == 0 {
						return printSubject(resp)
					}
					// Packed: printed one subject a line (or JSON object),
					// as unpacked responses are.
					for _, f := range resp.GetSubjects() {
						if err := printSubject(&pb.LookupSubjectsResponse{SubjectId: f.GetSubjectId(), ExcludedSubjectIds: f.GetExcludedSubjectIds(),
							Permissionship: f.GetPermissionship(), MissingContext: f.GetMissingContext(), LookedUpAt: zookie}); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					return err
				}
				if zookie == nil {
					zookie = headerZookie(stream)
					if client.json && zookie != nil {
						return printJSON(cmd.OutOrStdout(), &pb.LookupSubjectsResponse{LookedUpAt: zookie})
					}
				}
				printZookie(cmd, "looked up at", zookie)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&contextJSON, "context", "", "caveat context as a JSON object")
	addConsistencyFlag(cmd)
	return cmd
}
