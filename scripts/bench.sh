#!/usr/bin/env bash
# bench.sh: benchmark a Glance v2 server on loopback with cmd/glance-bench.
#
#   scripts/bench.sh reference [glance-bench flags]   # the real Glance 25.1 (scripts/reference-glance.sh)
#   scripts/bench.sh glance-go [glance-bench flags]   # our bin/glance-api, built and started here ("ours" too)
#   scripts/bench.sh both      [glance-bench flags]   # one after the other
#   scripts/bench.sh endpoint URL [flags]             # a server that is already running
#
# Every server this script starts binds to 127.0.0.1, starts from an empty
# database and store, and is stopped when the run ends (also on Ctrl-C).
# Defaults are the project's acceptance run: 3 rounds, 2,000 seeded images,
# 1 GiB upload and download, 8 concurrent uploads of 128 MiB; any
# glance-bench flag given here overrides them (e.g. -rounds 1 -upload-size 256MiB).
#
# The table goes to stdout; the table and the JSON report are also saved as
# $BENCH_OUT/<target>-<UTC time>.{txt,json} (default /var/tmp/glance-bench-results).
# REF_PORT (default 19393) is the reference server's port.
#
# Servers started here are thrown away afterwards, so their runs pass -keep and
# skip deleting thousands of images one by one; "endpoint" runs clean up.
#
# BENCH_STORE=rbd stores the images in Ceph RBD instead of files, for both
# servers: the legacy single store (stores = rbd) on the cluster of
# scripts/ceph-dev.sh (started here when GLANCE_TEST_RBD_CONF is not set), in
# a pool of the benchmark's own, BENCH_RBD_POOL (default glance-bench),
# created as client.admin and emptied when each server's run ends. glance-go
# is then built with make build-ceph. The images a scenario uploads are
# deleted right after it, so the default sizes (1 GiB, 8 x 128 MiB) fit in
# ceph-dev.sh's 3 GiB memstore OSD.
#
# BENCH_DB=mysql runs both servers on the MariaDB (or MySQL) of 127.0.0.1:3306
# (root without a password; scripts/ensure-mariadb.sh starts it when it does not
# answer), each on a database of its own that is dropped and created afresh
# before its run: BENCH_DB_REF (default glance_bench_ref) for Glance, made
# with glance-manage db_sync, and BENCH_DB_GO (default glance_bench_go) for
# glance-go, made with bin/glance-api db sync. Glance then runs
# BENCH_REF_WORKERS API processes (default 2: its own default on these
# 2-core machines); on SQLite it keeps one. The seeded images are created
# by 16 clients at once (-seed-clients 16; a later -seed-clients wins).
# BENCH_GO_DB_OPTIONS adds lines to glance-go's [database] section, e.g.
# BENCH_GO_DB_OPTIONS='max_pool_size = 60'. Reports are saved as
# glance-25.1-mysql-* and glance-go-mysql-*. Default: BENCH_DB=sqlite.
#
# BENCH_GO_BIN=PATH benches that glance-api binary (built from another
# commit, say) instead of building bin/glance-api from this tree.
#
# BENCH_NICE=-10 runs the servers and the client at that nice level, for a
# calibration on a machine that others are using at the same time (it takes
# CPU from them: use it knowingly). Unset by default.
set -euo pipefail

if [ -n "${BENCH_NICE:-}" ] && [ -z "${BENCH_NICED:-}" ]; then
	export BENCH_NICED=1
	exec nice -n "$BENCH_NICE" "$0" "$@"
fi

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
export PATH=/usr/local/go/bin:$PATH
out=${BENCH_OUT:-/var/tmp/glance-bench-results}
ref_port=${REF_PORT:-19393}
store=${BENCH_STORE:-file}
rbd_pool=${BENCH_RBD_POOL:-glance-bench}
dbkind=${BENCH_DB:-sqlite}
db_ref=${BENCH_DB_REF:-glance_bench_ref}
db_go=${BENCH_DB_GO:-glance_bench_go}
ref_workers=1
suffix=""
case $store in
file) ;;
rbd) suffix=-rbd ;;
*)
	echo "bench.sh: BENCH_STORE must be file or rbd, got '$store'" >&2
	exit 2
	;;
esac
case $dbkind in
sqlite) ;;
mysql)
	suffix=$suffix-mysql
	ref_workers=${BENCH_REF_WORKERS:-2}
	for n in "$db_ref" "$db_go"; do
		case $n in
		'' | *[!A-Za-z0-9_]*)
			echo "bench.sh: database names must be letters, digits and _, got '$n'" >&2
			exit 2
			;;
		esac
	done
	;;
*)
	echo "bench.sh: BENCH_DB must be sqlite or mysql, got '$dbkind'" >&2
	exit 2
	;;
esac
mkdir -p "$out" bin

cleanup_cmds=()
on_exit() {
	local i
	for ((i = ${#cleanup_cmds[@]} - 1; i >= 0; i--)); do
		eval "${cleanup_cmds[i]}" || true
	done
}
trap on_exit EXIT
trap 'exit 130' INT TERM

# Steps below check their own failures: these functions also run on the left
# of "||", where set -e does not apply.

build_bench() {
	go build -o bin/glance-bench ./cmd/glance-bench || {
		echo "bench.sh: cannot build cmd/glance-bench" >&2
		return 1
	}
}

# run_bench NAME URL PID [flags]: bench one server and save the reports.
run_bench() {
	local name=$1 url=$2 pid=$3
	shift 3
	local stamp file
	stamp=$(date -u +%Y%m%dT%H%M%SZ)
	file=$out/$name-$stamp
	local pidflag=()
	[ -n "$pid" ] && pidflag=(-pid "$pid")
	echo "bench.sh: $name at $url; reports in $file.{txt,json}" >&2
	local rc=0
	bin/glance-bench -endpoint "$url" -label "$name" "${pidflag[@]}" -json-out "$file.json" "$@" | tee "$file.txt" || rc=$?
	return "$rc"
}

# fresh_mysql NAME drops the MariaDB database NAME and creates it empty.
fresh_mysql() {
	scripts/ensure-mariadb.sh >&2 || {
		echo "bench.sh: no MariaDB on 127.0.0.1:3306 (scripts/ensure-mariadb.sh)" >&2
		return 1
	}
	mariadb -h127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS \`$1\`; CREATE DATABASE \`$1\`" || {
		echo "bench.sh: cannot create the database $1" >&2
		return 1
	}
}

# db_flags prints the glance-bench flags of the database kind; the caller's
# own flags come after them and win.
db_flags() {
	[ "$dbkind" = mysql ] && echo "-seed-clients 16"
	return 0
}

# shellcheck source=scripts/free-port.sh
source "$top/scripts/free-port.sh"

# ceph_setup finds the ceph-dev.sh cluster, starting it when the
# environment names none, and creates the benchmark's pool in it.
ceph_setup() {
	if [ -z "${GLANCE_TEST_RBD_CONF:-}" ]; then
		eval "$(scripts/ceph-dev.sh start)" || return 1
	fi
	ceph_conf=$GLANCE_TEST_RBD_CONF
	if ! timeout 60 rbd -c "$ceph_conf" -n client.admin pool stats "$rbd_pool" >/dev/null 2>&1; then
		timeout 60 ceph -c "$ceph_conf" -n client.admin osd pool create "$rbd_pool" 8 8 replicated >&2 &&
			timeout 60 rbd -c "$ceph_conf" -n client.admin pool init "$rbd_pool" || {
			echo "bench.sh: cannot create the rbd pool $rbd_pool" >&2
			return 1
		}
	fi
}

# rbd_purge removes every image of the benchmark's pool: what a server left
# there when it was stopped, so that the next run has the space.
rbd_purge() {
	local r=(timeout 120 rbd -c "$ceph_conf" -n client.admin) img snap id
	for img in $("${r[@]}" ls "$rbd_pool"); do
		for snap in $("${r[@]}" snap ls "$rbd_pool/$img" | awk 'NR > 1 { print $2 }'); do
			"${r[@]}" snap unprotect "$rbd_pool/$img@$snap" 2>/dev/null || true
		done
		"${r[@]}" snap purge --no-progress "$rbd_pool/$img" >/dev/null 2>&1 || true
		"${r[@]}" rm --no-progress "$rbd_pool/$img" >&2 || true
	done
	for id in $("${r[@]}" trash ls "$rbd_pool" | awk '{ print $1 }'); do
		"${r[@]}" trash rm --no-progress "$rbd_pool/$id" >&2 || true
	done
}

# rbd_section prints the legacy single rbd store's [glance_store].
rbd_section() {
	cat <<CONF
[glance_store]
stores = rbd, http
default_store = rbd
rbd_store_ceph_conf = $ceph_conf
rbd_store_user = admin
rbd_store_pool = $rbd_pool
rbd_store_chunk_size = 8
CONF
}

bench_reference() {
	local label="glance-25.1$suffix"
	scripts/reference-glance.sh stop "$ref_port" >/dev/null || return 1
	local ref_env=(REF_WORKERS="$ref_workers")
	if [ "$dbkind" = mysql ]; then
		fresh_mysql "$db_ref" || return 1
		ref_env+=(REF_DB="mysql+pymysql://root@127.0.0.1/$db_ref")
	fi
	if [ "$store" = rbd ]; then
		ceph_setup || return 1
		cleanup_cmds+=("rbd_purge")
		ref_env+=(REF_STORE=rbd GLANCE_TEST_RBD_USER=admin GLANCE_TEST_RBD_POOL="$rbd_pool")
	fi
	env "${ref_env[@]}" scripts/reference-glance.sh start "$ref_port" trusted || return 1
	cleanup_cmds+=("scripts/reference-glance.sh stop $ref_port >&2")
	# shellcheck disable=SC2046 # db_flags prints words to split
	run_bench "$label" "http://127.0.0.1:$ref_port" "$(scripts/reference-glance.sh pid "$ref_port")" -keep $(db_flags) "$@"
}

bench_glance_go() {
	local bin=${BENCH_GO_BIN:-bin/glance-api}
	if [ -n "${BENCH_GO_BIN:-}" ]; then
		[ -x "$bin" ] || {
			echo "bench.sh: BENCH_GO_BIN=$bin is not an executable" >&2
			return 1
		}
	# A failed build must not fall back on an older bin/glance-api.
	elif ! rm -f bin/glance-api; then
		return 1
	elif [ "$store" = rbd ]; then
		make -s build-ceph BIN=bin/glance-api || {
			echo "bench.sh: cannot build cmd/glance-api with the rbd store (make build-ceph)" >&2
			return 1
		}
	else
		go build -o bin/glance-api ./cmd/glance-api || {
			echo "bench.sh: cannot build cmd/glance-api" >&2
			return 1
		}
	fi
	local tmp port conf pid section
	tmp=$(mktemp -d /var/tmp/glance-go-bench.XXXXXX) || return 1
	cleanup_cmds+=("rm -rf '$tmp'")
	port=$(free_port) || return 1
	conf=$tmp/glance-api.conf
	mkdir -p "$tmp/images"
	section="[glance_store]
filesystem_store_datadir = $tmp/images"
	if [ "$store" = rbd ]; then
		ceph_setup || return 1
		cleanup_cmds+=("rbd_purge")
		section=$(rbd_section)
	fi
	local connection="sqlite:///$tmp/g.sqlite"
	if [ "$dbkind" = mysql ]; then
		fresh_mysql "$db_go" || return 1
		connection="mysql+pymysql://root@127.0.0.1/$db_go"
	fi
	cat >"$conf" <<CONF
[DEFAULT]
bind_host = 127.0.0.1
bind_port = $port

[database]
connection = $connection
${BENCH_GO_DB_OPTIONS:-}

$section

[paste_deploy]
flavor = trusted-auth
CONF
	"$bin" db sync --config-file "$conf" || {
		echo "bench.sh: $bin db sync failed" >&2
		return 1
	}
	setsid "$bin" --config-file "$conf" >"$tmp/glance-api.log" 2>&1 </dev/null &
	pid=$!
	cleanup_cmds+=("stop_pid $pid")
	local up=""
	for _ in $(seq 1 120); do
		if curl -fsS -m 2 -o /dev/null "http://127.0.0.1:$port/versions" 2>/dev/null; then
			up=1
			break
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			break
		fi
		sleep 0.5
	done
	if [ -z "$up" ]; then
		echo "bench.sh: $bin did not answer on port $port; its log:" >&2
		tail -n 30 "$tmp/glance-api.log" >&2
		return 1
	fi
	# shellcheck disable=SC2046 # db_flags prints words to split
	run_bench "glance-go$suffix" "http://127.0.0.1:$port" "$pid" -keep $(db_flags) "$@"
}

# stop_pid PID: end a server this script started, with its process group.
stop_pid() {
	local pid=$1
	kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 1 40); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.25
	done
	kill -KILL -- "-$pid" 2>/dev/null || true
}

target=${1:-}
[ $# -gt 0 ] && shift
case $target in
reference)
	build_bench
	bench_reference "$@"
	;;
glance-go | ours)
	build_bench
	bench_glance_go "$@"
	;;
both)
	build_bench
	rc=0
	bench_reference "$@" || rc=$?
	on_exit
	cleanup_cmds=()
	bench_glance_go "$@" || rc=$?
	exit "$rc"
	;;
endpoint)
	url=${1:?usage: bench.sh endpoint URL [flags]}
	shift
	build_bench
	run_bench endpoint "$url" "" "$@"
	;;
*)
	echo "usage: $0 reference|glance-go|ours|both|endpoint URL [glance-bench flags]" >&2
	exit 2
	;;
esac
