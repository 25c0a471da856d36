package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Identity is what the server is told about the caller, through the headers
// Keystone's middleware would set. Servers without authentication ignore them.
type Identity struct {
	Project, User, Roles string
	None                 bool // send no identity headers at all
}

// Client talks to one Glance v2 endpoint on loopback.
type Client struct {
	base  string // scheme://host:port, no trailing slash
	id    Identity
	keep  *http.Client // keep-alive connections
	fresh *http.Client // a new connection for every request
	// direct carries the small requests over plain connections when the
	// endpoint is http (see direct.go); nil for https.
	direct *direct
	opTO   time.Duration
}

// NewClient returns a Client for endpoint, which must be an http URL on a
// loopback address (127.0.0.0/8, ::1 or localhost).
func NewClient(endpoint string, id Identity, conns int) (*Client, error) {
	u, err := url.Parse(strings.TrimSpace(endpoint))
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("invalid endpoint %q: want e.g. http://127.0.0.1:9292", endpoint)
	}
	if !isLoopback(u.Hostname()) {
		return nil, fmt.Errorf("endpoint %q is not a loopback address: glance-bench only loads servers on 127.0.0.0/8, ::1 or localhost", endpoint)
	}
	path := strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), "/v2")
	base := u.Scheme + "://" + u.Host + strings.TrimSuffix(path, "/")
	mk := func(keepAlive bool) *http.Client {
		tr := &http.Transport{
			Proxy:               nil, // loopback only, never through a proxy
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConns:        conns + 4,
			MaxIdleConnsPerHost: conns + 4,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
			DisableKeepAlives:   !keepAlive,
			WriteBufferSize:     256 << 10,
			ReadBufferSize:      256 << 10,
		}
		return &http.Client{
			Transport: tr,
			// Glance answers GET /v2 with a redirect; nothing here follows one.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	c := &Client{base: base, id: id, keep: mk(true), fresh: mk(false), opTO: time.Minute}
	if u.Scheme == "http" {
		c.direct = newDirect(u.Host, conns, c.opTO)
	}
	return c, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Close drops idle connections.
func (c *Client) Close() {
	c.keep.CloseIdleConnections()
	c.fresh.CloseIdleConnections()
}

// StatusError is an unexpected HTTP status from the server.
type StatusError struct {
	Method, Path string
	Code         int
	Body         string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d: %s", e.Method, e.Path, e.Code, e.Body)
}

func (c *Client) newRequest(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	if !c.id.None {
		req.Header.Set("X-Identity-Status", "Confirmed")
		req.Header.Set("X-Project-Id", c.id.Project)
		req.Header.Set("X-User-Id", c.id.User)
		req.Header.Set("X-Roles", c.id.Roles)
	}
	req.Header.Set("Accept", "application/json")
	return req, nil
}

// do sends a small request and reads the whole answer; the duration runs
// from sending the request to the last byte of the body.
func (c *Client) do(ctx context.Context, hc *http.Client, method, path, ctype string, body []byte, want int) ([]byte, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opTO)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := c.newRequest(ctx, method, path, rd)
	if err != nil {
		return nil, 0, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	var (
		resp *http.Response
		b    []byte
		took time.Duration
	)
	if c.direct != nil {
		resp, b, took, err = c.direct.roundTrip(ctx, req, hc != c.fresh)
		if err != nil && resp == nil {
			return nil, took, fmt.Errorf("%s %s: %w", method, path, err)
		}
	} else {
		start := time.Now()
		resp, err = hc.Do(req)
		if err != nil {
			return nil, 0, err
		}
		b, err = io.ReadAll(resp.Body)
		took = time.Since(start)
		resp.Body.Close()
	}
	if err != nil {
		return nil, took, fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode != want {
		return b, took, &StatusError{Method: method, Path: path, Code: resp.StatusCode, Body: snippet(b)}
	}
	return b, took, nil
}

func snippet(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// Ping checks that the endpoint serves Glance's version document and that
// the identity it is given may list images.
func (c *Client) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, _, err := c.do(ctx, c.keep, http.MethodGet, "/versions", "", nil, http.StatusOK); err != nil {
		var se *StatusError
		if errors.As(err, &se) {
			return fmt.Errorf("%s does not look like a Glance v2 server: %w", c.base, err)
		}
		return fmt.Errorf("cannot reach %s: %w (is the server running? scripts/reference-glance.sh start, or scripts/bench.sh glance-go)", c.base, err)
	}
	if _, _, err := c.do(ctx, c.keep, http.MethodGet, "/v2/images?limit=1", "", nil, http.StatusOK); err != nil {
		var se *StatusError
		if errors.As(err, &se) && se.Code == http.StatusUnauthorized {
			return fmt.Errorf("%s refused the identity headers (HTTP 401): it needs Keystone tokens; run it with a header-trusting or noauth pipeline", c.base)
		}
		return fmt.Errorf("cannot list images on %s: %w", c.base, err)
	}
	return nil
}

// ImageDoc is the part of an image record the benchmark reads.
type ImageDoc struct {
	ID       string   `json:"id"`
	Name     *string  `json:"name"`
	Status   string   `json:"status"`
	Size     *int64   `json:"size"`
	Checksum *string  `json:"checksum"`
	Tags     []string `json:"tags"`
}

// Create posts a new image record and returns its id.
func (c *Client) Create(ctx context.Context, body map[string]any) (string, time.Duration, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return "", 0, err
	}
	out, took, err := c.do(ctx, c.keep, http.MethodPost, "/v2/images", "application/json", b, http.StatusCreated)
	if err != nil {
		return "", took, err
	}
	var img ImageDoc
	if err := json.Unmarshal(out, &img); err != nil || img.ID == "" {
		return "", took, fmt.Errorf("POST /v2/images: answer has no image id: %s", snippet(out))
	}
	return img.ID, took, nil
}

// Show fetches one image record.
func (c *Client) Show(ctx context.Context, id string) (ImageDoc, time.Duration, error) {
	out, took, err := c.do(ctx, c.keep, http.MethodGet, "/v2/images/"+id, "", nil, http.StatusOK)
	if err != nil {
		return ImageDoc{}, took, err
	}
	var img ImageDoc
	if err := json.Unmarshal(out, &img); err != nil {
		return ImageDoc{}, took, fmt.Errorf("GET /v2/images/%s: %w", id, err)
	}
	if img.ID != id {
		return img, took, fmt.Errorf("GET /v2/images/%s: answer is for image %q", id, img.ID)
	}
	return img, took, nil
}

// Patch sends a JSON-patch (v2.1 media type) to an image.
func (c *Client) Patch(ctx context.Context, id string, ops []map[string]any) (time.Duration, error) {
	b, err := json.Marshal(ops)
	if err != nil {
		return 0, err
	}
	_, took, err := c.do(ctx, c.keep, http.MethodPatch, "/v2/images/"+id, "application/openstack-images-v2.1-json-patch", b, http.StatusOK)
	return took, err
}

// ListPage is one page of GET /v2/images.
type ListPage struct {
	Images []ImageDoc `json:"images"`
	Next   string     `json:"next"`
}

// List fetches one page. query is the raw query string (without "?").
// fresh chooses a new connection for the request instead of a kept-alive one.
func (c *Client) List(ctx context.Context, query string, fresh bool) (ListPage, time.Duration, error) {
	hc := c.keep
	if fresh {
		hc = c.fresh
	}
	path := "/v2/images"
	if query != "" {
		path += "?" + query
	}
	out, took, err := c.do(ctx, hc, http.MethodGet, path, "", nil, http.StatusOK)
	if err != nil {
		return ListPage{}, took, err
	}
	var p ListPage
	if err := json.Unmarshal(out, &p); err != nil {
		return ListPage{}, took, fmt.Errorf("GET %s: %w", path, err)
	}
	return p, took, nil
}

// ListAll walks every page of a listing (bounded to maxPages pages) and
// returns the images found.
func (c *Client) ListAll(ctx context.Context, query string, maxPages int) ([]ImageDoc, error) {
	var all []ImageDoc
	q := query
	for range maxPages {
		p, _, err := c.List(ctx, q, false)
		if err != nil {
			return all, err
		}
		all = append(all, p.Images...)
		if p.Next == "" || len(p.Images) == 0 {
			return all, nil
		}
		u, err := url.Parse(p.Next)
		if err != nil {
			return all, fmt.Errorf("bad next link %q: %w", p.Next, err)
		}
		q = u.RawQuery
	}
	return all, fmt.Errorf("listing %q did not end within %d pages", query, maxPages)
}

// Delete removes an image; an image already gone counts as deleted.
func (c *Client) Delete(ctx context.Context, id string) error {
	_, _, err := c.do(ctx, c.keep, http.MethodDelete, "/v2/images/"+id, "", nil, http.StatusNoContent)
	var se *StatusError
	if errors.As(err, &se) && se.Code == http.StatusNotFound {
		return nil
	}
	return err
}

// Upload streams size bytes of the Stream for seed to the image's data. With
// chunked the body is sent with chunked transfer encoding, as glanceclient
// does; otherwise with a Content-Length.
func (c *Client) Upload(ctx context.Context, id string, seed uint64, size int64, chunked bool) (time.Duration, error) {
	req, err := c.newRequest(ctx, http.MethodPut, "/v2/images/"+id+"/file", io.NopCloser(NewStream(seed, size)))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	if chunked {
		req.ContentLength = -1
	} else {
		req.ContentLength = size
	}
	start := time.Now()
	resp, err := c.keep.Do(req)
	if err != nil {
		return 0, fmt.Errorf("PUT /v2/images/%s/file: %w", id, err)
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	took := time.Since(start)
	if resp.StatusCode != http.StatusNoContent {
		return took, &StatusError{Method: http.MethodPut, Path: "/v2/images/" + id + "/file", Code: resp.StatusCode, Body: snippet(b)}
	}
	return took, nil
}

// Download reads the image's data to the end. With withSum it also returns the
// hex md5 of what arrived; without, the bytes are only counted, so the
// timing is not bounded by the client's hashing speed. contentMD5 is the
// Content-MD5 header the server sent.
func (c *Client) Download(ctx context.Context, id string, withSum bool) (n int64, sum, contentMD5 string, took time.Duration, err error) {
	req, err := c.newRequest(ctx, http.MethodGet, "/v2/images/"+id+"/file", nil)
	if err != nil {
		return 0, "", "", 0, err
	}
	start := time.Now()
	resp, err := c.keep.Do(req)
	if err != nil {
		return 0, "", "", 0, fmt.Errorf("GET /v2/images/%s/file: %w", id, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return 0, "", "", time.Since(start), &StatusError{Method: http.MethodGet, Path: "/v2/images/" + id + "/file", Code: resp.StatusCode, Body: snippet(b)}
	}
	var h hash.Hash
	if withSum {
		h = md5.New()
	}
	n, err = drain(resp.Body, h)
	took = time.Since(start)
	if err != nil {
		return n, "", "", took, fmt.Errorf("GET /v2/images/%s/file: after %d bytes: %w", id, n, err)
	}
	if withSum {
		sum = hex.EncodeToString(h.Sum(nil))
	}
	return n, sum, resp.Header.Get("Content-Md5"), took, nil
}

// drain reads r to the end in 1 MiB reads, the way every download of the
// benchmark reads, feeding h when it is not nil.
func drain(r io.Reader, h hash.Hash) (int64, error) {
	var n int64
	buf := make([]byte, 1<<20)
	for {
		k, err := r.Read(buf)
		n += int64(k)
		if h != nil {
			h.Write(buf[:k])
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// fetch downloads an absolute URL over the kept-alive client, timing it
// like Download.
func (c *Client) fetch(ctx context.Context, url string) (int64, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	resp, err := c.keep.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	n, err := drain(resp.Body, nil)
	return n, time.Since(start), err
}
