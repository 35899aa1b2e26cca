package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	pb "github.com/pembadb/pemba/proto/pemba/v1"
	"github.com/pembadb/pemba/server"
)

// clientOptions are the flags every command that talks to a server takes.
// They are persistent flags of each client command group, read from
// PEMBA_ENDPOINT, PEMBA_TOKEN and PEMBA_INSECURE when not given.
type clientOptions struct {
	endpoint    string
	token       string
	insecure    bool
	tlsCA       string
	json        bool
	consistency string
	timeout     time.Duration
}

var client clientOptions

// addClientFlags adds the connection and output flags to a command group.
// Commands that stream until interrupted pass a zero default timeout.
func addClientFlags(cmd *cobra.Command, defaultTimeout ...time.Duration) {
	timeout := 30 * time.Second
	if len(defaultTimeout) > 0 {
		timeout = defaultTimeout[0]
	}
	f := cmd.PersistentFlags()
	f.StringVar(&client.endpoint, "endpoint", "127.0.0.1:50051", "server gRPC address host:port (env PEMBA_ENDPOINT)")
	f.StringVar(&client.token, "token", "", "bearer token (env PEMBA_TOKEN)")
	f.BoolVar(&client.insecure, "insecure", false, "plaintext, no TLS (default for loopback endpoints; env PEMBA_INSECURE)")
	f.StringVar(&client.tlsCA, "tls-ca", "", "PEM file of the CA that signed the server's certificate; implies TLS (env PEMBA_TLS_CA)")
	f.BoolVar(&client.json, "json", false, "print JSON (one object per line for streams) instead of text")
	f.DurationVar(&client.timeout, "timeout", timeout, "deadline of the command's requests (0: none)")
}

// The connection and output flags may also come before the verb, as zed
// takes them (`pemba --endpoint h:p check …`): the root command knows
// them, hidden from help, so the parser finds the verb after them; the
// verb's own definitions, bound to the same variables, parse them.
func init() {
	f := rootCmd.PersistentFlags()
	var timeout time.Duration
	f.StringVar(&client.endpoint, "endpoint", "127.0.0.1:50051", "server gRPC address host:port (env PEMBA_ENDPOINT)")
	f.StringVar(&client.token, "token", "", "bearer token (env PEMBA_TOKEN)")
	f.BoolVar(&client.insecure, "insecure", false, "plaintext, no TLS (env PEMBA_INSECURE)")
	f.StringVar(&client.tlsCA, "tls-ca", "", "PEM file of the server's CA (env PEMBA_TLS_CA)")
	f.BoolVar(&client.json, "json", false, "print JSON")
	f.DurationVar(&timeout, "timeout", 30*time.Second, "deadline of the command's requests (0: none)")
	for _, name := range []string{"endpoint", "token", "insecure", "tls-ca", "json", "timeout"} {
		_ = f.MarkHidden(name)
	}
}

// addConsistencyFlag adds --consistency to a read command. Without it the
// request names no consistency and the server applies its default
// (fully_consistent), as it does for any gRPC or HTTP client.
func addConsistencyFlag(cmd *cobra.Command) {
	cmd.Flags().StringVar(&client.consistency, "consistency", "",
		"minimize_latency | fully_consistent | at-least:ZOOKIE | exact:ZOOKIE (default: the server's, fully_consistent)")
}

// parseConsistency reads the --consistency flag; "" is nil, the server's
// default.
func parseConsistency(s string) (*pb.Consistency, error) {
	switch {
	case s == "":
		return nil, nil
	case s == "fully_consistent" || s == "fully-consistent":
		return &pb.Consistency{Requirement: &pb.Consistency_FullyConsistent{FullyConsistent: true}}, nil
	case s == "minimize_latency" || s == "minimize-latency":
		return &pb.Consistency{Requirement: &pb.Consistency_MinimizeLatency{MinimizeLatency: true}}, nil
	}
	if z, ok := strings.CutPrefix(s, "at-least:"); ok && z != "" {
		return &pb.Consistency{Requirement: &pb.Consistency_AtLeastAsFresh{AtLeastAsFresh: &pb.Zookie{Token: z}}}, nil
	}
	if z, ok := strings.CutPrefix(s, "exact:"); ok && z != "" {
		return &pb.Consistency{Requirement: &pb.Consistency_AtExactSnapshot{AtExactSnapshot: &pb.Zookie{Token: z}}}, nil
	}
	return nil, fmt.Errorf("--consistency %q: want minimize_latency, fully_consistent, at-least:ZOOKIE or exact:ZOOKIE", s)
}

// usageError is a bad command line: exit 2 with the message.
func usageError(format string, args ...any) error {
	return &exitCodeError{code: exitError, err: fmt.Errorf(format, args...)}
}

// rpcError turns a failed call into exit code 2 with the server's message.
func rpcError(what string, err error) error {
	st := status.Convert(err)
	code := strings.ToLower(strings.ReplaceAll(codeName(st.Code()), "_", " "))
	return &exitCodeError{code: exitError, err: fmt.Errorf("%s: %s: %s", what, code, st.Message())}
}

func codeName(c codes.Code) string {
	// codes.Code.String() gives "InvalidArgument"; split the words.
	var b strings.Builder
	for i, r := range c.String() {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// conn is a connection to the server with the API clients.
type conn struct {
	cc          *grpc.ClientConn
	schema      pb.SchemaServiceClient
	rels        pb.RelationshipServiceClient
	perms       pb.PermissionServiceClient
	watch       pb.WatchServiceClient
	audit       pb.AuditServiceClient
	consistency *pb.Consistency
}

// bearer attaches the token to every call.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (b bearer) RequireTransportSecurity() bool { return false }

// dial connects using the client flags and environment.
func dial(cmd *cobra.Command) (*conn, error) {
	flags := cmd.Flags()
	if !flags.Changed("endpoint") {
		if v := os.Getenv("PEMBA_ENDPOINT"); v != "" {
			client.endpoint = v
		}
	}
	if !flags.Changed("token") {
		client.token = os.Getenv("PEMBA_TOKEN")
	}
	if !flags.Changed("tls-ca") {
		client.tlsCA = os.Getenv("PEMBA_TLS_CA")
	}
	plaintext := client.insecure
	if client.tlsCA != "" && !flags.Changed("insecure") {
		plaintext = false
	} else if !flags.Changed("insecure") {
		if v, ok := os.LookupEnv("PEMBA_INSECURE"); ok {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, usageError("PEMBA_INSECURE=%q: want true or false", v)
			}
			plaintext = b
		} else {
			plaintext = loopbackEndpoint(client.endpoint)
		}
	}
	var c conn
	if flags.Lookup("consistency") != nil {
		cons, err := parseConsistency(client.consistency)
		if err != nil {
			return nil, usageError("%v", err)
		}
		c.consistency = cons
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if client.tlsCA != "" {
		pem, err := os.ReadFile(client.tlsCA)
		if err != nil {
			return nil, usageError("--tls-ca: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usageError("--tls-ca %s: no PEM certificate found", client.tlsCA)
		}
		tlsCfg.RootCAs = pool
	}
	creds := credentials.NewTLS(tlsCfg)
	if plaintext {
		creds = insecure.NewCredentials()
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds), grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64 << 20))}
	if client.token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(client.token)))
	}
	cc, err := grpc.NewClient(client.endpoint, opts...)
	if err != nil {
		return nil, usageError("--endpoint %q: %v", client.endpoint, err)
	}
	c.cc = cc
	c.schema = pb.NewSchemaServiceClient(cc)
	c.rels = pb.NewRelationshipServiceClient(cc)
	c.perms = pb.NewPermissionServiceClient(cc)
	c.watch = pb.NewWatchServiceClient(cc)
	c.audit = pb.NewAuditServiceClient(cc)
	return &c, nil
}

func loopbackEndpoint(endpoint string) bool {
	host, _, err := net.SplitHostPort(endpoint)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

// requestContext bounds a command's calls by --timeout.
func requestContext(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	// Every command's --timeout shares client.timeout, so an unset flag
	// takes its own command's default, not the last one defined.
	timeout := client.timeout
	if f := cmd.Flags().Lookup("timeout"); f != nil && !f.Changed {
		timeout, _ = time.ParseDuration(f.DefValue)
	}
	if timeout > 0 {
		return context.WithTimeout(ctx, timeout)
	}
	return context.WithCancel(ctx)
}

// withConn dials, runs fn, and closes the connection.
func withConn(cmd *cobra.Command, fn func(ctx context.Context, c *conn) error) error {
	c, err := dial(cmd)
	if err != nil {
		return err
	}
	defer c.cc.Close()
	ctx, cancel := requestContext(cmd)
	defer cancel()
	return fn(ctx, c)
}

var jsonOut = protojson.MarshalOptions{}

// printJSON writes one message as a line of JSON.
func printJSON(w io.Writer, m proto.Message) error {
	b, err := jsonOut.Marshal(m)
	if err != nil {
		return err
	}
	// protojson may vary spacing between runs; compact it for line tools.
	_, err = fmt.Fprintln(w, compactJSON(b))
	return err
}

func compactJSON(b []byte) string {
	var out strings.Builder
	inString, escaped := false, false
	for _, c := range string(b) {
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case !inString && (c == ' ' || c == '\n' || c == '\t'):
			continue
		}
		out.WriteRune(c)
	}
	return out.String()
}

// printZookie reports the revision a read was answered at (or a write
// made): on stderr in text mode; in JSON mode it is already a field.
func printZookie(cmd *cobra.Command, label string, z *pb.Zookie) {
	if client.json || z == nil {
		return
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "%s: %s\n", label, z.GetToken())
}

// isEOF reports the normal end of a stream.
func isEOF(err error) bool { return errors.Is(err, io.EOF) }

// receive reads a server stream to its end, calling each for every
// message; a stream error is reported as command what's error.
func receive[T any](what string, recv func() (T, error), each func(T) error) error {
	for {
		msg, err := recv()
		if isEOF(err) {
			return nil
		}
		if err != nil {
			return rpcError(what, err)
		}
		if err := each(msg); err != nil {
			return err
		}
	}
}

// headerZookie returns the zookie a streaming read sent as a header (set
// even when the stream has no messages).
func headerZookie(stream interface{ Header() (metadata.MD, error) }) *pb.Zookie {
	md, err := stream.Header()
	if err != nil {
		return nil
	}
	if v := md.Get(server.ZookieHeader); len(v) > 0 {
		return &pb.Zookie{Token: v[0]}
	}
	return nil
}
