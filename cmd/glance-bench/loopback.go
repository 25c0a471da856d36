package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// serveFileCmd is the hidden command that serves the yardstick file.
const serveFileCmd = "serve-file"

// loopback is the yardstick of the download scenario: two plain net/http
// servers on 127.0.0.1 serving a file of the same size from the page
// cache, in a process of their own as the server under test is. One is
// http.ServeFile, which sends the file with sendfile(2); the other copies
// it through user space (io.CopyBuffer with a 1 MiB buffer, into a writer
// that hides the connection's ReadFrom, so sendfile is not used). Which is
// faster depends on the machine. Reading from them with the client that
// downloads images gives the speed of loopback on this machine, against
// which an image download is compared.
type loopback struct {
	url  string // the sendfile server; url + copySuffix the copying one
	path string
	stop func()
}

// copySuffix turns the sendfile server's URL into the copying one's.
const copySuffix = "-copy"

// copyBuffer is the copying server's buffer.
const copyBuffer = 1 << 20

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
	mux := http.NewServeMux()
	mux.HandleFunc("/data", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, path) })
	mux.HandleFunc("/data"+copySuffix, func(w http.ResponseWriter, r *http.Request) { copyFile(w, path) })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "glance-bench: loopback server:", err)
		}
	}()
	return "http://" + ln.Addr().String() + "/data", func() { srv.Close() }, nil
}

// copyFile writes the file at path to w through a 1 MiB buffer.
func copyFile(w http.ResponseWriter, path string) {
	f, err := os.Open(path)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(st.Size(), 10))
	_, _ = io.CopyBuffer(writerOnly{w}, readerOnly{f}, make([]byte, copyBuffer))
}

// writerOnly hides a writer's ReadFrom, so copies use the given buffer.
type writerOnly struct{ io.Writer }

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
