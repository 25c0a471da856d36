package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"
)

// direct sends the small requests of the latency scenarios over plain TCP
// connections, one request at a time, writing the request and reading the
// answer in the calling goroutine. net/http's client hands every request
// to a connection's reader and writer goroutines; on a two-core machine
// shared with the server those hand-offs cost more than a show takes, and
// would be measured as the server's latency. The socket is also read and
// written with blocking system calls on a duplicate of its descriptor, so a
// waiting request sleeps in the kernel rather than in Go's network poller,
// as a C client's would. The wire is the same HTTP/1.1.
type direct struct {
	addr    string
	timeout time.Duration    // limit of each blocking send and receive
	idle    chan *directConn // kept-alive connections
}

type directConn struct {
	c  net.Conn
	fd int // a blocking duplicate of c's descriptor
	br *bufio.Reader
	bw *bufio.Writer
}

// fdIO reads and writes a descriptor with blocking system calls.
type fdIO int

func (f fdIO) Read(p []byte) (int, error) {
	for {
		n, err := syscall.Read(int(f), p)
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return 0, err
		case n == 0 && len(p) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

func (f fdIO) Write(p []byte) (int, error) {
	done := 0
	for done < len(p) {
		n, err := syscall.Write(int(f), p[done:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return done, err
		}
		done += n
	}
	return done, nil
}

// newDirectConn makes a blocking duplicate of c's descriptor, with
// timeout as its send and receive time limit.
func newDirectConn(c net.Conn, timeout time.Duration) (*directConn, error) {
	sc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		return nil, err
	}
	fd := -1
	var derr error
	if err := sc.Control(func(raw uintptr) {
		if fd, derr = syscall.Dup(int(raw)); derr != nil {
			return
		}
		// O_NONBLOCK belongs to the open file, which c shares: c is not
		// used for I/O again, only closed.
		if derr = syscall.SetNonblock(fd, false); derr != nil {
			return
		}
		tv := syscall.NsecToTimeval(timeout.Nanoseconds())
		if derr = syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); derr != nil {
			return
		}
		derr = syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_SNDTIMEO, &tv)
	}); err != nil {
		return nil, err
	}
	if derr != nil {
		if fd >= 0 {
			syscall.Close(fd)
		}
		return nil, derr
	}
	return &directConn{c: c, fd: fd, br: bufio.NewReaderSize(fdIO(fd), 64<<10), bw: bufio.NewWriterSize(fdIO(fd), 64<<10)}, nil
}

func (dc *directConn) close() {
	syscall.Close(dc.fd)
	dc.c.Close()
}

func newDirect(addr string, conns int, timeout time.Duration) *direct {
	return &direct{addr: addr, timeout: timeout, idle: make(chan *directConn, conns+4)}
}

// roundTrip sends req and reads the whole answer. With keep it reuses an
// idle connection and keeps the one it used; otherwise it dials a new
// connection, asks the server to close it and closes it afterwards. The
// duration runs from taking the connection (dialling it, when new) to the
// last byte of the body.
func (d *direct) roundTrip(ctx context.Context, req *http.Request, keep bool) (*http.Response, []byte, time.Duration, error) {
	start := time.Now()
	var dc *directConn
	if keep {
		select {
		case dc = <-d.idle:
		default:
		}
	}
	if dc == nil {
		c, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "tcp", d.addr)
		if err != nil {
			return nil, nil, 0, err
		}
		if keep {
			// Connections made for kept-alive use are timed from their
			// first request on, as net/http's pool does once warm.
			start = time.Now()
		}
		if dc, err = newDirectConn(c, d.timeout); err != nil {
			c.Close()
			return nil, nil, 0, err
		}
	}
	req.Close = !keep
	resp, body, err := dc.exchange(req)
	took := time.Since(start)
	if errors.Is(err, syscall.EAGAIN) {
		// SO_RCVTIMEO or SO_SNDTIMEO ran out.
		err = fmt.Errorf("no answer within %s: %w", d.timeout, err)
	}
	if err != nil || !keep || resp.Close {
		dc.close()
	} else {
		select {
		case d.idle <- dc:
		default:
			dc.close()
		}
	}
	return resp, body, took, err
}

func (dc *directConn) exchange(req *http.Request) (*http.Response, []byte, error) {
	if err := req.Write(dc.bw); err != nil {
		return nil, nil, err
	}
	if err := dc.bw.Flush(); err != nil {
		return nil, nil, err
	}
	resp, err := http.ReadResponse(dc.br, req)
	if err != nil {
		return nil, nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, body, err
}
