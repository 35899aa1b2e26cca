#!/bin/bash
# spicedb-compare.sh measures Pemba and SpiceDB side by side: the same data
# set, loaded through the same API (authzed.api.v1), into one throwaway
# PostgreSQL cluster (a database each), then the same read workloads with
# the same sampled requests against each server in turn, alternating.
#
#   SPICEDB=/path/to/spicedb loadtest/spicedb-compare.sh [DATASET SCALE]
#
# Defaults: identity-platform 1. Environment: SPICEDB (required: a spicedb
# binary, e.g. from `go install github.com/authzed/spicedb/cmd/spicedb@v1.56.2`),
# DURATION (default 15s), CONCURRENCY (default 8), WORKLOADS (default
# "check-random lookup-subjects lookup-resources"), ROUNDS (default 2),
# PEMBA (default bin/pemba, built if missing), SEED (the sampled requests'
# seed, default 1), SERVE_ARGS (extra flags for pemba serve). Prints
# Markdown rows, one per run.
set -eu

DATASET=${1:-identity-platform}
SCALE=${2:-1}
: "${SPICEDB:?set SPICEDB to a spicedb binary}"
DURATION=${DURATION:-15s}
CONCURRENCY=${CONCURRENCY:-8}
WORKLOADS=${WORKLOADS:-"check-random lookup-subjects lookup-resources"}
ROUNDS=${ROUNDS:-2}
SEED=${SEED:-1}
PEMBA=${PEMBA:-bin/pemba}
PEMBA_GRPC=127.0.0.1:50661
PEMBA_HTTP=127.0.0.1:8691
SPICEDB_GRPC=127.0.0.1:50662
SECRET=compare-$$-secret
WORK=$(mktemp -d)
PIDS=
PG=

. "$(dirname "$0")/postgres.sh"

cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	stop_postgres
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

[ -x "$PEMBA" ] || go build -o "$PEMBA" ./cmd/pemba

start_postgres 55433 300
BASE=$PG_BASE
psql "$BASE/postgres?sslmode=disable" -qc 'CREATE DATABASE pemba' -c 'CREATE DATABASE spicedb' >/dev/null

# shellcheck disable=SC2086 # SERVE_ARGS is a list of flags
"$PEMBA" serve --datastore postgres --datastore-url "$BASE/pemba?sslmode=disable" --auto-migrate ${SERVE_ARGS:-} \
	--grpc-addr $PEMBA_GRPC --http-addr $PEMBA_HTTP --token bench=$SECRET --log-level warn &
PIDS="$PIDS $!"
"$SPICEDB" datastore migrate head --datastore-engine postgres \
	--datastore-conn-uri "$BASE/spicedb?sslmode=disable" >"$WORK/spicedb-migrate.log" 2>&1
"$SPICEDB" serve --grpc-preshared-key $SECRET --grpc-addr $SPICEDB_GRPC --http-enabled=false \
	--metrics-enabled=false --telemetry-endpoint "" --datastore-engine postgres --datastore-conn-uri "$BASE/spicedb?sslmode=disable" \
	>"$WORK/spicedb.log" 2>&1 &
PIDS="$PIDS $!"

run() {
	"$PEMBA" loadtest --insecure --token $SECRET --metrics-url "" --quiet --api spicedb \
		--dataset "$DATASET" --scale "$SCALE" "$@"
}

# Wait for both, then load each through the same API, timed.
until curl -sf "http://$PEMBA_HTTP/readyz" >/dev/null 2>&1; do sleep 0.2; done
until (exec 3<>"/dev/tcp/${SPICEDB_GRPC%:*}/${SPICEDB_GRPC#*:}") 2>/dev/null; do sleep 0.5; done
echo "<!-- $(date -u +%Y-%m-%dT%H:%MZ), load average $(cut -d' ' -f1-3 /proc/loadavg); $("$SPICEDB" version 2>/dev/null | head -1) -->"
for server in pemba spicedb; do
	endpoint=$PEMBA_GRPC
	[ $server = spicedb ] && endpoint=$SPICEDB_GRPC
	echo "<!-- $server: $(run --endpoint $endpoint --load-only) -->"
done
sleep 6 # past both servers' revision quantization (5 s): every read sees the data

echo "| server | workload | conc. | operation | count | errors | QPS | p50 ms | p90 ms | p99 ms | p99.9 ms | % of floor |"
echo "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
round=0
while [ $round -lt "$ROUNDS" ]; do
	round=$((round + 1))
	for w in $WORKLOADS; do
		for server in pemba spicedb; do
			endpoint=$PEMBA_GRPC
			[ $server = spicedb ] && endpoint=$SPICEDB_GRPC
			run --endpoint $endpoint --skip-load --workload "$w" --concurrency "$CONCURRENCY" \
				--duration "$DURATION" --sample-seed "$SEED" --markdown >"$WORK/last.txt" || true
			sed -n '/^| [a-z]/p' "$WORK/last.txt" | grep -v '^| dataset' | grep -v -e '| health |' -e '| point-read |' |
				cut -d'|' -f3- | sed "s/^/| $server |/" | cut -d'|' -f1-13 | sed 's/$/|/'
			sed -n 's/^\(.* errors, e.g.: .*\)/<!-- \1 -->/p' "$WORK/last.txt"
		done
	done
done
