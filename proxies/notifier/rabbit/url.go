package rabbit

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Host is one broker of a transport URL.
type Host struct {
	Hostname string
	Port     int // 5672 when the URL gives none
	Username string
	Password string
}

// Addr is host:port, with an IPv6 address in brackets.
func (h Host) Addr() string { return net.JoinHostPort(h.Hostname, strconv.Itoa(h.Port)) }

// TransportURL is a parsed oslo.messaging transport_url of the rabbit
// driver: rabbit://[user:pass@]host[:port][,[user:pass@]host[:port]]/vhost.
type TransportURL struct {
	Hosts []Host
	// VirtualHost is the path without its leading slash, unescaped; ""
	// means the broker's default virtual host, "/".
	VirtualHost string
	// Query holds the URL's query parameters, which oslo.messaging reads
	// as overrides of [oslo_messaging_rabbit] options.
	Query url.Values
}

// ParseTransportURL parses s the way oslo.messaging's TransportURL.parse
// does for the rabbit driver. The scheme is rabbit or its alias kombu; a
// URL without hosts (rabbit://) means guest:guest@localhost:5672. Other
// drivers (kafka, and amqp, whose AMQP 1.0 driver oslo.messaging has
// removed) are refused, as is a URL that is not one.
func ParseTransportURL(s string) (*TransportURL, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || scheme == "" {
		return nil, fmt.Errorf("not a transport URL (want rabbit://user:pass@host:5672/)")
	}
	driver, _, _ := strings.Cut(scheme, "+")
	switch driver {
	case "rabbit", "kombu":
	case "amqp":
		return nil, fmt.Errorf("transport %q is oslo.messaging's AMQP 1.0 driver, which it no longer has; RabbitMQ is rabbit://", scheme)
	default:
		return nil, fmt.Errorf("transport %q is not supported: glance-go sends notifications to RabbitMQ (rabbit://)", scheme)
	}
	rest, _, _ = strings.Cut(rest, "#")
	rest, query, _ := strings.Cut(rest, "?")
	netloc, path, hasPath := strings.Cut(rest, "/")
	t := &TransportURL{}
	var err error
	if t.Query, err = url.ParseQuery(query); err != nil {
		return nil, fmt.Errorf("bad query in transport URL: %v", err)
	}
	if hasPath {
		if t.VirtualHost, err = url.PathUnescape(path); err != nil {
			return nil, fmt.Errorf("bad virtual host in transport URL: %v", err)
		}
	}
	for _, part := range strings.Split(netloc, ",") {
		if part == "" {
			continue
		}
		h := Host{Port: 5672}
		hostport := part
		if at := strings.LastIndex(part, "@"); at >= 0 {
			cred := part[:at]
			hostport = part[at+1:]
			user, pass, hasPass := strings.Cut(cred, ":")
			if h.Username, err = url.PathUnescape(user); err != nil {
				return nil, fmt.Errorf("bad user name in transport URL: %v", err)
			}
			if hasPass {
				if h.Password, err = url.PathUnescape(pass); err != nil {
					return nil, fmt.Errorf("bad password in transport URL")
				}
			}
		}
		name, port, err := splitHostPort(hostport)
		if err != nil {
			return nil, fmt.Errorf("transport URL host %q: %v", hostport, err)
		}
		h.Hostname = name
		if port != 0 {
			h.Port = port
		}
		t.Hosts = append(t.Hosts, h)
	}
	if len(t.Hosts) == 0 {
		t.Hosts = []Host{{Hostname: "localhost", Port: 5672, Username: "guest", Password: "guest"}}
	}
	for i := range t.Hosts {
		if t.Hosts[i].Hostname == "" {
			t.Hosts[i].Hostname = "localhost"
		}
	}
	return t, nil
}

// splitHostPort splits "host", "host:port", "[v6]" or "[v6]:port".
func splitHostPort(s string) (string, int, error) {
	if s == "" {
		return "", 0, nil
	}
	host, portText := s, ""
	switch {
	case strings.HasPrefix(s, "["):
		end := strings.Index(s, "]")
		if end < 0 {
			return "", 0, fmt.Errorf("missing ] in IPv6 address")
		}
		host, portText = s[1:end], strings.TrimPrefix(s[end+1:], ":")
	case strings.Count(s, ":") == 1:
		host, portText, _ = strings.Cut(s, ":")
	case strings.Count(s, ":") > 1:
		// A bare IPv6 address.
	}
	if portText == "" {
		return host, 0, nil
	}
	p, err := strconv.Atoi(portText)
	if err != nil || p < 1 || p > 65535 {
		return "", 0, fmt.Errorf("port %q is not a number between 1 and 65535", portText)
	}
	return host, p, nil
}

// Redact returns s with the passwords of its brokers replaced by ***, for
// logs and error messages.
func Redact(s string) string {
	i := strings.Index(s, "://")
	if i < 0 {
		return s
	}
	rest := s[i+3:]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	parts := strings.Split(rest[:end], ",")
	for k, p := range parts {
		at := strings.LastIndex(p, "@")
		if at < 0 {
			continue
		}
		if user, _, ok := strings.Cut(p[:at], ":"); ok {
			parts[k] = user + ":***" + p[at:]
		}
	}
	return s[:i+3] + strings.Join(parts, ",") + rest[end:]
}
