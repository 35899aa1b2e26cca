package loadtest

import (
	"context"
	"fmt"
	"time"
)

// A run may spread its requests over several servers sharing one
// datastore, as a load balancer would. Each worker sends its requests to
// the endpoints in turn — one request to each, round-robin, starting at a
// different endpoint per worker — so a write's zookie is usually carried
// by the next request to another server: the new-enemy workload then
// checks that a revoke through one server is honoured by the others.
// Every request is also recorded under the endpoint that served it, for
// the report's per-node rows.

// cluster is the gRPC connections of a run: conns[node][i] is the i-th
// connection to Endpoints[node].
type cluster struct {
	endpoints []string
	conns     [][]*client
}

// dialCluster opens perNode connections to every endpoint.
func dialCluster(endpoints []string, perNode int, token string, plaintext bool) (*cluster, error) {
	c := &cluster{endpoints: endpoints, conns: make([][]*client, len(endpoints))}
	for n, ep := range endpoints {
		for range perNode {
			cl, err := dial(ep, token, plaintext)
			if err != nil {
				c.close()
				return nil, err
			}
			c.conns[n] = append(c.conns[n], cl)
		}
	}
	return c, nil
}

// close closes every connection.
func (c *cluster) close() {
	for _, node := range c.conns {
		for _, cl := range node {
			cl.conn.Close()
		}
	}
}

// workerClients returns worker i's client on every node (its share of
// each node's connections).
func (c *cluster) workerClients(i int) []*client {
	out := make([]*client, len(c.conns))
	for n, node := range c.conns {
		out[n] = node[i%len(node)]
	}
	return out
}

// pick moves w to the next node and returns the client it talks to.
// The first request of worker i goes to node i mod the node count, so
// that the workers do not move in step.
func (w *worker) pick() *client {
	if w.calls == 0 {
		w.node = w.id % len(w.nodes)
	} else {
		w.node = (w.node + 1) % len(w.nodes)
	}
	w.calls++
	w.c = w.nodes[w.node]
	return w.c
}

// record adds one request to the worker's recorder and, when the run has
// several nodes, to the recorder of the node that served it.
func (w *worker) record(op string, d time.Duration, err error) {
	w.rec.Record(op, d, err)
	if len(w.nodeRecs) > 1 {
		w.nodeRecs[w.node].Record(op, d, err)
	}
}

// resetRecorders gives w fresh recorders for a phase.
func (w *worker) resetRecorders() {
	w.rec = NewRecorder()
	w.nodeRecs = make([]*Recorder, len(w.nodes))
	for i := range w.nodeRecs {
		w.nodeRecs[i] = NewRecorder()
	}
}

// NodeReport is the part of a run one endpoint served.
type NodeReport struct {
	Endpoint   string      `json:"endpoint"`
	Operations []Operation `json:"operations"`
}

// nodeReports summarizes the workers' per-node recorders over elapsed;
// nil for a run on one endpoint.
func nodeReports(endpoints []string, workers []*worker, elapsed time.Duration) []NodeReport {
	if len(endpoints) < 2 {
		return nil
	}
	out := make([]NodeReport, len(endpoints))
	for n, ep := range endpoints {
		recs := make([]*Recorder, len(workers))
		for i, w := range workers {
			recs[i] = w.nodeRecs[n]
		}
		out[n] = NodeReport{Endpoint: ep, Operations: Summarize(elapsed, recs...)}
	}
	return out
}

// scrapeAll scrapes every URL and adds up their counters: the server-side
// figures of a run over several servers are those of all of them.
func scrapeAll(ctx context.Context, urls []string) (counters, error) {
	total := counters{}
	for _, u := range urls {
		c, err := scrape(ctx, u)
		if err != nil {
			return nil, err
		}
		for name, v := range c {
			total[name] += v
		}
	}
	return total, nil
}

// metricsURLs returns the URLs to scrape, or a warning when they cannot
// stand for the servers measured: with several endpoints, the counters of
// some servers divided by the checks of all would mislead.
func (c Config) metricsURLs() ([]string, string) {
	if len(c.MetricsURLs) == 0 {
		return nil, ""
	}
	if len(c.Endpoints) > 1 && len(c.MetricsURLs) != len(c.Endpoints) {
		return nil, fmt.Sprintf("server-side figures skipped: %d metrics URLs for %d endpoints (give one per endpoint)",
			len(c.MetricsURLs), len(c.Endpoints))
	}
	return c.MetricsURLs, ""
}
