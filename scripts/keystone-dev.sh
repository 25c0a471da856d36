#!/usr/bin/env bash
# Runs a development Keystone for the Keystone end-to-end tests.
#
#   scripts/keystone-dev.sh start   install when missing, configure, start, provision
#   scripts/keystone-dev.sh stop    stop the server (its data stays)
#   scripts/keystone-dev.sh env     print the export lines the tests read
#
# Debian's Keystone (python3-keystone) serves on 127.0.0.1:5000 only, with
# fernet tokens, its configuration and keys under $KEYSTONE_DEV_DIR
# (/tmp/glance-keystone) and its tables in the MariaDB database
# glance_keystone that scripts/ensure-mariadb.sh provides. (Keystone 22 on
# SQLite fails writes with "database is locked" once it serves requests.) Tokens live $KEYSTONE_DEV_TOKEN_EXPIRATION seconds
# (30), so that the tests can see one expire. start is idempotent: it
# restarts a stopped server and creates only what is missing:
#
#   project admin:   user admin (admin role, from keystone-manage bootstrap)
#   project service: user glance (admin and service roles)
#   project e2e-a:   user e2e-a-member (member), user e2e-reader (reader only)
#   project e2e-b:   user e2e-b-member (member)
#
# Keystone's default role implications make admin imply member and member
# imply reader.
set -euo pipefail

dir=${KEYSTONE_DEV_DIR:-/tmp/glance-keystone}
expiration=${KEYSTONE_DEV_TOKEN_EXPIRATION:-30}
host=127.0.0.1
port=5000
url="http://$host:$port/v3"
password=glance-dev-secret

env_lines() {
	cat <<EOF
export GLANCE_TEST_KEYSTONE_URL=$url
export GLANCE_TEST_KEYSTONE_ADMIN_USER=admin
export GLANCE_TEST_KEYSTONE_ADMIN_PROJECT=admin
export GLANCE_TEST_KEYSTONE_SERVICE_USER=glance
export GLANCE_TEST_KEYSTONE_SERVICE_PROJECT=service
export GLANCE_TEST_KEYSTONE_MEMBER_A=e2e-a-member
export GLANCE_TEST_KEYSTONE_PROJECT_A=e2e-a
export GLANCE_TEST_KEYSTONE_MEMBER_B=e2e-b-member
export GLANCE_TEST_KEYSTONE_PROJECT_B=e2e-b
export GLANCE_TEST_KEYSTONE_READER=e2e-reader
export GLANCE_TEST_KEYSTONE_PASSWORD=$password
export GLANCE_TEST_KEYSTONE_TOKEN_EXPIRATION=$expiration
EOF
}

answers() { /usr/bin/python3 - "$url" <<'EOF' >/dev/null 2>&1
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=2).read()
EOF
}

install() {
	if [ -x /usr/bin/keystone-manage ] && [ -x /usr/bin/keystone-wsgi-public ] && [ -x /usr/bin/openstack ]; then
		return
	fi
	echo "installing Keystone (python3-keystone)" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get -o DPkg::Lock::Timeout=600 update -qq
	apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends \
		python3-keystone python3-openstackclient >/dev/null
}

configure() {
	mkdir -p "$dir/fernet-keys" "$dir/credential-keys"
	cat >"$dir/keystone.conf" <<EOF
[DEFAULT]
log_file = $dir/keystone.log

[database]
connection = mysql+pymysql://root@127.0.0.1/glance_keystone

[token]
provider = fernet
expiration = $expiration

[fernet_tokens]
key_repository = $dir/fernet-keys

[credential]
key_repository = $dir/credential-keys
EOF
	local manage=(keystone-manage --config-file "$dir/keystone.conf")
	"$(dirname "$0")/ensure-mariadb.sh"
	if ! mariadb -h127.0.0.1 -uroot -e 'USE glance_keystone' 2>/dev/null; then
		rm -f "$dir/.bootstrapped" "$dir/.provisioned"
		mariadb -h127.0.0.1 -uroot -e 'CREATE DATABASE glance_keystone CHARACTER SET utf8mb4'
	fi
	if [ ! -e "$dir/.bootstrapped" ]; then
		# keystone-manage prints eventlet's complaints at exit: keep them in a log.
		{
			"${manage[@]}" db_sync
			"${manage[@]}" fernet_setup --keystone-user root --keystone-group root
			"${manage[@]}" credential_setup --keystone-user root --keystone-group root
			"${manage[@]}" bootstrap --bootstrap-password "$password" \
				--bootstrap-admin-url "http://$host:$port/v3/" \
				--bootstrap-internal-url "http://$host:$port/v3/" \
				--bootstrap-public-url "http://$host:$port/v3/" \
				--bootstrap-region-id RegionOne
		} >>"$dir/keystone-manage.log" 2>&1 || { tail -n 30 "$dir/keystone-manage.log" >&2; exit 1; }
		touch "$dir/.bootstrapped"
	fi
}

serve() {
	if answers; then
		return
	fi
	if [ -e "$dir/server.pid" ] && kill -0 "$(cat "$dir/server.pid")" 2>/dev/null; then
		kill "$(cat "$dir/server.pid")" || true
		sleep 1
	fi
	# keystone-wsgi-public's own server (wsgiref) answers one request at a
	# time, which is what SQLite wants: Keystone behind uWSGI's threads
	# fails with "database is locked".
	OS_KEYSTONE_CONFIG_DIR=$dir setsid /usr/bin/python3 /usr/bin/keystone-wsgi-public --host "$host" --port "$port" \
		>>"$dir/server.log" 2>&1 </dev/null &
	echo $! >"$dir/server.pid"
	for _ in $(seq 1 60); do
		if answers; then
			return
		fi
		sleep 1
	done
	echo "Keystone does not answer on $url; see $dir/server.log and $dir/keystone.log" >&2
	tail -n 30 "$dir/server.log" >&2 || true
	exit 1
}

# provision creates the projects, users and role assignments the tests use.
provision() {
	if [ -e "$dir/.provisioned" ]; then
		return
	fi
	/usr/bin/python3 - "$url" "$password" <<'EOF'
import sys
from keystoneauth1.identity import v3
from keystoneauth1 import session
from keystoneclient.v3 import client

url, password = sys.argv[1], sys.argv[2]
auth = v3.Password(auth_url=url, username="admin", password=password, project_name="admin",
                   user_domain_id="default", project_domain_id="default")
ks = client.Client(session=session.Session(auth=auth))


def one(items):
    return items[0] if items else None


def role(name):
    return one(ks.roles.list(name=name)) or ks.roles.create(name)


def project(name):
    return one(ks.projects.list(name=name, domain="default")) or ks.projects.create(name, "default")


def user(name, proj):
    return one(ks.users.list(name=name, domain="default")) or ks.users.create(
        name, domain="default", password=password, default_project=proj)


for uname, pname, roles in [
    ("glance", "service", ["admin", "service"]),
    ("e2e-a-member", "e2e-a", ["member"]),
    ("e2e-b-member", "e2e-b", ["member"]),
    ("e2e-reader", "e2e-a", ["reader"]),
]:
    p = project(pname)
    u = user(uname, p)
    for r in roles:
        ks.roles.grant(role(r), user=u, project=p)
EOF
	touch "$dir/.provisioned"
}

case "${1:-}" in
start)
	install
	configure
	serve
	provision
	echo "Keystone answers on $url (data in $dir)" >&2
	;;
stop)
	if [ -e "$dir/server.pid" ] && kill -0 "$(cat "$dir/server.pid")" 2>/dev/null; then
		kill "$(cat "$dir/server.pid")"
		for _ in $(seq 1 20); do
			kill -0 "$(cat "$dir/server.pid")" 2>/dev/null || break
			sleep 0.5
		done
	fi
	rm -f "$dir/server.pid"
	;;
env)
	env_lines
	;;
*)
	echo "usage: $0 start|stop|env" >&2
	exit 2
	;;
esac
