package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestTruncatedBodies: an upload or a stage whose body ends before its
// Content-Length, or whose chunked body is cut off, is the client's fault:
// 400 while the client still reads the answer, and the image is queued
// again with nothing stored.
func TestTruncatedBodies(t *testing.T) {
	needTrusted(t)
	srv := suite.srv
	for _, path := range []string{"file", "stage"} {
		for _, form := range []string{"content-length", "chunked"} {
			t.Run(path+"/"+form, func(t *testing.T) {
				img := srv.rawImage(t, tenantA, nil)
				id := img["id"].(string)
				head := fmt.Sprintf("PUT /v2/images/%s/%s HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"+
					"X-Identity-Status: Confirmed\r\nX-Project-Id: %s\r\nX-User-Id: %s\r\nX-Roles: %s\r\n",
					id, path, tenantA.Project, tenantA.User, tenantA.Roles)
				data := strings.Repeat("x", 50_000)
				var req string
				if form == "chunked" {
					// A chunk announced at 100,000 bytes, of which half come.
					req = head + "Transfer-Encoding: chunked\r\n\r\n" + fmt.Sprintf("%x\r\n", 100_000) + data
				} else {
					req = head + "Content-Length: 100000\r\n\r\n" + data
				}
				status, body := sendHalfClosed(t, srv.URL, req)
				if status != http.StatusBadRequest {
					t.Errorf("status %d (%s), want 400", status, body)
				}
				got := srv.show(t, tenantA, id)
				if got["status"] != "queued" || got["size"] != nil {
					t.Errorf("after the cut %s: status %v, size %v; want queued without a size", path, got["status"], got["size"])
				}
			})
		}
	}
}

// sendHalfClosed sends raw to the server at base, closes its side of the
// connection for writing, and reads the answer's status and body.
func sendHalfClosed(t *testing.T, base, raw string) (int, string) {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", u.Host, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(60 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte(raw)); err != nil {
		t.Fatal(err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, b.String()
}

// TestClientSocketTimeout: with client_socket_timeout = 1, an upload whose
// client stops sending in the middle of its body gets 400 and leaves the
// image queued, and a connection idle between requests is closed.
func TestClientSocketTimeout(t *testing.T) {
	p, _ := opsServer(t, "socket-timeout", "\n[DEFAULT]\nclient_socket_timeout = 1\n")
	srv := &server{URL: p.url, Trusted: true}
	u, err := url.Parse(p.url)
	if err != nil {
		t.Fatal(err)
	}

	img := srv.rawImage(t, tenantA, nil)
	id := img["id"].(string)
	// The server closes the suite client's kept-alive connections after a
	// second: a request that is not retried (the cleanup's PATCH) must not
	// go out on one of them. Cleanups run last first.
	t.Cleanup(httpClient.CloseIdleConnections)
	c, err := net.DialTimeout("tcp", u.Host, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	head := fmt.Sprintf("PUT /v2/images/%s/file HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"+
		"X-Identity-Status: Confirmed\r\nX-Project-Id: %s\r\nX-User-Id: %s\r\nX-Roles: %s\r\nContent-Length: 100000\r\n\r\n",
		id, tenantA.Project, tenantA.User, tenantA.Roles)
	if _, err := c.Write([]byte(head + strings.Repeat("x", 1000))); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled upload: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("stalled upload: %d, want 400", resp.StatusCode)
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("the stalled upload was answered after %v", took)
	}
	httpClient.CloseIdleConnections()
	if got := srv.show(t, tenantA, id); got["status"] != "queued" {
		t.Errorf("after the stalled upload: status %v, want queued", got["status"])
	}

	// A kept-alive connection left idle is closed by the server.
	idle, err := net.DialTimeout("tcp", u.Host, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	if err := idle.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(idle)
	if _, err := idle.Write([]byte("GET /versions HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	start = time.Now()
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("idle connection: %v, want the server to close it", err)
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("the idle connection was closed after %v", took)
	}
}
