package webdl

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"

	"github.com/glance-go/glance-go/domain"
)

// userAgent is sent with every web-download request.
const userAgent = "glance-go web-download"

// Open fetches uri for the import: size is Content-Length or -1. SSRF-safe:
// it checks the address actually dialled (a net.Dialer Control hook),
// validates every redirect with the same rules, and refuses encoded or
// numeric-only hosts and unresolvable hosts as Glance 32.0 does.
//
// Only http and https are fetched, without any proxy from the environment
// (a proxy would be the address dialled), and without transparent
// decompression, so the bytes are the server's. The dial check applies the
// host filters to the IP address the connection goes to, after DNS: with a
// deny list, a name that resolves to a denied address is refused; with an
// allow list, the address must be allowed itself unless the name being
// dialled is. The port needs no second check, since without a proxy the
// connection goes to the URI's own port.
//
// Errors are domain errors: ErrInvalid for a URI, redirect or address
// refused by the filters, too many redirects, or a 4xx answer;
// ErrUnavailable for a source that cannot be reached or answers 5xx.
// Closing the body releases the connection.
func (o Options) Open(ctx context.Context, uri string) (io.ReadCloser, int64, error) {
	hctx := ctx
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		hctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	u, err := o.check(hctx, uri)
	if err != nil {
		return nil, 0, errFiltered(uri)
	}
	if err := fetchable(u); err != nil {
		return nil, 0, err
	}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           o.dial,
		DisableCompression:    true,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   o.Timeout,
		ResponseHeaderTimeout: o.Timeout,
		MaxIdleConns:          1,
	}
	client := &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > o.MaxRedirects {
				return domain.Errorf(domain.ErrInvalid, "Too many redirects fetching %s: more than %d",
					u.Redacted(), o.MaxRedirects)
			}
			if _, err := o.check(req.Context(), req.URL.String()); err != nil {
				return domain.Errorf(domain.ErrInvalid, "Redirect to disallowed URL: %s", req.URL.Redacted())
			}
			return fetchable(req.URL)
		},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, 0, errFiltered(uri)
	}
	req.Header.Set("User-Agent", userAgent)
	resp, err := client.Do(req)
	if err != nil {
		tr.CloseIdleConnections()
		var de *domain.Error
		if errors.As(err, &de) {
			return nil, 0, de
		}
		if ctx.Err() != nil {
			return nil, 0, ctx.Err()
		}
		return nil, 0, domain.Errorf(domain.ErrUnavailable, "Cannot fetch %s: %v", u.Redacted(), unwrapURLError(err))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		resp.Body.Close()
		tr.CloseIdleConnections()
		kind := domain.ErrUnavailable
		if resp.StatusCode >= 400 && resp.StatusCode < 500 {
			kind = domain.ErrInvalid
		}
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			// A redirect without a Location, or one Go does not follow.
			kind = domain.ErrInvalid
		}
		return nil, 0, domain.Errorf(kind, "Cannot fetch %s: HTTP Error %d: %s",
			u.Redacted(), resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	return &body{ReadCloser: resp.Body, tr: tr}, resp.ContentLength, nil
}

// fetchable refuses the schemes Open cannot fetch even when the filters
// allow them.
func fetchable(u *url.URL) error {
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		return nil
	}
	return domain.Errorf(domain.ErrInvalid, "Scheme %s is not supported by web-download", u.Scheme)
}

// unwrapURLError drops the "Get \"uri\": " prefix that would repeat the URI.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// body closes the transport's connections with the response.
type body struct {
	io.ReadCloser
	tr *http.Transport
}

func (b *body) Close() error {
	err := b.ReadCloser.Close()
	b.tr.CloseIdleConnections()
	return err
}

// dial connects to addr (host:port) through a dialer whose Control hook
// checks each address the host resolved to before connecting.
func (o Options) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	name := normalizeEntry(host)
	d := &net.Dialer{
		Timeout:  o.Timeout,
		Resolver: o.resolver,
		Control: func(_, address string, _ syscall.RawConn) error {
			return o.checkDialled(name, address)
		},
	}
	return d.DialContext(ctx, network, addr)
}

// checkDialled applies the host filters to the address a connection is
// about to be made to; name is the normalised host being dialled.
func (o Options) checkDialled(name, address string) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return domain.Errorf(domain.ErrInvalid, "Web-download cannot connect to %s", address)
	}
	ip := ap.Addr().WithZone("").Unmap().String()
	ok := true
	if len(o.AllowedHosts) > 0 {
		ok = inHosts(o.AllowedHosts, name) || inHosts(o.AllowedHosts, ip)
	} else if inHosts(o.DisallowedHosts, ip) {
		ok = false
	}
	if !ok {
		return domain.Errorf(domain.ErrInvalid, "URI for web-download does not pass filtering: %s resolves to %s",
			name, ip)
	}
	return nil
}
