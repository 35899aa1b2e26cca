# postgres.sh is sourced by the load-test scripts: it starts and stops a
# throwaway PostgreSQL cluster under $WORK/pg from the newest
# /usr/lib/postgresql/*/bin, as the postgres user when run as root.
#
#   start_postgres PORT MAX_CONNECTIONS   sets PG=1 and PG_BASE (no database)
#   stop_postgres

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

start_postgres() {
	mkdir -p "$WORK/pg"
	[ "$(id -u)" = 0 ] && chown postgres "$WORK" "$WORK/pg"
	as_pg initdb -D "$WORK/pg" -U postgres --auth=trust --no-sync >/dev/null
	as_pg pg_ctl -D "$WORK/pg" -l "$WORK/pg/log" -w start \
		-o "-p $1 -k $WORK/pg -c listen_addresses=127.0.0.1 -c max_connections=$2 -c shared_buffers=256MB" >/dev/null
	PG=1
	PG_BASE="postgres://postgres@127.0.0.1:$1"
}

stop_postgres() {
	[ -n "${PG:-}" ] && as_pg pg_ctl -D "$WORK/pg" -m fast stop >/dev/null 2>&1
	PG=
}
