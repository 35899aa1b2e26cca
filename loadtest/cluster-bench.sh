#!/bin/sh
# cluster-bench.sh measures what dispatch between servers saves: it loads
# a data set into a throwaway PostgreSQL once, then for each of 1 server,
# 3 servers without --peers and 3 servers with --peers (fresh processes)
# runs three `pemba loadtest` processes at once, one per server (all three
# at the one server), first to warm up with sample seeds 11-13, then
# measured with seeds 1-3, and prints a Markdown row of the cluster-wide
# figures the measured run added to the servers' /metrics.
#
#   loadtest/cluster-bench.sh [DATASET SCALE]
#
# Defaults: nested-org 1. Environment: DURATION (default 20s), WARMUP
# (default 20s; 0 measures from cold caches), CONCURRENCY per loadtest
# (default 4), WORKLOAD (default check-random), PEMBA (default bin/pemba,
# built if missing), SERVE_ARGS (extra flags for every server).
set -eu

DATASET=${1:-nested-org}
SCALE=${2:-1}
DURATION=${DURATION:-20s}
WARMUP=${WARMUP:-20s}
CONCURRENCY=${CONCURRENCY:-4}
WORKLOAD=${WORKLOAD:-check-random}
PEMBA=${PEMBA:-bin/pemba}
SECRET=bench-$$-secret
CLUSTER=bench-$$-cluster-token
WORK=$(mktemp -d)
SERVERS=
PG=

. "$(dirname "$0")/postgres.sh"

cleanup() {
	stop_servers
	stop_postgres
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

[ -x "$PEMBA" ] || go build -o "$PEMBA" ./cmd/pemba

start_postgres 55433 300
URL="$PG_BASE/postgres?sslmode=disable"

grpc() { echo "127.0.0.1:5066$1"; }
http() { echo "127.0.0.1:869$1"; }

# start_servers N PEERS starts servers 1..N, with --peers when PEERS is 1.
start_servers() {
	n=$1
	peers=
	if [ "$2" = 1 ]; then
		for i in $(seq 1 "$n"); do peers="$peers${peers:+,}$(grpc "$i")"; done
	fi
	for i in $(seq 1 "$n"); do
		# shellcheck disable=SC2086 # SERVE_ARGS is a list of flags
		"$PEMBA" serve --datastore postgres --datastore-url "$URL" --auto-migrate ${SERVE_ARGS:-} \
			--grpc-addr "$(grpc "$i")" --http-addr "$(http "$i")" --token bench=$SECRET --log-level warn \
			${peers:+--peers "$peers" --cluster-token "$CLUSTER"} &
		SERVERS="$SERVERS $!"
		until curl -sf "http://$(http "$i")/readyz" >/dev/null 2>&1; do sleep 0.2; done
	done
}

stop_servers() {
	for p in $SERVERS; do kill "$p" 2>/dev/null || true; done
	for p in $SERVERS; do wait "$p" 2>/dev/null || true; done
	SERVERS=
}

# metric N PREFIX sums the samples whose name and labels start with
# PREFIX over servers 1..N.
metric() {
	for i in $(seq 1 "$1"); do curl -sf "http://$(http "$i")/metrics"; done |
		awk -v pre="$2" 'index($1, pre) == 1 { s += $2 } END { printf "%.0f", s }'
}

# loadtests N BASE DURATION runs three loadtests at once, with sample
# seeds BASE+1..BASE+3, one per server (all at server 1 when N is 1).
loadtests() {
	pids=
	for k in 1 2 3; do
		i=$(( (k - 1) % $1 + 1 ))
		"$PEMBA" loadtest --endpoint "$(grpc "$i")" --metrics-url "" --insecure --token $SECRET --quiet \
			--skip-load --dataset "$DATASET" --scale "$SCALE" --workload "$WORKLOAD" \
			--concurrency "$CONCURRENCY" --duration "$3" --sample-seed "$(( $2 + k ))" >"$WORK/run-$k.txt" &
		pids="$pids $!"
	done
	for p in $pids; do wait "$p"; done
}

# figures N prints the cluster's counters, summed over servers 1..N:
# checks, datastore reads, datastore calls, evaluations, cache hits and
# misses, dispatches sent, fallbacks, received resources, received hits.
figures() {
	for f in 'pemba_request_duration_seconds_count{code="OK",method="/pemba.v1.PermissionService/CheckPermission"}' \
		pemba_read_cache_misses_total pemba_datastore_duration_seconds_count pemba_check_dispatches_total \
		pemba_check_cache_hits_total pemba_check_cache_misses_total pemba_dispatch_sent_total \
		pemba_dispatch_fallbacks_total pemba_dispatch_received_resources_total pemba_dispatch_received_cache_hits_total; do
		printf '%s ' "$(metric "$1" "$f")"
	done
}

# run NAME N PEERS warms fresh servers up for WARMUP (other sample seeds),
# then measures the three loadtests and prints the row of the difference.
run() {
	start_servers "$2" "$3"
	[ "$WARMUP" != 0 ] && loadtests "$2" 10 "$WARMUP"
	before=$(figures "$2")
	loadtests "$2" 0 "$DURATION"
	after=$(figures "$2")
	stop_servers
	awk -v name="$1" -v before="$before" -v after="$after" 'BEGIN {
		split(before, b, " "); split(after, a, " ")
		for (i = 1; i <= 10; i++) d[i] = a[i] - b[i]
		c = d[1]
		ratio = (d[9] > 0) ? sprintf("%.0f%%", 100 * d[10] / d[9]) : "–"
		printf "| %s | %d | %.2f | %.2f | %.2f | %.0f%% | %s | %.2f | %d |\n", name, c, d[2] / c, d[3] / c, d[4] / c,
			(d[5] + d[6] > 0) ? 100 * d[5] / (d[5] + d[6]) : 0, ratio, d[7] / c, d[8]
	}'
}

# Load the data set once, through one server.
start_servers 1 0
"$PEMBA" loadtest --endpoint "$(grpc 1)" --insecure --token $SECRET --quiet --metrics-url "" \
	--dataset "$DATASET" --scale "$SCALE" --workload "$WORKLOAD" --concurrency 1 --duration 1s >"$WORK/load.txt"
stop_servers

echo "<!-- $(date -u +%Y-%m-%dT%H:%MZ), $DATASET ×$SCALE, $WORKLOAD, 3 loadtests × $CONCURRENCY workers × $DURATION after $WARMUP, load average $(cut -d' ' -f1-3 /proc/loadavg) -->"
echo "| servers | checks | datastore reads/check | datastore calls/check | evaluations/check | result cache hits | cluster cache hits (received) | dispatches/check | fallbacks |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
run "1" 1 0
run "3, no dispatch" 3 0
run "3, --peers" 3 1
