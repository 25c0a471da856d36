#!/usr/bin/env bash
# ceph-dev.sh: a throwaway one-node Ceph cluster for the rbd store's tests.
#
#   scripts/ceph-dev.sh start    install Debian's ceph packages when missing, create or
#                                restart the cluster, print the environment for the tests
#   scripts/ceph-dev.sh stop     stop the cluster's daemons (its data is kept)
#   scripts/ceph-dev.sh status   show the daemons and whether the pool takes writes
#   scripts/ceph-dev.sh env      print the environment only
#
# One mon and one memstore OSD, both on 127.0.0.1, cephx everywhere, a
# client.glance user that may only use the rbd pool "images". Every file lives
# in CEPH_DEV_DIR (default /tmp/glance-ceph); nothing is written to /etc/ceph
# or /var/lib/ceph. Use it as:
#
#   eval "$(scripts/ceph-dev.sh start)"
#   go test -tags ceph,pacific ./stores/rbd/
#
# Settings (environment): CEPH_DEV_DIR, CEPH_DEV_MON_PORT (3300; the v1 port is
# the next one), CEPH_DEV_OSD_PORTS (6800-6899), CEPH_DEV_STORE_MB (3072),
# CEPH_DEV_OP_TIMEOUT (seconds before a client gives up on a down osd or mon; 20),
# CEPH_DEV_NO_INSTALL=1 (fail instead of calling apt-get).
set -euo pipefail

cmd=${1:-}
dir=${CEPH_DEV_DIR:-/tmp/glance-ceph}
dir=${dir%/}
mon_port=${CEPH_DEV_MON_PORT:-3300}
osd_ports=${CEPH_DEV_OSD_PORTS:-6800-6899}
store_mb=${CEPH_DEV_STORE_MB:-3072}
op_timeout=${CEPH_DEV_OP_TIMEOUT:-20}
pool=images
user=glance
conf=$dir/ceph.conf

# librados lets these override ceph.conf for every client and daemon alike:
# a value meant for the application must never reach the admin commands.
unset CEPH_KEYRING CEPH_ARGS CEPH_CONF

say() { echo "ceph-dev: $*" >&2; }
die() {
	say "error: $*"
	exit 1
}

case $dir in
/*) ;;
*) die "CEPH_DEV_DIR must be an absolute path" ;;
esac
[ ${#dir} -le 60 ] || die "CEPH_DEV_DIR is too long for the admin sockets (60 characters at most)"

install_packages() {
	local p missing=()
	for p in ceph-mon ceph-osd ceph-common librados-dev librbd-dev gcc libc6-dev; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	[ "${CEPH_DEV_NO_INSTALL:-0}" != 1 ] || die "missing packages: ${missing[*]}"
	[ "$(id -u)" -eq 0 ] || die "missing packages (${missing[*]}); run as root or install them"
	say "installing ${missing[*]}"
	local apt=(apt-get -q -o DPkg::Lock::Timeout=600 install -y --no-install-recommends)
	if ! DEBIAN_FRONTEND=noninteractive "${apt[@]}" "${missing[@]}" >&2; then
		apt-get -q -o DPkg::Lock::Timeout=600 update >&2
		DEBIAN_FRONTEND=noninteractive "${apt[@]}" "${missing[@]}" >&2
	fi
}

# pid_of NAME prints the pid of our daemon NAME (mon.a, osd.0) if it runs:
# the pid file must name a ceph daemon started with our ceph.conf.
pid_of() {
	local pid args
	pid=$(cat "$dir/run/$1.pid" 2>/dev/null) || return 1
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	args=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
	[[ $args == "ceph-${1%.*} -c $conf "* ]] || return 1
	echo "$pid"
}

admin() { timeout 30 ceph -c "$conf" -n client.admin --connect-timeout 20 "$@"; }

writable() {
	timeout 20 rados -c "$conf" --id "$user" -p "$pool" put ceph-dev-probe "$conf" 2>/dev/null &&
		timeout 20 rados -c "$conf" --id "$user" -p "$pool" rm ceph-dev-probe 2>/dev/null
}

running() { pid_of mon.a >/dev/null && pid_of osd.0 >/dev/null; }

launch() { # NAME: start the daemon unless it runs; it forks and writes its pid file
	local name=$1
	pid_of "$name" >/dev/null && return 0
	rm -f "$dir/run/$name.pid"
	"ceph-${name%.*}" -c "$conf" -i "${name#*.}" >>"$dir/log/$name.out" 2>&1 9>&- ||
		die "ceph-${name%.*} did not start; see $dir/log/$name.log"
}

stop_all() {
	local name pid
	for name in osd.0 mon.a; do # the osd first: it saves its memstore on a clean stop
		pid=$(pid_of "$name") || continue
		say "stopping $name ($pid)"
		kill -TERM "$pid"
		for _ in $(seq 150); do
			[ -e "/proc/$pid" ] || break
			sleep 0.2
		done
		if [ -e "/proc/$pid" ]; then
			say "$name still runs after 30s; killing it"
			kill -KILL "$pid" || true
		elif [ "$name" = osd.0 ]; then
			touch "$dir/clean-stop"
		fi
		rm -f "$dir/run/$name.pid"
	done
}

wait_writable() { # SECONDS
	local end=$(($(date +%s) + $1))
	until writable; do
		running || return 1
		[ "$(date +%s)" -lt "$end" ] || return 1
		sleep 0.5
	done
}

key() { ceph-authtool --gen-print-key; }

entry() { # ENTITY KEY [SUBSYSTEM CAPS]...
	printf '[%s]\n\tkey = %s\n' "$1" "$2"
	shift 2
	while [ $# -ge 2 ]; do
		printf '\tcaps %s = "%s"\n' "$1" "$2"
		shift 2
	done
}

create() {
	if [ -d "$dir" ] && [ ! -e "$dir/.ceph-dev" ] && [ -n "$(ls -A "$dir")" ]; then
		die "$dir is not empty and was not made by this script"
	fi
	local p
	for p in "$mon_port" $((mon_port + 1)); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			die "127.0.0.1:$p is taken; set CEPH_DEV_MON_PORT"
		fi
	done
	rm -rf "$dir"
	mkdir -p "$dir/run" "$dir/log" "$dir/osd.0"
	touch "$dir/.ceph-dev"
	local fsid uuid
	fsid=$(cat /proc/sys/kernel/random/uuid)
	uuid=$(cat /proc/sys/kernel/random/uuid)
	cat >"$conf" <<EOF
# test cluster made by glance-go's scripts/ceph-dev.sh; holds no real data
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$mon_port,v1:127.0.0.1:$((mon_port + 1))]
public addr = 127.0.0.1
public network = 127.0.0.0/8
ms bind ipv6 = false
ms bind port min = ${osd_ports%-*}
ms bind port max = ${osd_ports#*-}
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
auth allow insecure global id reclaim = false
keyring = $dir/ceph.\$name.keyring
run dir = $dir/run
crash dir = $dir/crash
log file = $dir/log/\$name.log
osd pool default size = 1
osd pool default min size = 1
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
mon data avail warn = 2
mon data avail crit = 1
# no mgr runs: keep the mon from reporting it missing
mon mgr mkfs grace = 315360000

[client]
# fail an operation after this long instead of waiting for ever for an
# osd or mon that is down, so that the API answers with an error
rados osd op timeout = $op_timeout
rados mon op timeout = $op_timeout

[mon]
mon data = $dir/\$name
keyring = $dir/\$name/keyring
pid file = $dir/run/\$name.pid
paxos propose interval = 0.1

[osd]
osd data = $dir/\$name
keyring = $dir/\$name/keyring
pid file = $dir/run/\$name.pid
osd objectstore = memstore
memstore device bytes = $((store_mb << 20))
osd memory target = 939524096
# memstore saves its contents only when the osd shuts down the slow way
osd fast shutdown = false
EOF
	local kmon kadmin kosd kuser
	kmon=$(key) kadmin=$(key) kosd=$(key) kuser=$(key)
	local admin_caps=(mon 'allow *' osd 'allow *' mgr 'allow *')
	local osd_caps=(mon 'allow profile osd' osd 'allow *' mgr 'allow profile osd')
	local user_caps=(mon 'profile rbd' osd "profile rbd pool=$pool" mgr "profile rbd pool=$pool")
	(
		umask 077
		{
			entry mon. "$kmon" mon 'allow *'
			entry client.admin "$kadmin" "${admin_caps[@]}"
			entry osd.0 "$kosd" "${osd_caps[@]}"
			entry "client.$user" "$kuser" "${user_caps[@]}"
		} >"$dir/initial.keyring"
		entry client.admin "$kadmin" >"$dir/ceph.client.admin.keyring"
		entry osd.0 "$kosd" >"$dir/osd.0/keyring"
	)
	entry "client.$user" "$kuser" >"$dir/ceph.client.$user.keyring"
	chmod 644 "$dir/ceph.client.$user.keyring"

	monmaptool --create --fsid "$fsid" --set-min-mon-release 16 --enable-all-features \
		--addv a "[v2:127.0.0.1:$mon_port,v1:127.0.0.1:$((mon_port + 1))]" "$dir/monmap" >/dev/null
	# mkfs into a directory that does not exist yet: on a non-empty one it does nothing
	ceph-mon -c "$conf" -i a --mkfs --monmap "$dir/monmap" --keyring "$dir/initial.keyring" \
		>>"$dir/log/mkfs.out" 2>&1 || die "ceph-mon --mkfs failed; see $dir/log"
	rm -f "$dir/monmap" "$dir/initial.keyring"
	launch mon.a
	ceph-osd -c "$conf" -i 0 --mkfs --osd-uuid "$uuid" --no-mon-config >>"$dir/log/mkfs.out" 2>&1 ||
		die "ceph-osd --mkfs failed; see $dir/log"
	admin osd new "$uuid" 0 >/dev/null || die "ceph osd new failed"
	launch osd.0
	admin osd pool create "$pool" 8 8 replicated >/dev/null 2>&1 || die "creating pool $pool failed"
	timeout 60 rbd -c "$conf" -n client.admin pool init "$pool" || die "rbd pool init failed"
	echo "$fsid" >"$dir/fsid" # last: marks a complete cluster
	say "created a cluster in $dir (fsid $fsid)"
}

print_env() {
	cat <<EOF
export CEPH_CONF=$conf
export GLANCE_TEST_RBD_CONF=$conf
export GLANCE_TEST_RBD_USER=$user
export GLANCE_TEST_RBD_POOL=$pool
EOF
}

case $cmd in
start)
	install_packages
	mkdir -p "$(dirname "$dir")"
	exec 9<"$(dirname "$dir")"
	flock -w 300 9 || die "another start is still running"
	if [ ! -s "$dir/fsid" ]; then
		stop_all
		create
	elif running && writable; then
		say "already running"
	elif ! pid_of osd.0 >/dev/null && [ ! -e "$dir/clean-stop" ]; then
		say "the osd did not stop cleanly and its memstore is lost; creating a new cluster"
		stop_all
		create
	else
		rm -f "$dir/clean-stop"
		launch mon.a
		launch osd.0
	fi
	if ! wait_writable 60; then
		say "the cluster does not take writes; creating a new one"
		stop_all
		create
		wait_writable 120 || die "pool $pool is not writable; logs in $dir/log"
	fi
	say "pool $pool is writable by client.$user; stop with: $0 stop"
	print_env
	;;
stop)
	[ -e "$dir/.ceph-dev" ] || exit 0
	stop_all
	;;
status)
	[ -s "$dir/fsid" ] || {
		echo "no cluster in $dir"
		exit 1
	}
	for n in mon.a osd.0; do
		if p=$(pid_of "$n"); then echo "$n: running (pid $p)"; else
			echo "$n: stopped"
			exit 1
		fi
	done
	if writable; then echo "pool $pool: writable by client.$user"; else
		echo "pool $pool: not writable"
		exit 1
	fi
	admin health
	;;
env)
	[ -s "$dir/fsid" ] || die "no cluster in $dir; run $0 start"
	print_env
	;;
*)
	sed -n '2,20p' "$0" >&2
	exit 2
	;;
esac
