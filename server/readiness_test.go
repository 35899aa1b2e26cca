package server

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/pembadb/pemba/storage/pebble"
)

// TestHealthFollowsDatastore: when the datastore stops answering, the
// gRPC health service turns NOT_SERVING and /readyz 503 together, and
// /readyz gives no detail of the datastore.
func TestHealthFollowsDatastore(t *testing.T) {
	engine, err := pebble.Open(pebble.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := newHTTPServer(t, engine, nil)
	health := healthpb.NewHealthClient(dialTest(t, srv))
	ctx := context.Background()
	check := func() healthpb.HealthCheckResponse_ServingStatus {
		t.Helper()
		resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetStatus()
	}
	if st := check(); st != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health before the outage: %v", st)
	}
	if code, _ := httpGet(t, srv, "/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz before the outage: %d", code)
	}

	engine.Close()
	deadline := time.Now().Add(30 * time.Second)
	for check() == healthpb.HealthCheckResponse_SERVING {
		if time.Now().After(deadline) {
			t.Fatal("health still SERVING 30s after the datastore closed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	code, body := httpGet(t, srv, "/readyz")
	if code != http.StatusServiceUnavailable || strings.TrimSpace(body) != "datastore unavailable" {
		t.Errorf("/readyz with health NOT_SERVING: %d %q; want 503 \"datastore unavailable\"", code, body)
	}
}
