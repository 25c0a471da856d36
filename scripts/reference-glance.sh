#!/usr/bin/env bash
# reference-glance.sh: run the real OpenStack Glance 25.1 (Debian 12's glance-api)
# on loopback, as the behavioural and performance baseline for glance-go.
#
#   scripts/reference-glance.sh start  [port] [flavor]   # fresh database and store, then start
#   scripts/reference-glance.sh stop   [port]
#   scripts/reference-glance.sh status [port]            # exit 0 when it answers GET /versions
#   scripts/reference-glance.sh install                  # install Glance (and, with REF_STORE=rbd, its rbd driver's needs)
#
# port    defaults to 19393 (19292 is kept for the conformance tests).
# flavor  "trusted" (default): identity comes from X-Identity-Status: Confirmed,
#         X-Project-Id, X-User-Id and X-Roles headers (the stock context filter
#         without Keystone). "noauth": Glance's default pipeline, where every
#         request is an admin with no project and identity headers are ignored.
#         The FLAVOR environment variable is read when the argument is absent.
#
# Everything lives in /var/tmp/refglance-bench (or /var/tmp/refglance-bench-<port>
# for another port): glance-api.conf, the paste file, glance.sqlite, images/,
# staging/, glance.log and glance-api.pid. "start" wipes that directory first so
# every baseline begins from an empty database. The server runs one worker
# unless REF_WORKERS says otherwise.
#
# Environment:
#   REF_STORE=rbd  the legacy single store is rbd (stores = rbd,http) on the
#                  cluster of scripts/ceph-dev.sh: GLANCE_TEST_RBD_CONF, _USER and
#                  _POOL when set, else "eval $(scripts/ceph-dev.sh start)" here;
#                  installs python3-rbd and python3-rados. Default: file.
#   REF_DB=FILE    use this SQLite database file instead of a fresh one in the
#                  directory (shared with another server: it is not wiped; when
#                  it does not exist, glance-manage db_sync creates it).
#   REF_DB=mysql+pymysql://USER[:PASSWORD]@HOST[:PORT]/NAME
#                  use this MySQL or MariaDB database (on a loopback host). It
#                  is created when missing and not wiped; glance-manage db_sync
#                  runs on it every time (nothing to do on an up-to-date
#                  schema). Drop it first for an empty one. Needs the mariadb
#                  (or mysql) client and python3-pymysql ("install" adds it).
#   REF_WORKERS=N  glance-api's [DEFAULT] workers: API processes under the
#                  parent (default 1; Glance's own default is the number of
#                  cores, 2 on the benchmark machines).
set -euo pipefail

# Debian's tools need Debian's interpreter; another python3 may come first on PATH.
export PATH=/usr/bin:/bin:/usr/sbin:/sbin:$PATH

cmd=${1:-status}
port=${2:-19393}
flavor=${3:-${FLAVOR:-trusted}}
store=${REF_STORE:-file}
db=${REF_DB:-}
workers=${REF_WORKERS:-1}
top=$(cd "$(dirname "$0")/.." && pwd)

case $store in
file | rbd) ;;
*) echo "reference-glance: REF_STORE must be file or rbd, got '$store'" >&2; exit 2 ;;
esac
case $db in
'' | /*) ;;
mysql+pymysql://*) ;;
*) echo "reference-glance: REF_DB must be an absolute path or a mysql+pymysql:// URL, got '$db'" >&2; exit 2 ;;
esac
case $workers in
'' | *[!0-9]* | 0) echo "reference-glance: REF_WORKERS must be a positive number, got '$workers'" >&2; exit 2 ;;
esac

case $port in
'' | *[!0-9]*) echo "reference-glance: port must be a number, got '$port'" >&2; exit 2 ;;
esac
if [ "$port" = 19393 ]; then
	dir=/var/tmp/refglance-bench
else
	dir=/var/tmp/refglance-bench-$port
fi
pidfile=$dir/glance-api.pid
url=http://127.0.0.1:$port

# answers reports whether something serves Glance's version document on the port.
answers() {
	curl -fsS -m 2 -o /dev/null "$url/versions" 2>/dev/null
}

# running prints the recorded pid when that process is still a glance-api.
running() {
	[ -f "$pidfile" ] || return 1
	local pid
	pid=$(cat "$pidfile")
	[ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q glance-api || return 1
	echo "$pid"
}

installed() { dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -q '^install ok installed$'; }

install_glance() {
	local want=() p
	if [ ! -x /usr/bin/glance-api ] || [ ! -x /usr/bin/glance-manage ]; then
		want+=(glance-api python3-glanceclient python3-openstackclient)
	fi
	# Glance reaches MySQL and MariaDB through PyMySQL (mysql+pymysql://).
	installed python3-pymysql || want+=(python3-pymysql)
	if [ "$store" = rbd ]; then
		for p in python3-rbd python3-rados; do
			installed "$p" || want+=("$p")
		done
	fi
	[ ${#want[@]} -eq 0 ] && return
	echo "reference-glance: installing ${want[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	local apt=(apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends)
	if ! "${apt[@]}" "${want[@]}" >/dev/null; then
		apt-get -o DPkg::Lock::Timeout=600 update -qq
		"${apt[@]}" "${want[@]}" >/dev/null
	fi
}

# ceph_env sets the GLANCE_TEST_RBD_* variables of the ceph-dev.sh cluster,
# starting it when they are not set.
ceph_env() {
	if [ -z "${GLANCE_TEST_RBD_CONF:-}" ]; then
		eval "$("$top/scripts/ceph-dev.sh" start)"
	fi
	ceph_conf=$GLANCE_TEST_RBD_CONF
	ceph_user=${GLANCE_TEST_RBD_USER:-glance}
	ceph_pool=${GLANCE_TEST_RBD_POOL:-images}
}

# store_section prints the [glance_store] section.
store_section() {
	if [ "$store" = rbd ]; then
		cat <<CONF
[glance_store]
stores = rbd,http
default_store = rbd
rbd_store_ceph_conf = $ceph_conf
rbd_store_user = $ceph_user
rbd_store_pool = $ceph_pool
rbd_store_chunk_size = 8
CONF
		return
	fi
	cat <<CONF
[glance_store]
stores = file,http
default_store = file
filesystem_store_datadir = $dir/images/
CONF
}

# connection prints [database] connection.
connection() {
	case $db in
	mysql+pymysql://*) echo "$db" ;;
	*) echo "sqlite:///${db:-$dir/glance.sqlite}" ;;
	esac
}

# mysql_create creates REF_DB's MySQL database when it is missing.
mysql_create() {
	local parts user pass host port name client
	# user, password, host, port and database name, one a line.
	parts=$(/usr/bin/python3 - "$db" <<'PY'
import sys
from urllib.parse import urlsplit, unquote
u = urlsplit(sys.argv[1])
print(unquote(u.username or "root"))
print(unquote(u.password or ""))
print(u.hostname or "127.0.0.1")
print(u.port or 3306)
print(u.path.lstrip("/"))
PY
	) || { echo "reference-glance: cannot parse REF_DB '$db'" >&2; exit 2; }
	{ read -r user; read -r pass; read -r host; read -r port; read -r name; } <<<"$parts"
	case $host in
	127.* | localhost | ::1) ;;
	*) echo "reference-glance: REF_DB's host must be loopback, got '$host'" >&2; exit 2 ;;
	esac
	case $name in
	'' | *[!A-Za-z0-9_]*) echo "reference-glance: REF_DB's database name must be letters, digits and _, got '$name'" >&2; exit 2 ;;
	esac
	client=$(command -v mariadb || command -v mysql) || {
		echo "reference-glance: REF_DB is MySQL, but neither the mariadb nor the mysql client is installed" >&2
		exit 1
	}
	MYSQL_PWD=$pass "$client" -h "$host" -P "$port" -u "$user" -e "CREATE DATABASE IF NOT EXISTS \`$name\`" || {
		echo "reference-glance: cannot create the database $name on $host:$port" >&2
		exit 1
	}
}

write_config() {
	mkdir -p "$dir/images" "$dir/staging" "$dir/lock"
	# The stock paste file, plus one pipeline that trusts identity headers:
	# the "context" filter in place of "unauthenticated-context", no authtoken.
	cp /etc/glance/glance-api-paste.ini "$dir/glance-api-paste.ini"
	cat >>"$dir/glance-api-paste.ini" <<'PASTE'

# Added by glance-go's scripts/reference-glance.sh: identity from X-* headers, no Keystone.
[pipeline:glance-api-trusted-auth]
pipeline = cors healthcheck http_proxy_to_wsgi versionnegotiation osprofiler context rootapp
PASTE
	local flavor_line=""
	case $flavor in
	trusted | trusted-auth) flavor_line="flavor = trusted-auth" ;;
	noauth) flavor_line="" ;;
	*) echo "reference-glance: flavor must be trusted or noauth, got '$flavor'" >&2; exit 2 ;;
	esac
	local direct=False
	[ "$store" = rbd ] && direct=True
	cat >"$dir/glance-api.conf" <<CONF
[DEFAULT]
bind_host = 127.0.0.1
bind_port = $port
workers = $workers
node_staging_uri = file://$dir/staging
enabled_import_methods = [glance-direct,web-download,copy-image]
show_image_direct_url = $direct

[database]
connection = $(connection)

$(store_section)

[oslo_concurrency]
lock_path = $dir/lock

[paste_deploy]
config_file = $dir/glance-api-paste.ini
$flavor_line
CONF
}

start() {
	if pid=$(running); then
		echo "reference-glance: already running on $url (pid $pid); stop it first" >&2
		exit 1
	fi
	if answers; then
		echo "reference-glance: something else already answers on $url" >&2
		exit 1
	fi
	install_glance
	[ "$store" = rbd ] && ceph_env
	rm -rf "$dir"
	write_config
	case $db in
	mysql+pymysql://*) mysql_create ;;
	esac
	if [ -n "$db" ] && [ -s "$db" ]; then
		: # a database another server made: its schema is Glance's
	elif ! glance-manage --config-file "$dir/glance-api.conf" db_sync >"$dir/db-sync.log" 2>&1; then
		echo "reference-glance: db_sync failed; see $dir/db-sync.log" >&2
		tail -n 20 "$dir/db-sync.log" >&2
		exit 1
	fi
	# setsid gives the server its own process group, so "stop" can end the
	# parent and its worker together.
	setsid glance-api --config-file "$dir/glance-api.conf" >"$dir/glance.log" 2>&1 </dev/null &
	echo $! >"$pidfile"
	for _ in $(seq 1 120); do
		if answers; then
			echo "reference-glance: Glance $(dpkg-query -W -f='${Version}' glance-api 2>/dev/null) on $url" \
				"(flavor $flavor, store $store, database $(connection | sed 's/:[^:@/]*@/:***@/'), $workers worker(s), pid $(cat "$pidfile"), data $dir)"
			return
		fi
		if ! running >/dev/null; then
			echo "reference-glance: glance-api exited; last lines of $dir/glance.log:" >&2
			tail -n 30 "$dir/glance.log" >&2
			exit 1
		fi
		sleep 0.5
	done
	echo "reference-glance: no answer on $url after 60 s; see $dir/glance.log" >&2
	stop
	exit 1
}

stop() {
	local pid
	if ! pid=$(running); then
		echo "reference-glance: not running on port $port"
		rm -f "$pidfile"
		return
	fi
	kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 1 40); do
		[ -d "/proc/$pid" ] || break
		sleep 0.25
	done
	if [ -d "/proc/$pid" ]; then
		kill -KILL -- "-$pid" 2>/dev/null || true
	fi
	rm -f "$pidfile"
	echo "reference-glance: stopped (pid $pid)"
}

status() {
	local pid
	if pid=$(running) && answers; then
		echo "reference-glance: running on $url (pid $pid, data $dir)"
		return 0
	fi
	if answers; then
		echo "reference-glance: $url answers, but not a server this script started"
		return 0
	fi
	echo "reference-glance: not running on $url"
	return 1
}

case $cmd in
install) install_glance ;;
start) start ;;
stop) stop ;;
status) status ;;
pid)
	# The server's pid (the parent of its worker), for glance-bench -pid.
	running || exit 1
	;;
*)
	echo "usage: $0 start|stop|status|pid|install [port] [trusted|noauth]" >&2
	exit 2
	;;
esac
