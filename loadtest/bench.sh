#!/bin/sh
# bench.sh reproduces the load-test figures in BENCHMARKS.md: it builds
# pemba, starts a server on a fresh datastore for each data set, runs the
# workloads with `pemba loadtest`, and prints Markdown rows.
#
#   loadtest/bench.sh [embedded|postgres] [DATASET SCALE]...
#
# Defaults: embedded, nested-org 1. Environment: DURATION (default 30s),
# CONCURRENCY (default "8 32"), WORKLOADS (default "check-random mixed"),
# EXTRA (default "check-hot new-enemy read", at the first concurrency only),
# PEMBA (default bin/pemba, built if missing), SERVE_ARGS (extra flags for
# pemba serve, e.g. "--read-cache-bytes 536870912"), ROUNDS (default 1).
# The postgres datastore uses PG_URL, or starts a throwaway cluster from
# /usr/lib/postgresql/*/bin.
#
# ROUNDS=N (embedded only) loads every data set first, then runs the
# workloads N times, taking the data sets in turn in each round on a
# restarted server, and ends with the median of each row over the rounds
# (loadtest/median.awk): data sets compared with each other are then
# measured side by side, not minutes apart.
set -eu

DATASTORE=${1:-embedded}
[ $# -gt 0 ] && shift
[ $# -eq 0 ] && set -- nested-org 1
DURATION=${DURATION:-30s}
CONCURRENCY=${CONCURRENCY:-"8 32"}
WORKLOADS=${WORKLOADS:-"check-random mixed"}
EXTRA=${EXTRA:-"check-hot new-enemy read"}
PEMBA=${PEMBA:-bin/pemba}
ROUNDS=${ROUNDS:-1}
GRPC=127.0.0.1:50651
HTTP=127.0.0.1:8681
SECRET=bench-$$-secret
WORK=$(mktemp -d)
SERVER=
PG=

. "$(dirname "$0")/postgres.sh"

case $ROUNDS in
'' | *[!0-9]* | 0) echo "ROUNDS=$ROUNDS: want a positive number of rounds" >&2; exit 2 ;;
esac
if [ "$ROUNDS" -gt 1 ] && [ "$DATASTORE" != embedded ]; then
	echo "ROUNDS=$ROUNDS: rounds need the embedded datastore, whose data set each keeps in a directory of its own" >&2
	exit 2
fi

cleanup() {
	[ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
	stop_postgres
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

[ -x "$PEMBA" ] || go build -o "$PEMBA" ./cmd/pemba

serve() {
	case $DATASTORE in
	embedded) set -- --data-dir "$WORK/data-$1-$2" ;;
	postgres)
		if [ -z "${PG_URL:-}" ]; then
			start_postgres 55432 200
			PG_URL="$PG_BASE/postgres?sslmode=disable"
		fi
		# Drop the previous data set quietly: PostgreSQL would list every table the cascade drops.
		PGOPTIONS=--client-min-messages=warning psql "$PG_URL" -qc 'DROP SCHEMA public CASCADE; CREATE SCHEMA public' >/dev/null
		set -- --datastore postgres --datastore-url "$PG_URL" --auto-migrate
		;;
	*) echo "unknown datastore $DATASTORE" >&2; exit 2 ;;
	esac
	# shellcheck disable=SC2086 # SERVE_ARGS is a list of flags
	"$PEMBA" serve "$@" ${SERVE_ARGS:-} --grpc-addr $GRPC --http-addr $HTTP --token bench=$SECRET --log-level warn &
	SERVER=$!
	until curl -sf "http://$HTTP/readyz" >/dev/null 2>&1; do sleep 0.2; done
}

stop() {
	kill "$SERVER"
	wait "$SERVER" 2>/dev/null || true
	SERVER=
}

# loadtest runs one workload and prints its Markdown rows; a new-enemy
# result becomes a comment line, and a violation (exit 1) does not stop the
# remaining runs.
loadtest() {
	status=0
	"$PEMBA" loadtest --endpoint $GRPC --metrics-url "http://$HTTP/metrics" --insecure \
		--token $SECRET --quiet --duration "$DURATION" "$@" >"$WORK/last.txt" || status=$?
	sed -n '/^| [a-z]/p' "$WORK/last.txt" | grep -v '^| dataset' || true
	sed -n 's/^\(new-enemy:.*\)/<!-- \1 -->/p; s/^\(.* errors, e.g.: .*\)/<!-- \1 -->/p; s/^\(settling: .*\)/<!-- \1 -->/p' "$WORK/last.txt"
	if [ $status -gt 1 ]; then
		cat "$WORK/last.txt" >&2
		exit $status
	fi
}

echo "<!-- $(date -u +%Y-%m-%dT%H:%MZ), load average $(cut -d' ' -f1-3 /proc/loadavg) -->"
printf '%s' "| dataset | workload | conc. | operation | count | errors | QPS | p50 ms | p90 ms | p99 ms | p99.9 ms | % of floor | % of read floor | cache hits | dispatches/check | datastore reads/check |
| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
"
# workloads runs every workload on the data set the server holds.
workloads() {
	first=
	for c in $CONCURRENCY; do
		for w in $WORKLOADS; do
			loadtest --skip-load --dataset "$1" --scale "$2" --workload "$w" --concurrency "$c" --markdown
		done
		if [ -z "$first" ]; then
			first=$c
			for w in $EXTRA; do
				loadtest --skip-load --dataset "$1" --scale "$2" --workload "$w" --concurrency "$c" --warmup 5s --markdown
			done
		fi
	done
}

# peak prints the server's peak resident memory so far.
peak() {
	echo "<!-- $DATASTORE $1 ×$2: server peak RSS $(awk '/^VmHWM/ {printf "%d MiB", $2 / 1024}' /proc/$SERVER/status 2>/dev/null)$3 -->"
}

sets="$*"
while [ $# -ge 2 ]; do
	dataset=$1 scale=$2
	shift 2
	serve "$dataset" "$scale"
	# Load once, timed; every workload below reuses the data.
	"$PEMBA" loadtest --endpoint $GRPC --insecure --token $SECRET --quiet --metrics-url "" \
		--dataset "$dataset" --scale "$scale" --workload check-random --concurrency 1 --duration 1s >"$WORK/load.txt"
	echo "<!-- $DATASTORE $dataset ×$scale: $(grep '^loaded' "$WORK/load.txt") -->"
	if [ "$ROUNDS" -gt 1 ]; then
		peak "$dataset" "$scale" ", the load"
	else
		workloads "$dataset" "$scale"
		# The server's peak resident memory over the load and every run.
		peak "$dataset" "$scale" ""
	fi
	stop
done

[ "$ROUNDS" -gt 1 ] || exit 0
round=1
while [ $round -le "$ROUNDS" ]; do
	echo "<!-- round $round of $ROUNDS -->"
	# shellcheck disable=SC2086 # sets is the list of data sets and scales
	set -- $sets
	while [ $# -ge 2 ]; do
		serve "$1" "$2"
		workloads "$1" "$2" >"$WORK/round.md"
		tee -a "$WORK/rounds.md" <"$WORK/round.md"
		peak "$1" "$2" ", round $round"
		stop
		shift 2
	done
	round=$((round + 1))
done
echo "<!-- median of each row over $ROUNDS rounds -->"
awk -f "$(dirname "$0")/median.awk" "$WORK/rounds.md"
