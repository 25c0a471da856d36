// Package http is the read-only HTTP(S) store driver (glance_store's
// _drivers/http.py): a location is any http:// or https:// URL, read with
// GET and sized with HEAD. It never stores or deletes data: Put and Delete
// return stores.ErrReadOnly.
//
// Ranged reads send a Range header and, when the server ignores it and
// answers 200 with the whole object, skip the bytes before the offset.
// Redirects are followed, at most four in a row as glance_store allows
// (which follows only 301 and 302; this driver also follows 303, 307 and
// 308); 404 and 410 are stores.ErrNotFound; a server that cannot be
// reached, or answers 5xx, is stores.ErrUnavailable.
package http

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/glance-go/glance-go/stores"
)

// MaxRedirects bounds the requests one read makes, as glance_store's
// MAX_REDIRECTS: the fifth redirect in a row is an error.
const MaxRedirects = 5

// DefaultTimeout is http_store_timeout's default.
const DefaultTimeout = 60 * time.Second

// Config is the http store's options.
type Config struct {
	// Timeout bounds connecting, the TLS handshake and the wait for the
	// response headers (http_store_timeout, seconds, an option of
	// glance-go's own); it never cuts a transfer that is under way.
	// 0 means no limit.
	Timeout time.Duration
	// Insecure skips the verification of servers' certificates
	// (https_insecure; true by default in Glance). CAFile overrides it.
	Insecure bool
	// CAFile is a PEM bundle to verify servers' certificates with
	// (https_ca_certificates_file).
	CAFile string
	// Proxies maps a URL scheme to the proxy for it
	// (http_proxy_information, "http:10.0.0.1:3128"); the environment's
	// proxies serve the other schemes.
	Proxies map[string]string
	// Transport, when set, replaces the transport built from the options
	// above.
	Transport nethttp.RoundTripper
}

// Driver reads image data from web servers.
type Driver struct {
	client *nethttp.Client
}

var _ stores.Driver = (*Driver)(nil)

func init() { stores.Register("http", open) }

var errTooManyRedirects = fmt.Errorf("the HTTP URL exceeded %d maximum redirects", MaxRedirects)

// New returns a driver for cfg.
func New(cfg Config) (*Driver, error) {
	rt := cfg.Transport
	if rt == nil {
		t, err := transport(cfg)
		if err != nil {
			return nil, err
		}
		rt = t
	}
	c := &nethttp.Client{
		Transport: rt,
		CheckRedirect: func(req *nethttp.Request, via []*nethttp.Request) error {
			if len(via) >= MaxRedirects {
				return errTooManyRedirects
			}
			return nil
		},
	}
	return &Driver{client: c}, nil
}

func transport(cfg Config) (*nethttp.Transport, error) {
	proxies := map[string]*url.URL{}
	for scheme, p := range cfg.Proxies {
		if !strings.Contains(p, "://") {
			p = "http://" + p
		}
		u, err := url.Parse(p)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("stores/http: invalid proxy %q for %s", p, scheme)
		}
		proxies[strings.ToLower(scheme)] = u
	}
	tc := &tls.Config{InsecureSkipVerify: cfg.Insecure}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("stores/http: https_ca_certificates_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("stores/http: https_ca_certificates_file %s holds no PEM certificate", cfg.CAFile)
		}
		tc = &tls.Config{RootCAs: pool}
	}
	return &nethttp.Transport{
		Proxy: func(r *nethttp.Request) (*url.URL, error) {
			if u, ok := proxies[r.URL.Scheme]; ok {
				return u, nil
			}
			return nethttp.ProxyFromEnvironment(r)
		},
		DialContext:           (&net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tc,
		TLSHandshakeTimeout:   cfg.Timeout,
		ResponseHeaderTimeout: cfg.Timeout,
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       90 * time.Second,
		// Image bytes must arrive as stored: no transparent gunzip, which
		// would also make ranges and sizes disagree.
		DisableCompression: true,
	}, nil
}

// open is the "http" type of stores.Open.
func open(o *stores.Options) (*stores.Backend, error) {
	cfg := ConfigFromOptions(o)
	if err := o.Err(); err != nil {
		return nil, err
	}
	d, err := New(cfg)
	if err != nil {
		return nil, err
	}
	return &stores.Backend{Driver: d, Properties: map[string]any{}}, nil
}

// ConfigFromOptions reads a configuration section's http options; invalid
// values are recorded in o.
func ConfigFromOptions(o *stores.Options) Config {
	secs := o.Int("http_store_timeout", int(DefaultTimeout/time.Second))
	if secs < 0 {
		o.Fail("http_store_timeout", "must be at least 0")
	}
	return Config{
		Timeout:  time.Duration(secs) * time.Second,
		Insecure: o.Bool("https_insecure", true),
		CAFile:   o.String("https_ca_certificates_file", ""),
		Proxies:  o.Dict("http_proxy_information"),
	}
}

// Schemes implements stores.Driver.
func (d *Driver) Schemes() []string { return []string{"http", "https"} }

// Put implements stores.Driver: the http store is read-only.
func (d *Driver) Put(context.Context, string, io.Reader, int64) (stores.Object, error) {
	return stores.Object{}, fmt.Errorf("%w: the http store cannot add data", stores.ErrReadOnly)
}

// Delete implements stores.Driver: the http store is read-only.
func (d *Driver) Delete(context.Context, string) error {
	return fmt.Errorf("%w: the http store cannot delete data", stores.ErrReadOnly)
}

// request builds a request for a location URL.
func request(ctx context.Context, method, loc string) (*nethttp.Request, error) {
	u, err := url.Parse(loc)
	if err != nil {
		return nil, fmt.Errorf("stores/http: invalid location %q: %w", loc, err)
	}
	if s := strings.ToLower(u.Scheme); s != "http" && s != "https" {
		return nil, fmt.Errorf("%w: %q", stores.ErrUnknownScheme, loc)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("stores/http: no address in location %q", loc)
	}
	return nethttp.NewRequestWithContext(ctx, method, u.String(), nil)
}

// do sends req and turns transport failures and error statuses into
// stores errors; the caller closes the body of the response it returns.
func (d *Driver) do(req *nethttp.Request, loc string) (*nethttp.Response, error) {
	resp, err := d.client.Do(req)
	if err != nil {
		switch {
		case req.Context().Err() != nil:
			return nil, req.Context().Err()
		case errors.Is(err, errTooManyRedirects):
			return nil, fmt.Errorf("stores/http: %s: %w", loc, errTooManyRedirects)
		}
		return nil, fmt.Errorf("%w: remote server where the image is present is unavailable: %w", stores.ErrUnavailable, err)
	}
	switch c := resp.StatusCode; {
	case c < 300, c == nethttp.StatusRequestedRangeNotSatisfiable:
		return resp, nil
	case c == nethttp.StatusNotFound, c == nethttp.StatusGone:
		resp.Body.Close()
		return nil, fmt.Errorf("%w: HTTP datastore could not find image at URI %s", stores.ErrNotFound, loc)
	case c >= 500:
		resp.Body.Close()
		return nil, fmt.Errorf("%w: %s returned %s", stores.ErrUnavailable, loc, resp.Status)
	default:
		resp.Body.Close()
		return nil, fmt.Errorf("stores/http: %s returned %s", loc, resp.Status)
	}
}

// Get implements stores.Driver.
func (d *Driver) Get(ctx context.Context, loc string, off, n int64) (io.ReadCloser, error) {
	if off < 0 {
		return nil, fmt.Errorf("stores/http: negative offset %d", off)
	}
	req, err := request(ctx, nethttp.MethodGet, loc)
	if err != nil {
		return nil, err
	}
	switch {
	case n == 0:
	case n > 0:
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+n-1))
	case off > 0:
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", off))
	}
	resp, err := d.do(req, loc)
	if err != nil {
		return nil, err
	}
	body := resp.Body
	switch {
	case n == 0, resp.StatusCode == nethttp.StatusRequestedRangeNotSatisfiable:
		// Nothing to read, or the offset is at or past the end.
		body.Close()
		return nethttp.NoBody, nil
	case resp.StatusCode == nethttp.StatusPartialContent:
		if start, ok := rangeStart(resp.Header.Get("Content-Range")); !ok || start != off {
			body.Close()
			return nil, fmt.Errorf("stores/http: %s answered bytes from %q, asked from %d", loc, resp.Header.Get("Content-Range"), off)
		}
	case off > 0:
		// The server sent the whole object: skip to the offset.
		if _, err := io.CopyN(io.Discard, body, off); err != nil {
			body.Close()
			if err == io.EOF {
				return nethttp.NoBody, nil
			}
			return nil, err
		}
	}
	if n < 0 {
		return body, nil
	}
	return &section{Reader: io.LimitReader(body, n), body: body}, nil
}

// rangeStart reads the first byte position of a Content-Range header,
// "bytes 100-199/1000".
func rangeStart(h string) (int64, bool) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(h), "bytes ")
	if !ok {
		return 0, false
	}
	first, _, ok := strings.Cut(strings.TrimSpace(rest), "-")
	if !ok {
		return 0, false
	}
	start, err := strconv.ParseInt(first, 10, 64)
	return start, err == nil
}

// section reads part of a response body.
type section struct {
	io.Reader
	body io.Closer
}

func (s *section) Close() error { return s.body.Close() }

// Size implements stores.Driver: the Content-Length of a HEAD request, 0
// when the server does not say.
func (d *Driver) Size(ctx context.Context, loc string) (int64, error) {
	req, err := request(ctx, nethttp.MethodHead, loc)
	if err != nil {
		return 0, err
	}
	resp, err := d.do(req, loc)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	if resp.StatusCode == nethttp.StatusRequestedRangeNotSatisfiable {
		return 0, fmt.Errorf("stores/http: %s returned %s to HEAD", loc, resp.Status)
	}
	return max(resp.ContentLength, 0), nil
}
