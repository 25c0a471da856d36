#!/usr/bin/env bash
# Enforces the import boundaries of docs/architecture.md: each heavy library
# is imported by exactly one layer, and domain depends on the standard
# library alone.
set -euo pipefail
cd "$(dirname "$0")/.."
mod=$(go list -m)
fail=0

# allowed_importers LIBRARY PATTERN: only packages matching PATTERN may import LIBRARY directly.
allowed_importers() {
	local lib=$1 pattern=$2
	local bad
	bad=$(go list -f '{{.ImportPath}} {{join .Imports " "}}' ./... |
		awk -v lib="$lib" '{for (i = 2; i <= NF; i++) if (index($i, lib) == 1) {print $1; break}}' |
		grep -Ev "$pattern" || true)
	if [ -n "$bad" ]; then
		echo "import boundary: $lib may only be imported by $pattern, but is imported by:"
		echo "$bad" | sed 's/^/  /'
		fail=1
	fi
}

allowed_importers github.com/labstack/echo "^$mod/cmd/glance-api/internal/api($|/)"
allowed_importers gorm.io/ "^$mod/db($|/)"
allowed_importers github.com/glebarez/ "^$mod/db($|/)"
allowed_importers github.com/casbin/ "^$mod/proxies/policy$"
allowed_importers github.com/ceph/go-ceph "^$mod/stores/rbd$"
# The AMQP client: only the RabbitMQ notification sink (tests, which are not
# checked here, use it to read what the sink publishes).
allowed_importers github.com/rabbitmq/amqp091-go "^$mod/proxies/notifier/rabbit$"
allowed_importers github.com/gophercloud/ "^$mod/cmd/glance-api/internal/keystone$"
allowed_importers github.com/prometheus/ "^$mod/cmd/glance-api/internal/metrics$"

# domain: standard library only.
nonstd=$(go list -deps -f '{{if not .Standard}}{{.ImportPath}}{{end}}' ./domain | grep -v "^$mod/domain$" || true)
if [ -n "$nonstd" ]; then
	echo "import boundary: domain must depend on the standard library only, but pulls in:"
	echo "$nonstd" | sed 's/^/  /'
	fail=1
fi
exit $fail
