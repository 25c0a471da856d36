// Package webdl filters and fetches the URIs of the web-download import
// method: glance/common/utils.py (validate_import_uri, normalize_hostname),
// the [import_filtering_opts] options of
// glance/async_/flows/_internal_plugins/__init__.py, and the fetch with
// validated redirects of glance/common/scripts/utils.py
// (get_image_data_iter, SafeRedirectHandler).
//
// Filtering follows Glance 32.0: the scheme, the host and an explicit port
// are each checked against an allow list, or, when that list is empty,
// against a deny list. Hosts are normalised first: an IP address is written
// in its canonical form, and a name must be a real DNS name that resolves,
// so that encoded addresses (2130706433, 0x7f.1, 017700000001, 127.1) are
// refused instead of being handed to inet_aton. glance-go also refuses
// nothing by address range by default: loopback and private addresses are
// only refused through the filters.
//
// glance-go is stricter than Glance in a few places, each closing a way
// around a deny list: an IPv4-mapped IPv6 address ([::ffff:127.0.0.1]) is
// matched as the IPv4 address it maps, a host name's trailing dot is
// ignored when matching, list entries are normalised the same way as the
// URI's host, an explicit port 0 is refused, and Open checks the address it
// actually connects to (see Open).
package webdl

import (
	"context"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/glance-go/glance-go/domain"
)

// Options is [import_filtering_opts]: allowed_schemes (default http, https),
// disallowed_schemes, allowed_hosts, disallowed_hosts, allowed_ports
// (default 80, 443), disallowed_ports. For each of the three pairs, a
// non-empty allow list wins and its deny list is ignored, as in Glance.
type Options struct {
	AllowedSchemes, DisallowedSchemes []string
	// AllowedHosts and DisallowedHosts hold host names or IP addresses.
	AllowedHosts, DisallowedHosts []string
	// AllowedPorts and DisallowedPorts apply to a port written in the
	// URI; a URI without one passes the port filter, as in Glance.
	AllowedPorts, DisallowedPorts []int
	// Timeout bounds, for each request of a fetch (the first and every
	// redirect), connecting, the TLS handshake and the wait for the
	// response headers; it also bounds the DNS lookup of Validate. The
	// body is bounded only by the caller's context. 0 means no limit.
	Timeout time.Duration
	// MaxRedirects is how many redirects Open follows; one more fails the
	// fetch. 0 follows none.
	MaxRedirects int

	// resolver answers the DNS lookups of Validate and of Open's dialer;
	// nil is net.DefaultResolver. Tests point it at a local DNS server.
	resolver *net.Resolver
}

// DefaultOptions returns Glance's defaults: schemes http and https, ports 80
// and 443, no host filter; plus a 60 s connect and header timeout and the 10
// redirects Python's urllib follows.
func DefaultOptions() Options {
	return Options{
		AllowedSchemes: []string{"http", "https"},
		AllowedPorts:   []int{80, 443},
		Timeout:        60 * time.Second,
		MaxRedirects:   10,
	}
}

// Validate reports whether uri passes the filters, as Glance's
// validate_import_uri does. It returns an ErrInvalid domain error
// "URI for web-download does not pass filtering: <uri>" when it does not.
// A host name is looked up in DNS (as an absolute name) and refused when it
// does not resolve.
func (o Options) Validate(uri string) error {
	ctx := context.Background()
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	if _, err := o.check(ctx, uri); err != nil {
		return errFiltered(uri)
	}
	return nil
}

func errFiltered(uri string) error {
	return domain.Errorf(domain.ErrInvalid, "URI for web-download does not pass filtering: %s", uri)
}

// errRefused is the internal reason a URI fails; Validate turns every one
// into Glance's single message.
type errRefused string

func (e errRefused) Error() string { return string(e) }

// check validates uri and returns it parsed.
func (o Options) check(ctx context.Context, uri string) (*url.URL, error) {
	if uri == "" {
		return nil, errRefused("empty URI")
	}
	u, err := url.Parse(uri)
	if err != nil {
		return nil, err
	}
	if u.Scheme == "" || !o.schemeOK(u.Scheme) {
		return nil, errRefused("scheme")
	}
	host, ok := o.normalizeHostname(ctx, u.Hostname())
	if !ok || !o.hostOK(host) {
		return nil, errRefused("host")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 || !o.portOK(n) {
			return nil, errRefused("port")
		}
	}
	return u, nil
}

func (o Options) schemeOK(scheme string) bool {
	scheme = strings.ToLower(scheme)
	if len(o.AllowedSchemes) > 0 {
		return slices.ContainsFunc(o.AllowedSchemes, func(s string) bool { return strings.EqualFold(s, scheme) })
	}
	return !slices.ContainsFunc(o.DisallowedSchemes, func(s string) bool { return strings.EqualFold(s, scheme) })
}

// hostOK applies the host lists to a normalised host.
func (o Options) hostOK(host string) bool {
	if len(o.AllowedHosts) > 0 {
		return inHosts(o.AllowedHosts, host)
	}
	return !inHosts(o.DisallowedHosts, host)
}

func (o Options) portOK(port int) bool {
	if len(o.AllowedPorts) > 0 {
		return slices.Contains(o.AllowedPorts, port)
	}
	return !slices.Contains(o.DisallowedPorts, port)
}

// inHosts reports whether the normalised host is one of list, whose entries
// are normalised the same way.
func inHosts(list []string, host string) bool {
	for _, h := range list {
		if normalizeEntry(h) == host {
			return true
		}
	}
	return false
}

// normalizeEntry writes a configured host the way normalizeHostname writes
// a URI's: canonical IP addresses, lower-case names without a trailing dot.
func normalizeEntry(h string) string {
	h = strings.TrimSpace(h)
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Unmap().String()
	}
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// normalizeHostname mirrors Glance's normalize_hostname: a standard IPv4 or
// IPv6 address is returned in canonical form; a host made only of digits
// and dots is refused (an encoded address); any other name must resolve in
// DNS when looked up as an absolute name, which turns 0x7f000001 and
// 127.0x0.0.1 into failed lookups. A resolvable name is returned lower-case
// and without its trailing dot.
func (o Options) normalizeHostname(ctx context.Context, host string) (string, bool) {
	if host == "" {
		return "", false
	}
	if a, err := netip.ParseAddr(host); err == nil {
		// netip accepts only the standard forms: four decimal octets
		// without leading zeros, or RFC 4291 IPv6 text.
		return a.Unmap().String(), true
	}
	if strings.Trim(host, "0123456789.") == "" {
		return "", false
	}
	name := strings.ToLower(host)
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	addrs, err := o.lookup().LookupHost(ctx, name)
	if err != nil || len(addrs) == 0 {
		return "", false
	}
	return strings.TrimSuffix(name, "."), true
}

func (o Options) lookup() *net.Resolver {
	if o.resolver != nil {
		return o.resolver
	}
	return net.DefaultResolver
}
