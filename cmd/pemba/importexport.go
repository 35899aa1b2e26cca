package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
	"golang.org/x/term"
	"google.golang.org/grpc/status"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/internal/importstream"
	pb "github.com/pembadb/pemba/proto/pemba/v1"
)

// importBatch is how many relationships one ImportRelationships message
// carries.
const importBatch = 500

func init() {
	var skip int
	var reason string
	var labelFlags []string
	imp := &cobra.Command{
		Use:   "import FILE",
		Short: "Load relationships into the server in bulk",
		Long: `import reads relationships from FILE ("-" for stdin) and writes them in
batches, each batch its own revision, with touch semantics: importing the
same relationship twice is harmless. FILE is either a validation YAML file
(its relationships: block; .yaml or .yml) or one relationship per line,
the format export prints; blank lines and lines starting with // or # are
skipped.

If an import stops, it prints how many relationships were committed;
--skip N resumes after them (re-running from the start is also safe).`,
		Example: `  pemba import relationships.txt
  pemba export | pemba import --endpoint other:50051 -
  pemba import validation.yaml --skip 20000`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			labels, err := parseLabels(labelFlags)
			if err != nil {
				return usageError("import: %v", err)
			}
			rels, lines, err := readRelationshipsFile(args[0])
			if err != nil {
				return usageError("import: %v", err)
			}
			if skip < 0 || skip > len(rels) {
				return usageError("import: --skip %d: the file has %d relationships", skip, len(rels))
			}
			rels = rels[skip:]
			return withConn(cmd, func(ctx context.Context, c *conn) error {
				err := runImport(ctx, cmd, c, rels, skip, reason, labels)
				return withInputLine(err, args[0], lines[skip:])
			})
		},
	}
	imp.Flags().IntVar(&skip, "skip", 0, "skip the first N relationships of FILE (resume an import)")
	imp.Flags().StringVar(&reason, "reason", "", "reason recorded with every batch in the audit log (shown by watch and audit)")
	addLabelFlag(imp, &labelFlags)
	addClientFlags(imp, 0)

	var cursor string
	exp := &cobra.Command{
		Use:   "export",
		Short: "Print every relationship, one per line, at one revision",
		Long: `export prints every relationship in relationship syntax, one per line, all
read at one revision (import reads the same format). The zookie of that
revision goes to stderr. If the export is interrupted, --cursor with the
last cursor it printed resumes it at the same revision.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withConn(cmd, func(ctx context.Context, c *conn) error {
				return runExport(ctx, cmd, c, cursor)
			})
		},
	}
	exp.Flags().StringVar(&cursor, "cursor", "", "resume after this cursor")
	addConsistencyFlag(exp)
	addClientFlags(exp, 0)

	rootCmd.AddCommand(imp, exp)
}

// readRelationshipsFile reads a validation YAML file's relationships
// block, or one relationship per line, and the file line of each.
func readRelationshipsFile(path string) (rels []graph.Relationship, lines []int, err error) {
	var data []byte
	if path == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, nil, err
	}
	text, first := string(data), 1
	if ext := strings.ToLower(filepath.Ext(path)); ext == ".yaml" || ext == ".yml" {
		if text, first, err = yamlRelationships(data); err != nil {
			return nil, nil, fmt.Errorf("%s: %v", path, err)
		}
	}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := first; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "//") || strings.HasPrefix(s, "#") {
			continue
		}
		r, err := graph.ParseRelationship(s)
		if err != nil {
			return nil, nil, fmt.Errorf("%s line %d: %v", path, line, err)
		}
		rels, lines = append(rels, r), append(lines, line)
	}
	return rels, lines, sc.Err()
}

// yamlRelationships returns a validation file's relationships block and
// the file line its text starts on.
func yamlRelationships(data []byte) (string, int, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return "", 0, err
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return "", 0, nil
	}
	m := doc.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		if key, val := m.Content[i], m.Content[i+1]; key.Value == "relationships" && val.Kind == yaml.ScalarNode {
			if val.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
				return val.Value, val.Line + 1, nil // the text starts below `|-`
			}
			return val.Value, val.Line, nil
		}
	}
	return "", 0, nil
}

// streamIndex finds the position the server names in an import error,
// "relationships[N]".
var streamIndex = regexp.MustCompile(`relationships\[(\d+)\]`)

// withInputLine adds the file line of the relationship a failed import
// names, so the user can find it: the server counts relationships in the
// stream; lines[i] is the file line of the stream's i-th.
func withInputLine(err error, path string, lines []int) error {
	var coded *exitCodeError
	if err == nil || !errors.As(err, &coded) {
		return err
	}
	m := streamIndex.FindStringSubmatch(coded.err.Error())
	if m == nil {
		return err
	}
	i, convErr := strconv.Atoi(m[1])
	if convErr != nil || i >= len(lines) {
		return err
	}
	msg := strings.TrimPrefix(coded.err.Error(), "import: ")
	return &exitCodeError{code: coded.code, err: fmt.Errorf("import: %s line %d: %s", path, lines[i], msg)}
}

// runImport imports rels, recorded with reason and labels; skipped is
// how many relationships of the file were skipped before them.
func runImport(ctx context.Context, cmd *cobra.Command, c *conn, rels []graph.Relationship, skipped int, reason string, labels []*pb.Label) error {
	var bar *progressbar.ProgressBar
	if f, ok := cmd.ErrOrStderr().(*os.File); ok && !client.json && term.IsTerminal(int(f.Fd())) {
		bar = progressbar.NewOptions(len(rels), progressbar.OptionSetWriter(f), progressbar.OptionSetDescription("importing"),
			progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionClearOnFinish())
	}
	stream, err := c.rels.ImportRelationships(ctx)
	if err != nil {
		return rpcError("import", err)
	}
	start := 0
	var badInput error
	res, err := importstream.Run(stream, func() (*pb.ImportRelationshipsRequest, bool) {
		if start >= len(rels) || badInput != nil {
			return nil, false
		}
		end := min(start+importBatch, len(rels))
		msg := &pb.ImportRelationshipsRequest{}
		if start == 0 {
			msg.Reason, msg.Labels = reason, labels
		}
		for i, r := range rels[start:end] {
			w, err := relationshipToWire(r)
			if err != nil {
				badInput = usageError("import: relationships[%d]: %v", start+i, err)
				return nil, false
			}
			msg.Relationships = append(msg.Relationships, w)
		}
		if bar != nil {
			_ = bar.Add(end - start)
		}
		start = end
		return msg, true
	})
	if bar != nil {
		_ = bar.Finish()
	}
	if err == nil && badInput != nil {
		err = badInput
	}
	if err != nil {
		// The count the server last acknowledged (the status repeats it
		// when the server ended the stream itself): resuming after it
		// is exact, or repeats at most the batch in flight when the
		// connection broke — harmless, since import touches.
		committed := res.Committed()
		for _, d := range status.Convert(err).Details() {
			if r, ok := d.(*pb.ImportRelationshipsResponse); ok {
				committed = max(committed, int(r.GetImported()))
			}
		}
		committed += skipped
		fmt.Fprintf(cmd.ErrOrStderr(), "%d relationship(s) of the file are committed; resume with --skip %d\n", committed, committed)
		if badInput != nil && errors.Is(err, badInput) {
			return err
		}
		return rpcError("import", err)
	}
	resp := res.Last
	if client.json {
		return printJSON(cmd.OutOrStdout(), resp)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "imported %d relationship(s)\n", resp.GetImported())
	printZookie(cmd, "written at", resp.GetWrittenAt())
	return nil
}

func runExport(ctx context.Context, cmd *cobra.Command, c *conn, cursor string) error {
	stream, err := c.rels.ExportRelationships(ctx, &pb.ExportRelationshipsRequest{Consistency: c.consistency, Cursor: cursor})
	if err != nil {
		return rpcError("export", err)
	}
	out := bufio.NewWriter(cmd.OutOrStdout())
	defer out.Flush()
	var zookie *pb.Zookie
	last := ""
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			out.Flush()
			if last != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "export interrupted; resume with --cursor %s\n", last)
			}
			return rpcError("export", err)
		}
		zookie = resp.GetReadAt()
		if client.json {
			if err := printJSON(out, resp); err != nil {
				return err
			}
		} else {
			for _, r := range resp.GetRelationships() {
				fmt.Fprintln(out, relationshipFromWire(r))
			}
		}
		if resp.GetCursor() != "" {
			last = resp.GetCursor()
		}
	}
	if err := out.Flush(); err != nil {
		return err
	}
	printZookie(cmd, "exported at", zookie)
	return nil
}
