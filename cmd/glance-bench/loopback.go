package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

// loopback is the yardstick of the download scenario: a plain net/http
// file server on 127.0.0.1, inside the benchmark's own process, serving a
// file of the same size from the page cache with the kernel's zero-copy path.
// Reading from it with the client that downloads images gives the speed of
// loopback on this machine, against which an image download is compared.
type loopback struct {
	srv  *http.Server
	url  string
	path string
}

// newLoopback writes size bytes of data to a temporary file and serves it.
func newLoopback(size int64) (*loopback, error) {
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	lb := &loopback{path: path, url: "http://" + ln.Addr().String() + "/data"}
	lb.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.ServeFile(w, r, path)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() {
		if err := lb.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "glance-bench: loopback server:", err)
		}
	}()
	return lb, nil
}

// close stops the server and removes the file.
func (lb *loopback) close() {
	lb.srv.Close()
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
