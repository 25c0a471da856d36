#!/bin/sh
# install-clients.sh: make sure the real OpenStack command-line clients that
# the end-to-end suite drives (openstack and glance, from Debian's
# python3-openstackclient and python3-glanceclient) are installed, and
# Glance's own glance-manage (glance-common), whose database the tests serve.
# Also qemu-img (qemu-utils), which the disk-format tests and the
# image_conversion plugin run. Installs them with apt-get when one is
# missing; does nothing otherwise.
set -eu
PATH=/usr/bin:/bin:/usr/sbin:/sbin:$PATH
export PATH

if [ -x /usr/bin/openstack ] && [ -x /usr/bin/glance ] && [ -x /usr/bin/glance-manage ] && [ -x /usr/bin/qemu-img ]; then
	exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "install-clients.sh: apt-get not found; install python3-openstackclient and python3-glanceclient by hand" >&2
	exit 1
fi
SUDO=
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO="sudo -n"
	else
		echo "install-clients.sh: not root and no sudo; cannot install the clients" >&2
		exit 1
	fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends python3-openstackclient python3-glanceclient glance-common qemu-utils
/usr/bin/openstack --version
/usr/bin/glance --version
