#!/bin/sh
# install-chromium.sh: make sure Debian's chromium is installed, for the
# end-to-end test that drives the API from a web page in another origin
# (CORS). Installs it with apt-get when missing; does nothing otherwise.
set -eu
PATH=/usr/bin:/bin:/usr/sbin:/sbin:$PATH
export PATH

if [ -x /usr/bin/chromium ]; then
	exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "install-chromium.sh: apt-get not found; install Debian's chromium by hand" >&2
	exit 1
fi
SUDO=
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO="sudo -n"
	else
		echo "install-chromium.sh: not root and no sudo; cannot install chromium" >&2
		exit 1
	fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends chromium
/usr/bin/chromium --version
