package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/pembadb/pemba/internal/golden"
	pb "github.com/pembadb/pemba/proto/pemba/v1"
)

// goldenNow is the "now" relative times count back from in the golden
// cases.
var goldenNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// TestAuditGolden runs testdata/audit/*.txt: how the CLI prints audit
// events, provenance and verifications, and how it reads the flags of
// audit, watch and --label. Commands:
//
//	event          input: an AuditEvent (JSON); prints its audit line
//	provenance     input: an AuditEvent (JSON, or nothing); prints the
//	               provenance line of a check path
//	verify         input: a VerifyAuditResponse (JSON); prints it
//	audit ARGS...  prints the ReadAudit request the flags ask for
//	watch SINCE    prints the Watch request for --since SINCE
//	label ARGS...  prints the labels of --label ARG for each ARG
//
// The arguments of audit, watch and label are the words after the
// command and then each input line, whole (for values with spaces).
func TestAuditGolden(t *testing.T) {
	golden.Run(t, "testdata/audit/*.txt", func(t *testing.T, c *golden.Case) string {
		args := append(c.Args, c.InputLines()...)
		switch c.Command {
		case "event":
			ev := &pb.AuditEvent{}
			if err := protojson.Unmarshal([]byte(c.Input), ev); err != nil {
				return "bad input: " + err.Error()
			}
			return formatAuditEvent(ev)
		case "provenance":
			if strings.TrimSpace(c.Input) == "" {
				return provenanceText(nil)
			}
			ev := &pb.AuditEvent{}
			if err := protojson.Unmarshal([]byte(c.Input), ev); err != nil {
				return "bad input: " + err.Error()
			}
			return provenanceText(ev)
		case "verify":
			resp := &pb.VerifyAuditResponse{}
			if err := protojson.Unmarshal([]byte(c.Input), resp); err != nil {
				return "bad input: " + err.Error()
			}
			var b bytes.Buffer
			printVerification(&b, resp)
			return b.String()
		case "audit":
			var o auditOptions
			fs := pflag.NewFlagSet("audit", pflag.ContinueOnError)
			o.addFlags(fs)
			if err := fs.Parse(args); err != nil {
				return "error: " + err.Error()
			}
			req, err := o.request(goldenNow)
			return messageOrError(req, err)
		case "watch":
			since := ""
			if len(args) > 0 {
				since = args[0]
			}
			req, err := watchRequest(since, nil, goldenNow)
			return messageOrError(req, err)
		case "label":
			labels, err := parseLabels(args)
			if err != nil {
				return "error: " + err.Error()
			}
			var out []string
			for _, l := range labels {
				out = append(out, formatLabel(l))
			}
			return strings.Join(out, " ")
		}
		return "unknown command " + c.Command
	})
}

func messageOrError(m proto.Message, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	b, err := protojson.Marshal(m)
	if err != nil {
		return "marshal: " + err.Error()
	}
	return compactJSON(b)
}
