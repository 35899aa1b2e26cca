#!/bin/sh
# api-ab.sh compares the check workload through pemba.v1 and through
# SpiceDB's authzed.api.v1 on the same server and graph: it builds pemba,
# starts a server on a fresh embedded datastore, loads the data set once,
# then runs `pemba loadtest --api pemba` and `--api spicedb` alternately,
# RUNS times each, and prints one line per run (checks/s, p50, p99, the
# floor measured right after it, the share of the floor, and the server's
# CPU time per check, which waiting for a core on a busy machine does not
# change).
#
#   loadtest/api-ab.sh [DATASET SCALE]
#
# Defaults: nested-org 1. Environment: RUNS (default 5), DURATION (default
# 10s), CONCURRENCY (default 8), WORKLOAD (default check-random), PEMBA
# (default bin/pemba, built if missing).
set -eu

DATASET=${1:-nested-org}
SCALE=${2:-1}
RUNS=${RUNS:-5}
DURATION=${DURATION:-10s}
CONCURRENCY=${CONCURRENCY:-8}
WORKLOAD=${WORKLOAD:-check-random}
PEMBA=${PEMBA:-bin/pemba}
GRPC=127.0.0.1:50652
HTTP=127.0.0.1:8682
SECRET=bench-$$-secret
WORK=$(mktemp -d)
SERVER=

cleanup() {
	[ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

[ -x "$PEMBA" ] || go build -o "$PEMBA" ./cmd/pemba

"$PEMBA" serve --data-dir "$WORK/data" --grpc-addr $GRPC --http-addr $HTTP --token bench=$SECRET --log-level warn &
SERVER=$!
until curl -sf "http://$HTTP/readyz" >/dev/null 2>&1; do sleep 0.2; done

run() {
	"$PEMBA" loadtest --endpoint $GRPC --metrics-url "http://$HTTP/metrics" --insecure --token $SECRET --quiet \
		--dataset "$DATASET" --scale "$SCALE" --concurrency "$CONCURRENCY" --duration "$DURATION" "$@" >"$WORK/last.json.txt"
}

run --workload check-random --concurrency 1 --duration 1s --metrics-url ""
echo "# $(date -u +%Y-%m-%dT%H:%MZ), load average $(cut -d' ' -f1-3 /proc/loadavg); $DATASET ×$SCALE, $WORKLOAD, concurrency $CONCURRENCY, $DURATION"
echo "# api       checks/s   p50 ms   p99 ms  floor/s  of floor  server CPU µs/check"
i=0
while [ $i -lt "$RUNS" ]; do
	for api in pemba spicedb; do
		run --skip-load --workload "$WORKLOAD" --api $api --json "$WORK/r.json"
		jq -r --arg api $api '[$api, (.operations[0].qps|floor), .operations[0].p50_ms, .operations[0].p99_ms, (.floor_qps|floor),
			((.ratio_to_floor*1000|floor)/10|tostring+"%"), (.server_cpu_ms_per_request*1000)] | @tsv' "$WORK/r.json" |
			awk -F'\t' '{ printf "%-9s %10s %8.2f %8.2f %8s %9s %10.1f\n", $1, $2, $3, $4, $5, $6, $7 }'
	done
	i=$((i + 1))
done
