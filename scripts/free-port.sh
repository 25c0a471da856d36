# free-port.sh: sourced by the scripts that start servers on loopback.

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
	echo "$(basename "$0"): no free port found" >&2
	return 1
}
