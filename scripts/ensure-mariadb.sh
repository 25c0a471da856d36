#!/usr/bin/env bash
# Makes sure a MariaDB server answers on 127.0.0.1:3306 for root without a
# password and has a database named test: installs Debian's mariadb-server
# when missing, starts it when stopped. Used by CI and by `make test-mysql`.
set -euo pipefail

ping_db() { mariadb -h127.0.0.1 -uroot -e 'SELECT 1' >/dev/null 2>&1; }

if ping_db; then
	mariadb -h127.0.0.1 -uroot -e 'CREATE DATABASE IF NOT EXISTS test'
	exit 0
fi
if ! command -v mariadbd >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ]; then
	echo "installing mariadb-server" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq mariadb-server mariadb-client >/dev/null
fi
mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql --bind-address=127.0.0.1
for _ in $(seq 1 60); do
	if mariadb -uroot -e 'SELECT 1' >/dev/null 2>&1; then break; fi
	sleep 1
done
# Debian's root uses unix_socket auth; let root in over TCP without a password, as on the dev machines.
mariadb -uroot -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket; FLUSH PRIVILEGES;" 2>/dev/null || true
mariadb -uroot -e 'CREATE DATABASE IF NOT EXISTS test'
ping_db || { echo "MariaDB does not answer on 127.0.0.1:3306" >&2; exit 1; }
