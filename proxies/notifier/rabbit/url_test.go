package rabbit_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/glance-go/glance-go/proxies/notifier/rabbit"
)

func TestParseTransportURL(t *testing.T) {
	for _, tc := range []struct {
		url   string
		hosts []rabbit.Host
		vhost string
	}{
		{"rabbit://guest:guest@127.0.0.1:5672/", []rabbit.Host{{"127.0.0.1", 5672, "guest", "guest"}}, ""},
		{"rabbit://u:p@host/", []rabbit.Host{{"host", 5672, "u", "p"}}, ""},
		{"rabbit://u:p%40ss@host:5673/vh", []rabbit.Host{{"host", 5673, "u", "p@ss"}}, "vh"},
		{"rabbit://u:p@h1:5672,u:q@h2:5673/openstack", []rabbit.Host{{"h1", 5672, "u", "p"}, {"h2", 5673, "u", "q"}}, "openstack"},
		{"rabbit://u:p@[::1]:5672/%2F", []rabbit.Host{{"::1", 5672, "u", "p"}}, "/"},
		{"kombu://u:p@h//", []rabbit.Host{{"h", 5672, "u", "p"}}, "/"},
		{"rabbit://", []rabbit.Host{{"localhost", 5672, "guest", "guest"}}, ""},
		{"rabbit://h1,h2:5000", []rabbit.Host{{"h1", 5672, "", ""}, {"h2", 5000, "", ""}}, ""},
	} {
		u, err := rabbit.ParseTransportURL(tc.url)
		if err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		if !reflect.DeepEqual(u.Hosts, tc.hosts) || u.VirtualHost != tc.vhost {
			t.Errorf("%s: hosts %+v vhost %q, want %+v %q", tc.url, u.Hosts, u.VirtualHost, tc.hosts, tc.vhost)
		}
	}
}

func TestParseTransportURLRefuses(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"127.0.0.1:5672", "not a transport URL"},
		{"amqp://u:p@h:5672/", "AMQP 1.0"},
		{"kafka://h:9092", "not supported"},
		{"rabbit://u:p@h:notaport/", "port"},
		{"rabbit://u:p@h:70000/", "port"},
	} {
		_, err := rabbit.ParseTransportURL(tc.url)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.url, err, tc.want)
		}
	}
}

func TestRedact(t *testing.T) {
	got := rabbit.Redact("rabbit://u:secret@h1:5672,v:other@h2/vh?x=1")
	if got != "rabbit://u:***@h1:5672,v:***@h2/vh?x=1" {
		t.Errorf("Redact = %s", got)
	}
}
