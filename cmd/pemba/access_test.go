package main

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/pembadb/pemba/internal/golden"
	pb "github.com/pembadb/pemba/proto/pemba/v1"
)

// TestAccessGolden runs testdata/access/*.txt: how `pemba access` prints
// its answers in each format, and how it reads its arguments. Commands:
//
//	who FORMAT        input: AccessResponse (JSON), one per line; prints them as `access who`
//	what FORMAT       the same, as `access what`
//	expiring FORMAT   input: ExpiringAccessResponse lines; prints them as `access expiring`
//	diff FORMAT       input: AccessDiffResponse lines; prints them as `access diff`
//	request VERB ARGS...  prints the request `access VERB ARGS` sends (who, what, expiring, diff)
//
// Relative times count back from goldenNow.
func TestAccessGolden(t *testing.T) {
	golden.Run(t, "testdata/access/*.txt", func(t *testing.T, c *golden.Case) string {
		if c.Command == "request" {
			return accessRequest(c.Args)
		}
		if len(c.Args) != 1 {
			return "want one argument, the format"
		}
		format, err := parseFormat(c.Args[0], false)
		if err != nil {
			return "error: " + err.Error()
		}
		var b bytes.Buffer
		out := bufio.NewWriter(&b)
		var printErr error
		switch c.Command {
		case "who", "what":
			columns := []string{"PERMISSION", "SUBJECT", "HOLDING", "ENDS", "PATH"}
			if c.Command == "what" {
				columns = []string{"RESOURCE", "PERMISSION", "HOLDING", "ENDS", "PATH"}
			}
			rw := newRowWriter(out, format, columns...)
			if format == formatCSV {
				rw.header = csvAccessHeader
			}
			for _, line := range c.InputLines() {
				resp := &pb.AccessResponse{}
				if err := protojson.Unmarshal([]byte(line), resp); err != nil {
					return "bad input: " + err.Error()
				}
				if printErr = writeAccess(rw, resp, columns...); printErr != nil {
					break
				}
			}
			if err := rw.flush(); printErr == nil {
				printErr = err
			}
			if rw.rows == 0 && format == formatTable {
				out.WriteString("no access\n")
			}
		case "expiring":
			p := newExpiringPrinter(out, format)
			for _, line := range c.InputLines() {
				resp := &pb.ExpiringAccessResponse{}
				if err := protojson.Unmarshal([]byte(line), resp); err != nil {
					return "bad input: " + err.Error()
				}
				if printErr = p.print(resp); printErr != nil {
					break
				}
			}
			if err := p.flush(); printErr == nil {
				printErr = err
			}
		case "diff":
			rw := newDiffWriter(out, format)
			for _, line := range c.InputLines() {
				resp := &pb.AccessDiffResponse{}
				if err := protojson.Unmarshal([]byte(line), resp); err != nil {
					return "bad input: " + err.Error()
				}
				if printErr = writeDiff(rw, resp); printErr != nil {
					break
				}
			}
			if err := rw.flush(); printErr == nil {
				printErr = err
			}
		default:
			return "unknown command " + c.Command
		}
		out.Flush()
		if printErr != nil {
			return "error: " + printErr.Error()
		}
		return b.String()
	})
}

// accessRequest prints the request of `access VERB ARGS...`.
func accessRequest(args []string) string {
	if len(args) == 0 {
		return "want a verb"
	}
	verb, args := args[0], args[1:]
	fs := pflag.NewFlagSet(verb, pflag.ContinueOnError)
	fs.SetOutput(&bytes.Buffer{})
	switch verb {
	case "who":
		var o whoOptions
		o.addFlags(fs)
		if err := fs.Parse(args); err != nil {
			return "error: " + err.Error()
		}
		if fs.NArg() == 0 {
			return "error: want RESOURCE [PERMISSION...]"
		}
		req, err := o.request(fs.Args())
		return messageOrError(req, err)
	case "what":
		var o whatOptions
		o.addFlags(fs)
		if err := fs.Parse(args); err != nil {
			return "error: " + err.Error()
		}
		req, err := o.request(strings.Join(fs.Args(), " "))
		return messageOrError(req, err)
	case "expiring":
		var o expiringOptions
		o.addFlags(fs)
		if err := fs.Parse(args); err != nil {
			return "error: " + err.Error()
		}
		req, err := o.request()
		return messageOrError(req, err)
	case "diff":
		var o diffOptions
		o.addFlags(fs)
		if err := fs.Parse(args); err != nil {
			return "error: " + err.Error()
		}
		req, err := o.request(strings.Join(fs.Args(), " "), goldenNow)
		return messageOrError(req, err)
	}
	return "unknown verb " + verb
}
