package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"
)

// serveFileCmd is the hidden command that serves the yardstick file.
const serveFileCmd = "serve-file"

// loopback is the yardstick of the download scenario: a plain net/http
// file server on 127.0.0.1 serving a file of the same size from the page
// cache with the kernel's zero-copy path, in a process of its own as the
// server under test is. Reading from it with the client that downloads
// images gives the speed of loopback on this machine, against which an
// image download is compared.
type loopback struct {
	url  string
	path string
	stop func()
}

// newLoopback writes size bytes of data to a temporary file and serves it,
// from a "glance-bench serve-file" child process when exe is set, in this
// process otherwise.
func newLoopback(size int64, exe string) (*loopback, error) {
	f, err := os.CreateTemp("", "glance-bench-loopback-*")
	if err != nil {
		return nil, err
	}
	path := f.Name()
	fail := func(err error) (*loopback, error) {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	if _, err := io.Copy(f, NewStream(7, size)); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	if exe == "" {
		url, stop, err := startFileServer(path)
		if err != nil {
			return fail(err)
		}
		return &loopback{url: url, path: path, stop: stop}, nil
	}
	cmd := exec.Command(exe, serveFileCmd, path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return fail(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fail(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return fail(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return fail(fmt.Errorf("yardstick server: %w", err))
	}
	stop := func() {
		stdin.Close() // the child exits when its standard input ends
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	return &loopback{url: strings.TrimSpace(line), path: path, stop: stop}, nil
}

// startFileServer serves path on 127.0.0.1 and returns its URL.
func startFileServer(path string) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.ServeFile(w, r, path)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "glance-bench: loopback server:", err)
		}
	}()
	return "http://" + ln.Addr().String() + "/data", func() { srv.Close() }, nil
}

// serveFile is the "serve-file PATH" command: it serves the file, prints
// its URL on stdout and exits when its standard input is closed.
func serveFile(path string, stdout, stderr io.Writer) int {
	url, stop, err := startFileServer(path)
	if err != nil {
		fmt.Fprintln(stderr, "glance-bench serve-file:", err)
		return 2
	}
	defer stop()
	fmt.Fprintln(stdout, url)
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// close stops the server and removes the file.
func (lb *loopback) close() {
	lb.stop()
	os.Remove(lb.path)
}

// rate downloads the file once to warm the page cache, then once more
// timed, and returns the timed speed in MB/s.
func (lb *loopback) rate(ctx context.Context, c *Client, size int64) (float64, error) {
	var took time.Duration
	for range 2 {
		n, d, err := c.fetch(ctx, lb.url)
		if err != nil {
			return 0, err
		}
		if n != size {
			return 0, fmt.Errorf("loopback download returned %d bytes, want %d", n, size)
		}
		took = d
	}
	return MBps(size, took), nil
}
