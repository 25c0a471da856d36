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

# free_port prints a loopback TCP port nobody listens on.
free_port() {
	local p
	for _ in $(seq 1 100); do
		p=$((20000 + RANDOM % 10000))
		if ! ss -Htln "sport = :$p" | grep -q .; then
			echo "$p"
			return
		fi
	done
	echo "bench.sh: no free port found" >&2
	return 1
}

bench_reference() {
	local label="glance-25.1"
	scripts/reference-glance.sh stop "$ref_port" >/dev/null || return 1
	scripts/reference-glance.sh start "$ref_port" trusted || return 1
	cleanup_cmds+=("scripts/reference-glance.sh stop $ref_port >&2")
	run_bench "$label" "http://127.0.0.1:$ref_port" "$(scripts/reference-glance.sh pid "$ref_port")" -keep "$@"
}

bench_glance_go() {
	# A failed build must not fall back on an older bin/glance-api.
	rm -f bin/glance-api
	go build -o bin/glance-api ./cmd/glance-api || {
		echo "bench.sh: cannot build cmd/glance-api" >&2
		return 1
	}
	local tmp port conf pid
	tmp=$(mktemp -d /var/tmp/glance-go-bench.XXXXXX) || return 1
	cleanup_cmds+=("rm -rf '$tmp'")
	port=$(free_port) || return 1
	conf=$tmp/glance-api.conf
	mkdir -p "$tmp/images"
	cat >"$conf" <<CONF
[DEFAULT]
bind_host = 127.0.0.1
bind_port = $port

[database]
connection = sqlite:///$tmp/g.sqlite

[glance_store]
filesystem_store_datadir = $tmp/images

[paste_deploy]
flavor = trusted-auth
CONF
	bin/glance-api db sync --config-file "$conf" || {
		echo "bench.sh: bin/glance-api db sync failed" >&2
		return 1
	}
	setsid bin/glance-api --config-file "$conf" >"$tmp/glance-api.log" 2>&1 </dev/null &
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
		echo "bench.sh: bin/glance-api did not answer on port $port; its log:" >&2
		tail -n 30 "$tmp/glance-api.log" >&2
		return 1
	fi
	run_bench glance-go "http://127.0.0.1:$port" "$pid" -keep "$@"
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
