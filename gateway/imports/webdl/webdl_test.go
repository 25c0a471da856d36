package webdl

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/glance-go/glance-go/domain"
)

// testNames are the names the test DNS server knows.
var testNames = map[string][]netip.Addr{
	"good.test.":   {netip.MustParseAddr("127.0.0.1")},
	"other.test.":  {netip.MustParseAddr("127.0.0.1")},
	"six.test.":    {netip.MustParseAddr("::1")},
	"rebind.test.": {netip.MustParseAddr("127.0.0.1")},
}

func TestValidate(t *testing.T) {
	res := dnsServer(t, testNames)
	tests := []struct {
		name string
		opt  func(o *Options)
		uri  string
		ok   bool
	}{
		// Schemes.
		{"http", nil, "http://good.test/image.qcow2", true},
		{"https", nil, "https://good.test/x", true},
		{"scheme upper case", nil, "HTTP://good.test/", true},
		{"ftp not allowed", nil, "ftp://good.test/", false},
		{"file not allowed", nil, "file:///etc/passwd", false},
		{"empty", nil, "", false},
		{"no scheme", nil, "good.test/x", false},
		{"no host", nil, "http:///x", false},
		{"unparsable", nil, "http://good.test:port/", false},
		{"deny list when allow list empty", func(o *Options) { o.AllowedSchemes, o.DisallowedSchemes = nil, []string{"http"} },
			"http://good.test/", false},
		{"deny list lets others through", func(o *Options) { o.AllowedSchemes, o.DisallowedSchemes = nil, []string{"http"} },
			"https://good.test/", true},
		{"allow list wins over deny list", func(o *Options) { o.DisallowedSchemes = []string{"https"} },
			"https://good.test/", true},

		// Ports.
		{"port 80", nil, "http://good.test:80/", true},
		{"port 443", nil, "https://good.test:443/", true},
		{"port 8080 not allowed", nil, "http://good.test:8080/", false},
		{"implicit port is not filtered", func(o *Options) { o.AllowedPorts = []int{8080} }, "http://good.test/", true},
		{"allowed port", func(o *Options) { o.AllowedPorts = []int{8080} }, "http://good.test:8080/", true},
		{"denied port", func(o *Options) { o.AllowedPorts, o.DisallowedPorts = nil, []int{8080} }, "http://good.test:8080/", false},
		{"port not denied", func(o *Options) { o.AllowedPorts, o.DisallowedPorts = nil, []int{8080} }, "http://good.test:9090/", true},
		{"port allow list wins", func(o *Options) { o.AllowedPorts, o.DisallowedPorts = []int{8080}, []int{8080} },
			"http://good.test:8080/", true},
		{"port 0", func(o *Options) { o.AllowedPorts = nil }, "http://good.test:0/", false},
		{"port out of range", func(o *Options) { o.AllowedPorts = nil }, "http://good.test:65536/", false},

		// Hosts.
		{"IPv4 literal", nil, "http://127.0.0.1/", true},
		{"allowed host", func(o *Options) { o.AllowedHosts = []string{"good.test"} }, "http://good.test/", true},
		{"host not in allow list", func(o *Options) { o.AllowedHosts = []string{"good.test"} }, "http://other.test/", false},
		{"address not in allow list", func(o *Options) { o.AllowedHosts = []string{"good.test"} }, "http://127.0.0.1/", false},
		{"denied address", func(o *Options) { o.DisallowedHosts = []string{"127.0.0.1"} }, "http://127.0.0.1/", false},
		{"name of a denied address passes the string filter", func(o *Options) { o.DisallowedHosts = []string{"127.0.0.1"} },
			"http://good.test/", true},
		{"denied name", func(o *Options) { o.DisallowedHosts = []string{"good.test"} }, "http://good.test/", false},
		{"denied name in other case", func(o *Options) { o.DisallowedHosts = []string{"GOOD.test"} }, "http://Good.TEST/", false},
		{"denied name with trailing dot", func(o *Options) { o.DisallowedHosts = []string{"good.test"} }, "http://good.test./", false},
		{"host allow list wins", func(o *Options) { o.AllowedHosts, o.DisallowedHosts = []string{"good.test"}, []string{"good.test"} },
			"http://good.test/", true},

		// IPv6.
		{"IPv6 literal", nil, "http://[::1]/", true},
		{"IPv6 with port", nil, "http://[::1]:80/", true},
		{"denied IPv6", func(o *Options) { o.DisallowedHosts = []string{"::1"} }, "http://[::1]/", false},
		{"denied IPv6 written long", func(o *Options) { o.DisallowedHosts = []string{"::1"} }, "http://[0:0:0:0:0:0:0:1]/", false},
		{"deny entry written long", func(o *Options) { o.DisallowedHosts = []string{"0:0::1"} }, "http://[::1]/", false},
		{"deny entry in brackets", func(o *Options) { o.DisallowedHosts = []string{"[::1]"} }, "http://[::1]/", false},
		{"IPv4-mapped IPv6 of a denied address", func(o *Options) { o.DisallowedHosts = []string{"127.0.0.1"} },
			"http://[::ffff:127.0.0.1]/", false},
		{"allowed IPv6", func(o *Options) { o.AllowedHosts = []string{"::1"} }, "http://[::1]/", true},
		{"IPv6 name", nil, "http://six.test/", true},

		// Userinfo: the host is what follows the last '@'.
		{"userinfo", nil, "http://user:secret@good.test/", true},
		{"userinfo that looks like a host", func(o *Options) { o.DisallowedHosts = []string{"127.0.0.1"} },
			"http://good.test@127.0.0.1/", false},
		{"address in userinfo", func(o *Options) { o.AllowedHosts = []string{"good.test"} }, "http://127.0.0.1:80@good.test/", true},
		{"backslash before @", nil, `http://good.test\@127.0.0.1/`, false},

		// Encoded and numeric-only hosts.
		{"decimal", nil, "http://2130706433/", false},
		{"octal", nil, "http://017700000001/", false},
		{"hex", nil, "http://0x7f000001/", false},
		{"hex dotted", nil, "http://0x7f.1/", false},
		{"hex octet", nil, "http://127.0x0.0.1/", false},
		{"short dotted", nil, "http://127.1/", false},
		{"octal octets", nil, "http://0177.0.0.1/", false},
		{"leading zero", nil, "http://127.0.0.01/", false},
		{"trailing dot address", nil, "http://127.0.0.1./", false},

		// Resolution.
		{"unresolvable", nil, "http://nowhere.test/", false},
		{"unresolvable even when allowed", func(o *Options) { o.AllowedHosts = []string{"nowhere.test"} }, "http://nowhere.test/", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := DefaultOptions()
			o.resolver = res
			if tc.opt != nil {
				tc.opt(&o)
			}
			err := o.Validate(tc.uri)
			if tc.ok {
				if err != nil {
					t.Fatalf("Validate(%q) = %v, want it to pass", tc.uri, err)
				}
				return
			}
			if !errors.Is(err, domain.ErrInvalid) {
				t.Fatalf("Validate(%q) = %v, want ErrInvalid", tc.uri, err)
			}
			if want := "URI for web-download does not pass filtering: " + tc.uri; err.Error() != want {
				t.Errorf("message %q, want %q", err, want)
			}
		})
	}
}

// TestValidateSystemResolver runs the check on the machine's resolver:
// .invalid names never resolve (RFC 6761).
func TestValidateSystemResolver(t *testing.T) {
	o := DefaultOptions()
	for _, uri := range []string{"http://nowhere.invalid/", "http://2130706433/", "http://0x7f.1/"} {
		if err := o.Validate(uri); !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("Validate(%q) = %v, want ErrInvalid", uri, err)
		}
	}
	if err := o.Validate("http://127.0.0.1/"); err != nil {
		t.Errorf("Validate(loopback) = %v: addresses are refused only through the filters", err)
	}
}
