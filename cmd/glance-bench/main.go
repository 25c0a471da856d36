// Command glance-bench drives a running Glance v2 compatible server on
// loopback and reports how fast it answers: creating images, showing and
// patching them, listing 25 and 1000 of a seeded set, and moving image data
// (one large upload and download, and parallel uploads). Every scenario runs
// for a bounded number of operations and a bounded time, several rounds are
// run and their medians reported, and the images made are deleted at the end.
//
// Usage:
//
//	glance-bench [-endpoint http://127.0.0.1:9292] [-rounds 3] [-seed 2000]
//	             [-seed-clients 2] [-create-clients 16]
//	             [-upload-size 1GiB] [-concurrent 8 -concurrent-size 128MiB]
//	             [-skip list25,upload] [-duration 10s] [-max-ops 300]
//	             [-pid N] [-json] [-json-out FILE] [-keep] [-cleanup]
//	glance-bench soak [-duration 10m] [-clients 16] [-populate 2000] ...
//
// The soak subcommand runs many clients at once, each a mix of every kind
// of write and read (cmd/internal/loadmix), for a fixed time, and reports
// throughput, latency percentiles, errors and the server's goroutines and
// memory minute by minute, with a verdict on their growth.
//
// Identity headers (X-Identity-Status: Confirmed, X-Project-Id, X-User-Id,
// X-Roles) are sent with every request; servers without authentication
// ignore them. Only loopback endpoints are accepted.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) == 3 && os.Args[1] == serveFileCmd {
		os.Exit(serveFile(os.Args[2], os.Stdout, os.Stderr))
	}
	if len(os.Args) >= 2 && os.Args[1] == soakCmd {
		os.Exit(soak(os.Args[2:], os.Stdout, os.Stderr))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run parses args, runs the benchmark and returns the exit status: 0 when
// every scenario succeeded, 1 when some failed, 2 when the run could not start.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("glance-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg            Config
		upload         = ByteSize(1 << 30)
		concurrentSize = ByteSize(128 << 20)
		skip, pids     string
		asJSON, quiet  bool
		cleanupOnly    bool
		jsonOut        string
	)
	fs.StringVar(&cfg.Endpoint, "endpoint", "http://127.0.0.1:9292", "Glance v2 endpoint (loopback only)")
	fs.StringVar(&cfg.Identity.Project, "project", "bench", "X-Project-Id to send")
	fs.StringVar(&cfg.Identity.User, "user", "bench", "X-User-Id to send")
	fs.StringVar(&cfg.Identity.Roles, "roles", "admin", "X-Roles to send (comma list)")
	fs.BoolVar(&cfg.Identity.None, "no-identity", false, "send no identity headers")
	fs.StringVar(&cfg.Label, "label", "", "name of the server in the report")
	fs.IntVar(&cfg.Rounds, "rounds", 3, "rounds of every scenario (medians are reported)")
	fs.IntVar(&cfg.Seed, "seed", 2000, "images (10 properties, 2 tags each) present for show, PATCH and list")
	fs.IntVar(&cfg.SeedClients, "seed-clients", 2, "clients creating the seeded images at once (the population's rate is reported)")
	fs.IntVar(&cfg.CreateClients, "create-clients", 16, "clients creating images at once in the create-load scenario")
	fs.Var(&upload, "upload-size", "size of the single upload and download")
	fs.IntVar(&cfg.Concurrent, "concurrent", 8, "parallel uploads")
	fs.Var(&concurrentSize, "concurrent-size", "size of each parallel upload")
	fs.StringVar(&skip, "skip", "", "scenarios to skip, comma separated: "+strings.Join(Scenarios, ","))
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "time bound of each latency scenario in each round")
	fs.IntVar(&cfg.MaxOps, "max-ops", 300, "operation bound of each latency scenario in each round")
	fs.DurationVar(&cfg.Timeout, "timeout", 30*time.Minute, "bound of the whole run (cleanup excluded)")
	fs.BoolVar(&cfg.ListReuse, "list-keepalive", false, "list over kept-alive connections instead of a new connection per request")
	fs.Int64Var(&cfg.CalibrateBytes, "calibrate", 256<<20, "bytes hashed with md5 and sha512 to rate this machine before the run (0: skip)")
	fs.BoolVar(&cfg.Chunked, "chunked", false, "upload with chunked transfer encoding instead of a Content-Length")
	fs.StringVar(&pids, "pid", "", "server pid(s), comma separated, whose memory (with their children) is sampled from /proc")
	fs.BoolVar(&cfg.Keep, "keep", false, "leave the seeded images in place for a later run to reuse (images made for one scenario are always deleted)")
	fs.BoolVar(&cleanupOnly, "cleanup", false, "only delete the images tagged "+TagBench+" and exit")
	fs.BoolVar(&asJSON, "json", false, "print the report as JSON instead of a table")
	fs.StringVar(&jsonOut, "json-out", "", "also write the JSON report to this file")
	fs.BoolVar(&quiet, "q", false, "no progress lines on stderr")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "glance-bench: unexpected arguments %q\n", fs.Args())
		return 2
	}
	cfg.UploadSize, cfg.ConcurrentSize = int64(upload), int64(concurrentSize)
	cfg.Skip = map[string]bool{}
	for _, s := range strings.Split(skip, ",") {
		if s = strings.TrimSpace(s); s != "" {
			cfg.Skip[s] = true
		}
	}
	for _, p := range strings.Split(pids, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 {
			fmt.Fprintf(stderr, "glance-bench: -pid: %q is not a process id\n", p)
			return 2
		}
		cfg.Pids = append(cfg.Pids, n)
	}
	if !quiet {
		cfg.Log = stderr
	}

	// The first interrupt stops the scenarios and lets the cleanup run; a
	// second one ends the program at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop()
	}()

	if cleanupOnly {
		n, err := Cleanup(ctx, cfg)
		if err != nil {
			fmt.Fprintf(stderr, "glance-bench: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "glance-bench: deleted %d images tagged %s\n", n, TagBench)
		return 0
	}

	if exe, err := os.Executable(); err == nil {
		cfg.Yardstick = exe
	}
	rep, err := Run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "glance-bench: %v\n", err)
		return 2
	}
	if asJSON {
		err = WriteJSON(stdout, rep)
	} else {
		err = WriteTable(stdout, rep)
	}
	if err == nil && jsonOut != "" {
		err = writeJSONFile(jsonOut, rep)
	}
	if err != nil {
		fmt.Fprintf(stderr, "glance-bench: writing the report: %v\n", err)
		return 1
	}
	if len(rep.Errors) > 0 {
		return 1
	}
	return 0
}

func writeJSONFile(path string, rep *Report) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := WriteJSON(f, rep); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
