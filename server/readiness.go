package server

import (
	"context"
	"net/http"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	pb "github.com/pembadb/pemba/proto/pemba/v1"
)

// Readiness is one datastore probe, run at Serve and then every
// probeInterval; /readyz and the gRPC health service both report its
// last result, so they always agree, and unauthenticated probes never
// reach the datastore themselves.
const (
	probeInterval = 2 * time.Second
	probeTimeout  = 2 * time.Second
)

// servingNames are the health service names the server reports: the
// whole server ("") and each API service.
var servingNames = []string{"", pb.SchemaService_ServiceDesc.ServiceName, pb.RelationshipService_ServiceDesc.ServiceName,
	pb.PermissionService_ServiceDesc.ServiceName, pb.WatchService_ServiceDesc.ServiceName}

// probe asks the datastore for its head revision.
func (s *Server) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	_, err := s.engine.HeadRevision(ctx)
	return err
}

// probePeriodically probes until Shutdown begins.
func (s *Server) probePeriodically() {
	tick := time.NewTicker(probeInterval)
	defer tick.Stop()
	for {
		select {
		case <-s.stopping.Done():
			return
		case <-tick.C:
			s.setReady(s.probe(s.stopping))
		}
	}
}

// Readiness states; the zero value means not probed yet.
const (
	stateReady int32 = iota + 1
	stateUnavailable
)

// setReady publishes a probe's result and logs when readiness changes.
// The error's detail (which may name the database's host and user) goes
// to the log only.
func (s *Server) setReady(err error) {
	if s.stopping.Err() != nil {
		return // Shutdown has set NOT_SERVING for good
	}
	state, st := stateReady, healthpb.HealthCheckResponse_SERVING
	if err != nil {
		state, st = stateUnavailable, healthpb.HealthCheckResponse_NOT_SERVING
	}
	switch prev := s.readiness.Swap(state); {
	case state == stateUnavailable && prev != stateUnavailable:
		s.log.Error("datastore unavailable: not ready", "err", err)
	case state == stateReady && prev == stateUnavailable:
		s.log.Info("datastore available again: ready")
	}
	for _, name := range servingNames {
		s.health.SetServingStatus(name, st)
	}
}

// readyz answers /readyz: 200 when the last probe reached the datastore
// and the server is not shutting down, else 503 with a generic reason
// (before the first probe, which waits for warmSets: starting).
func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	switch {
	case s.stopping.Err() != nil:
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
	case s.readiness.Load() == 0:
		http.Error(w, "starting: warming caches", http.StatusServiceUnavailable)
	case s.readiness.Load() != stateReady:
		http.Error(w, "datastore unavailable", http.StatusServiceUnavailable)
	default:
		_, _ = w.Write([]byte("ready\n"))
	}
}
