package main

import (
	"os"
	"testing"
)

// TestMain lets the test binary stand in for glance-bench as the child
// process that serves the loopback yardstick, as run() starts it.
func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == serveFileCmd {
		os.Exit(serveFile(os.Args[2], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}
