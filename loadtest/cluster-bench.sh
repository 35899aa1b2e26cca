#!/bin/sh
# cluster-bench.sh measures what dispatch between servers saves: it loads
# a data set into a throwaway PostgreSQL once, then for each of 1 server,
# 3 servers without --peers and 3 servers with --peers (fresh processes,
# cold caches) runs three `pemba loadtest` processes at once, one per
# server (all three at the one server), with the same three sample seeds,
# and prints a Markdown row of cluster-wide figures scraped from /metrics.
#
#   loadtest/cluster-bench.sh [DATASET SCALE]
#
# Defaults: nested-org 1. Environment: DURATION (default 20s), CONCURRENCY
# per loadtest (default 4), WORKLOAD (default check-random), PEMBA (default
# bin/pemba, built if missing), SERVE_ARGS (extra flags for every server).
set -eu

DATASET=${1:-nested-org}
SCALE=${2:-1}
DURATION=${DURATION:-20s}
CONCURRENCY=${CONCURRENCY:-4}
WORKLOAD=${WORKLOAD:-check-random}
PEMBA=${PEMBA:-bin/pemba}
SECRET=bench-$$-secret
CLUSTER=bench-$$-cluster-token
WORK=$(mktemp -d)
SERVERS=
PG=

cleanup() {
	stop_servers
	[ -n "$PG" ] && as_pg pg_ctl -D "$WORK/pg" -m fast stop >/dev/null 2>&1
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

[ -x "$PEMBA" ] || go build -o "$PEMBA" ./cmd/pemba

as_pg() {
	cmd=$1
	shift
	bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$bin/$cmd" "$@"
	else
		"$bin/$cmd" "$@"
	fi
}

mkdir -p "$WORK/pg"
[ "$(id -u)" = 0 ] && chown postgres "$WORK" "$WORK/pg"
as_pg initdb -D "$WORK/pg" -U postgres --auth=trust --no-sync >/dev/null
as_pg pg_ctl -D "$WORK/pg" -l "$WORK/pg/log" -w start \
	-o "-p 55433 -k $WORK/pg -c listen_addresses=127.0.0.1 -c max_connections=300 -c shared_buffers=256MB" >/dev/null
PG=1
URL="postgres://postgres@127.0.0.1:55433/postgres?sslmode=disable"

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

# run NAME N PEERS runs the three loadtests and prints the row.
run() {
	name=$1 n=$2
	start_servers "$n" "$3"
	pids=
	for k in 1 2 3; do
		i=$(( (k - 1) % n + 1 ))
		"$PEMBA" loadtest --endpoint "$(grpc "$i")" --metrics-url "" --insecure --token $SECRET --quiet \
			--skip-load --dataset "$DATASET" --scale "$SCALE" --workload "$WORKLOAD" \
			--concurrency "$CONCURRENCY" --duration "$DURATION" --sample-seed "$k" >"$WORK/run-$k.txt" &
		pids="$pids $!"
	done
	for p in $pids; do wait "$p"; done
	checks=$(metric "$n" 'pemba_request_duration_seconds_count{code="OK",method="/pemba.v1.PermissionService/CheckPermission"}')
	reads=$(metric "$n" pemba_read_cache_misses_total)
	evals=$(metric "$n" pemba_check_dispatches_total)
	hits=$(metric "$n" pemba_check_cache_hits_total)
	misses=$(metric "$n" pemba_check_cache_misses_total)
	sent=$(metric "$n" pemba_dispatch_sent_total)
	fallbacks=$(metric "$n" pemba_dispatch_fallbacks_total)
	recv=$(metric "$n" pemba_dispatch_received_resources_total)
	rhits=$(metric "$n" pemba_dispatch_received_cache_hits_total)
	ops=$(metric "$n" pemba_datastore_duration_seconds_count)
	for op in query reverse_query snapshot_reader head_revision; do
		echo "$name: $op $(metric "$n" "pemba_datastore_duration_seconds_count{operation=\"$op\"}")" >&2
	done
	stop_servers
	awk -v name="$name" -v c="$checks" -v r="$reads" -v e="$evals" -v h="$hits" -v m="$misses" \
		-v s="$sent" -v f="$fallbacks" -v rv="$recv" -v rh="$rhits" -v o="$ops" 'BEGIN {
		ratio = (rv > 0) ? sprintf("%.0f%%", 100 * rh / rv) : "–"
		printf "| %s | %d | %.2f | %.2f | %.2f | %.0f%% | %s | %.2f | %d |\n", name, c, r / c, o / c, e / c,
			(h + m > 0) ? 100 * h / (h + m) : 0, ratio, s / c, f
	}'
}

# Load the data set once, through one server.
start_servers 1 0
"$PEMBA" loadtest --endpoint "$(grpc 1)" --insecure --token $SECRET --quiet --metrics-url "" \
	--dataset "$DATASET" --scale "$SCALE" --workload "$WORKLOAD" --concurrency 1 --duration 1s >"$WORK/load.txt"
stop_servers

echo "<!-- $(date -u +%Y-%m-%dT%H:%MZ), $DATASET ×$SCALE, $WORKLOAD, 3 loadtests × $CONCURRENCY workers × $DURATION, load average $(cut -d' ' -f1-3 /proc/loadavg) -->"
echo "| servers | checks | datastore reads/check | datastore calls/check | evaluations/check | result cache hits | cluster cache hits (received) | dispatches/check | fallbacks |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
run "1" 1 0
run "3, no dispatch" 3 0
run "3, --peers" 3 1
