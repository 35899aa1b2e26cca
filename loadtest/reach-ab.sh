#!/bin/sh
# reach-ab.sh measures check-random with the reachability index off and
# on, alternating, on one nested-org data directory (BENCHMARKS.md,
# "Scale"):
#
#   loadtest/reach-ab.sh [SCALE]
#
# The data set is loaded once into $DATA (default /tmp/pemba-reach-SCALE)
# and kept for later runs. Environment: RUNS (default 3 pairs), DURATION
# (default 15s), CONCURRENCY (default 8), PEMBA (default bin/pemba, built
# if missing), GRPC and HTTP (default 127.0.0.1:50751 and :8781).
set -eu
SCALE=${1:-100}
RUNS=${RUNS:-3}
DURATION=${DURATION:-15s}
CONCURRENCY=${CONCURRENCY:-8}
PEMBA=${PEMBA:-bin/pemba}
GRPC=${GRPC:-127.0.0.1:50751}
HTTP=${HTTP:-127.0.0.1:8781}
SECRET=reach-$$-secret
DATA=${DATA:-/tmp/pemba-reach-$SCALE}
SERVER=

[ -x "$PEMBA" ] || go build -o "$PEMBA" ./cmd/pemba
trap '[ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null' EXIT INT TERM

serve() {
	"$PEMBA" serve --data-dir "$DATA" "$@" --grpc-addr "$GRPC" --http-addr "$HTTP" --token bench=$SECRET --log-level warn &
	SERVER=$!
	until curl -sf "http://$HTTP/readyz" >/dev/null 2>&1; do sleep 0.2; done
}

stop() {
	kill "$SERVER"
	wait "$SERVER" 2>/dev/null || true
	SERVER=
}

if [ ! -d "$DATA" ]; then
	mkdir -p "$DATA"
	serve --reach-index=false
	"$PEMBA" loadtest --endpoint "$GRPC" --insecure --token $SECRET --quiet --metrics-url "" \
		--dataset nested-org --scale "$SCALE" --workload check-random --concurrency 1 --duration 1s | grep '^loaded'
	stop
fi
for i in $(seq "$RUNS"); do
	for index in false true; do
		serve --reach-index=$index
		start=$(date +%s.%N)
		if [ $index = true ]; then
			until curl -s "http://$HTTP/metrics" | grep -q '^pemba_reach_index_builds_total [1-9]'; do sleep 0.1; done
			echo "<!-- index built in $(echo "$(date +%s.%N) - $start" | bc) s: $(curl -s "http://$HTTP/metrics" |
				grep -E '^pemba_reach_index_(bytes|entries|relationships|build_seconds) ' | tr '\n' ' ')-->"
		fi
		echo "<!-- --reach-index=$index, run $i, load average $(cut -d' ' -f1-3 /proc/loadavg) -->"
		"$PEMBA" loadtest --endpoint "$GRPC" --metrics-url "http://$HTTP/metrics" --insecure --token $SECRET --quiet \
			--skip-load --dataset nested-org --scale "$SCALE" --workload check-random --concurrency "$CONCURRENCY" \
			--duration "$DURATION" --markdown | sed -n '/^| [a-z]/p' | grep -v '^| dataset' || true
		stop
	done
done
