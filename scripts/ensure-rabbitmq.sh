#!/usr/bin/env bash
# Makes sure a RabbitMQ answers AMQP on 127.0.0.1:5672 and lets guest/guest
# in, for the notification tests: installs Debian's rabbitmq-server when
# missing, starts it when stopped (without systemd), and does nothing to a
# RabbitMQ that already answers. Used by CI.
set -euo pipefail

export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"

# amqp_answers sends the AMQP 0-9-1 protocol header and expects a method
# frame (connection.start) back.
amqp_answers() {
	local first
	first=$(timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/5672 && printf "AMQP\x00\x00\x09\x01" >&3 && head -c 1 <&3' 2>/dev/null |
		od -An -tx1 | tr -d ' \n') || true
	[ "$first" = "01" ]
}

# guest_ok checks guest/guest with rabbitmqctl when this user may run it,
# and creates the guest user when it is missing.
guest_ok() {
	if ! command -v rabbitmqctl >/dev/null 2>&1 || [ "$(id -u)" -ne 0 ]; then
		return 0 # cannot tell; the tests report a refused login themselves
	fi
	if rabbitmqctl -q authenticate_user guest guest >/dev/null 2>&1; then
		return 0
	fi
	if ! rabbitmqctl -q list_users 2>/dev/null | grep -q '^guest\b'; then
		echo "creating the RabbitMQ user guest" >&2
		rabbitmqctl -q add_user guest guest
		rabbitmqctl -q set_permissions -p / guest '.*' '.*' '.*'
		return 0
	fi
	echo "RabbitMQ refuses guest/guest (its password was changed): the notification tests log in as guest" >&2
	return 1
}

if amqp_answers; then
	guest_ok
	exit 0
fi

if [ ! -x /usr/sbin/rabbitmq-server ]; then
	echo "installing rabbitmq-server" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get -o DPkg::Lock::Timeout=600 update -qq
	apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends rabbitmq-server >/dev/null
fi

# Loopback only, and a node name that does not depend on the host name.
conf=/etc/rabbitmq/rabbitmq.conf
env=/etc/rabbitmq/rabbitmq-env.conf
mkdir -p /etc/rabbitmq
if ! grep -qs '^listeners\.' "$conf"; then
	echo 'listeners.tcp.local = 127.0.0.1:5672' >>"$conf"
fi
if ! grep -qs '^NODENAME=' "$env"; then
	cat >>"$env" <<'CONF'
NODENAME=rabbit@localhost
ERL_EPMD_ADDRESS=127.0.0.1
export ERL_FLAGS="-kernel inet_dist_use_interface {127,0,0,1}"
CONF
fi

# Start the node unless one is already starting; the wrapper runs it as the
# rabbitmq user.
if ! pgrep -u rabbitmq beam.smp >/dev/null 2>&1; then
	mkdir -p /var/log/rabbitmq /var/lib/rabbitmq
	chown rabbitmq:rabbitmq /var/log/rabbitmq /var/lib/rabbitmq 2>/dev/null || true
	setsid /usr/sbin/rabbitmq-server >>/var/log/rabbitmq/ensure-rabbitmq.log 2>&1 </dev/null &
fi
for _ in $(seq 1 120); do
	if amqp_answers; then
		guest_ok
		exit 0
	fi
	sleep 1
done
echo "RabbitMQ does not answer on 127.0.0.1:5672 (see /var/log/rabbitmq/)" >&2
exit 1
