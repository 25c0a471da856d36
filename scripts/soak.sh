#!/usr/bin/env bash
# soak.sh: run glance-go on MariaDB for a fixed time under many clients doing
# every kind of write and read at once, and check that nothing grows without
# bound and that throughput does not decay.
#
#   scripts/soak.sh [glance-bench soak flags]      # make soak
#
# It starts bin/glance-api (make build) on a fresh MariaDB database and a file
# store under a temporary directory, in the trusted-auth flavor on a free
# port of 127.0.0.1, and runs "glance-bench soak" against it: first
# SOAK_POPULATE images (10 properties and 2 tags each) created by all the
# clients at once, then the mix of cmd/internal/loadmix for SOAK_DURATION.
# The mix deletes as well as creates and keeps at most 500 images of its own
# (-max-images), so the image count stays bounded. Every 10 s it reads the
# requests that ended and the server's go_goroutines,
# process_resident_memory_bytes and process_open_fds from /metrics; at the
# end it prints a table per minute (requests/s, p50/p95/p99/max latency,
# errors, goroutines, RSS, open files, images) and a verdict: no error, and
# the last minute within 1.5 times (plus a little slack) the second minute's
# goroutines, RSS and open files, and at least 80% of its throughput. The
# exit status is glance-bench's: 0 when the verdict is met.
#
# Environment:
#   SOAK_DURATION   how long the mix runs (default 10m)
#   SOAK_CLIENTS    clients at once (default 16)
#   SOAK_POPULATE   images made before the mix (default 2000; 0: none)
#   SOAK_POOL_SIZE  [database] max_pool_size of the server (default: unset, 5)
#   SOAK_DB         MariaDB database, dropped and created (default glance_soak);
#                   it is left in place afterwards for inspection
#   SOAK_MYSQL      user@host[:port] of the MariaDB server (default root@127.0.0.1)
#   SOAK_OUT        where the report and the server's log are kept
#                   (default /var/tmp/glance-soak-results)
#   SOAK_BIN        the server binary (default bin/glance-api)
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
export PATH=/usr/local/go/bin:$PATH

duration=${SOAK_DURATION:-10m}
clients=${SOAK_CLIENTS:-16}
populate=${SOAK_POPULATE:-2000}
pool=${SOAK_POOL_SIZE:-}
dbname=${SOAK_DB:-glance_soak}
mysql=${SOAK_MYSQL:-root@127.0.0.1}
out=${SOAK_OUT:-/var/tmp/glance-soak-results}
server=${SOAK_BIN:-bin/glance-api}

case $dbname in
*[!a-zA-Z0-9_]* | "")
	echo "soak.sh: SOAK_DB must be letters, digits and _, got '$dbname'" >&2
	exit 2
	;;
esac
if [ ! -x "$server" ]; then
	echo "soak.sh: $server is missing: make build (make soak does)" >&2
	exit 2
fi
user=${mysql%@*}
hostport=${mysql#*@}
host=${hostport%:*}
port=3306
[ "$hostport" != "$host" ] && port=${hostport#*:}
case $host in
127.* | localhost | ::1) ;;
*)
	echo "soak.sh: the database must be on loopback, got '$host'" >&2
	exit 2
	;;
esac
sql() { mariadb -h"$host" -P"$port" -u"$user" -e "$1"; }
sql 'SELECT 1' >/dev/null || {
	echo "soak.sh: no MariaDB at $mysql (scripts/ensure-mariadb.sh starts one)" >&2
	exit 2
}

mkdir -p "$out" bin
go build -o bin/glance-bench ./cmd/glance-bench

tmp=$(mktemp -d /var/tmp/glance-soak.XXXXXX)
pid=""
on_exit() {
	if [ -n "$pid" ]; then
		kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 1 40); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.25
		done
		kill -KILL -- "-$pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

# shellcheck source=scripts/free-port.sh
source "$top/scripts/free-port.sh"

sql "DROP DATABASE IF EXISTS \`$dbname\`; CREATE DATABASE \`$dbname\` CHARACTER SET utf8mb4"
bindport=$(free_port)
poolline=""
[ -n "$pool" ] && poolline="max_pool_size = $pool"
mkdir -p "$tmp/images" "$tmp/staging"
cat >"$tmp/glance-api.conf" <<CONF
[DEFAULT]
bind_host = 127.0.0.1
bind_port = $bindport
node_staging_uri = file://$tmp/staging

[database]
connection = mysql+pymysql://$user@$host:$port/$dbname
$poolline

[glance_store]
filesystem_store_datadir = $tmp/images

[paste_deploy]
flavor = trusted-auth
CONF
"$server" db sync --config-file "$tmp/glance-api.conf"

stamp=$(date -u +%Y%m%dT%H%M%SZ)
report=$out/soak-$stamp
setsid "$server" --config-file "$tmp/glance-api.conf" >"$report.log" 2>&1 </dev/null &
pid=$!
up=""
for _ in $(seq 1 120); do
	if curl -fsS -m 2 -o /dev/null "http://127.0.0.1:$bindport/versions" 2>/dev/null; then
		up=1
		break
	fi
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.5
done
if [ -z "$up" ]; then
	echo "soak.sh: $server did not answer on port $bindport; its log:" >&2
	tail -n 30 "$report.log" >&2
	exit 1
fi

{
	echo "soak: $server, tree $(git describe --always --dirty 2>/dev/null || echo unknown), on $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores"
	echo "soak: MariaDB $(mariadb -h"$host" -P"$port" -u"$user" -N -e 'SELECT VERSION()'), database $dbname, max_pool_size ${pool:-5 (default)}"
	echo "soak: started $(date -u '+%Y-%m-%d %H:%M:%S UTC'); server log $report.log"
} | tee "$report.txt"
rc=0
bin/glance-bench soak -endpoint "http://127.0.0.1:$bindport" -duration "$duration" -clients "$clients" \
	-populate "$populate" -json-out "$report.json" "$@" | tee -a "$report.txt" || rc=$?
if ! kill -0 "$pid" 2>/dev/null; then
	echo "soak.sh: the server died during the run; the end of its log:" | tee -a "$report.txt" >&2
	tail -n 30 "$report.log" >&2
	rc=1
fi
echo "soak: ended $(date -u '+%Y-%m-%d %H:%M:%S UTC'); report $report.txt" | tee -a "$report.txt"
exit "$rc"
