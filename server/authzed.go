package server

// SpiceDB's API. authzed.api.v1 is served on the gRPC listener beside
// pemba.v1, as a translation over the same core: the writer (validation,
// limits, write ordering, audit), the check engine and its cache, and the
// revisions. A ZedToken is a zookie, so one token works on both APIs, and
// the same interceptors authenticate, log, meter and bound every call.
//
//	authzed_convert.go       messages, consistency, errors, version header
//	authzed_permissions.go   PermissionsService: checks, writes, reads, lookups
//	authzed_export.go        PermissionsService.ExportBulkRelationships
//	authzed_expand.go        PermissionsService.ExpandPermissionTree
//	authzed_import.go        PermissionsService.ImportBulkRelationships
//	authzed_schema.go        SchemaService: read, write, reflection
//	authzed_reflect.go       reflection messages from compiled schemas
//	authzed_watch.go         WatchService
//	authzed_experimental.go  ExperimentalService: bulk check, export and import

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
)

// registerAuthzed registers SpiceDB's authzed.api.v1 services on g, beside
// pemba.v1: the services SpiceDB clients call, each answering UNIMPLEMENTED
// for the RPCs this server does not serve yet.
func (s *Server) registerAuthzed(g *grpc.Server) {
	perms, schema := &authzedPermissions{s: s}, &authzedSchema{s: s}
	v1.RegisterSchemaServiceServer(g, schema)
	v1.RegisterPermissionsServiceServer(g, perms)
	v1.RegisterWatchServiceServer(g, &authzedWatch{s: s})
	v1.RegisterExperimentalServiceServer(g, &authzedExperimental{perms: perms, schema: schema})
}

// serveSpiceDBHTTP serves SpiceDB's HTTP/JSON API on its own listener:
// authzed-go's generated gateway handlers over the same in-process gRPC
// services, behind the same authentication and body limits as pemba.v1's
// gateway, so SpiceDB's paths and JSON bodies work unchanged.
func (s *Server) serveSpiceDBHTTP(tlsCfg *tls.Config) error {
	conn, err := s.inprocessConn()
	if err != nil {
		return err
	}
	gw := runtime.NewServeMux(runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.JSONPb{
		MarshalOptions:   protojson.MarshalOptions{EmitUnpopulated: true},
		UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: true},
	}), runtime.WithErrorHandler(gatewayErrors), runtime.WithRoutingErrorHandler(routingErrors))
	ctx := context.Background()
	for _, register := range []func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error{
		v1.RegisterPermissionsServiceHandler, v1.RegisterSchemaServiceHandler,
		v1.RegisterWatchServiceHandler, v1.RegisterExperimentalServiceHandler,
	} {
		if err := register(ctx, gw, conn); err != nil {
			return fmt.Errorf("register SpiceDB gateway: %w", err)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/", s.guardGateway(gw))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("ok\n"))
	})
	lis, err := s.listen("SpiceDB HTTP", s.cfg.SpiceDBHTTPAddr)
	if err != nil {
		return err
	}
	s.spicedbLis = lis
	s.spicedbHTTP = s.newHTTPServer(mux, tlsCfg)
	go s.run("SpiceDB HTTP", func() error {
		if tlsCfg != nil {
			return s.spicedbHTTP.ServeTLS(lis, "", "")
		}
		return s.spicedbHTTP.Serve(lis)
	})
	return nil
}

// SpiceDBHTTPAddr returns the SpiceDB HTTP listener's address, or nil.
func (s *Server) SpiceDBHTTPAddr() net.Addr {
	if s.spicedbLis == nil {
		return nil
	}
	return s.spicedbLis.Addr()
}
