package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func loadText(t *testing.T, text string) (*Config, []string, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "glance-api.conf")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return Load([]string{path}, nil)
}

func TestNotificationDefaults(t *testing.T) {
	n := glanceDefaults().Notifications
	if n.URL() != "rabbit://" || !reflect.DeepEqual(n.Topics, []string{"notifications"}) || n.Retry != -1 ||
		n.ControlExchange != "glance" || n.Rabbit.RetryInterval != 1 || n.Rabbit.RetryBackoff != 2 ||
		n.Rabbit.IntervalMax != 30 || n.Rabbit.LoginMethod != "AMQPLAIN" || n.Messaging() {
		t.Errorf("defaults %+v", n)
	}
}

func TestNotificationOptions(t *testing.T) {
	c, ignored, err := loadText(t, `[DEFAULT]
transport_url = rabbit://a:b@h1:5672/
control_exchange = images

[oslo_messaging_notifications]
driver = messagingv2
driver = log
topics = notifications, glance_events
retry = 3

[oslo_messaging_rabbit]
amqp_durable_queues = true
rabbit_retry_backoff = 0
`)
	if err != nil || len(ignored) != 0 {
		t.Fatalf("Load = %v, ignored %v", err, ignored)
	}
	n := c.Notifications
	if !reflect.DeepEqual(n.Driver, []string{"messagingv2", "log"}) || !n.Messaging() {
		t.Errorf("driver = %q", n.Driver)
	}
	if n.URL() != "rabbit://a:b@h1:5672/" || n.ControlExchange != "images" || n.Retry != 3 ||
		!reflect.DeepEqual(n.Topics, []string{"notifications", "glance_events"}) ||
		!n.Rabbit.AMQPDurableQueues || n.Rabbit.RetryBackoff != 0 {
		t.Errorf("read %+v", n)
	}
	c, _, err = loadText(t, "[DEFAULT]\ntransport_url = rabbit://a:b@h1/\n[oslo_messaging_notifications]\ntransport_url = rabbit://c:d@h2/\n")
	if err != nil || c.Notifications.URL() != "rabbit://c:d@h2/" {
		t.Errorf("the section's transport_url does not win: %v %q", err, c.Notifications.URL())
	}
}

func TestNotificationOptionsRefused(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"[oslo_messaging_notifications]\nretry = -2\n", "retry"},
		{"[oslo_messaging_rabbit]\nrabbit_login_method = EXTERNAL\n", "rabbit_login_method"},
		{"[oslo_messaging_rabbit]\nrabbit_ha_queues = true\nrabbit_quorum_queue = true\n", "not both"},
		{"[oslo_messaging_notifications]\ndriver = messagingv2\ntransport_url = amqp://u:secret@h/\n", "AMQP 1.0"},
		{"[DEFAULT]\ntransport_url = kafka://u:secret@h:9092\n[oslo_messaging_notifications]\ndriver = messaging\n", "[DEFAULT] transport_url"},
	} {
		_, _, err := loadText(t, tc.text)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one containing %q", tc.text, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("the error shows the password: %v", err)
		}
	}
}

func TestNotificationWarnings(t *testing.T) {
	c, _, err := loadText(t, "[DEFAULT]\ntransport_url = rabbit://h/?ssl=1\n[oslo_messaging_notifications]\ndriver = routing\ndriver = messaging\n")
	if err != nil {
		t.Fatal(err)
	}
	w := strings.Join(c.NotificationWarnings(), "\n")
	if !strings.Contains(w, "routing is not supported") || !strings.Contains(w, "ssl") {
		t.Errorf("warnings %q", w)
	}
	// An unknown driver, or several in one line, sends nothing and is
	// named at start, as oslo.messaging leaves out drivers it cannot load.
	for _, d := range []string{"kafka", "messagingv2,log"} {
		c, _, err := loadText(t, "[oslo_messaging_notifications]\ndriver = "+d+"\n")
		if err != nil {
			t.Fatalf("driver = %s: %v", d, err)
		}
		if w := strings.Join(c.NotificationWarnings(), "\n"); !strings.Contains(w, "driver = "+d+" is not a known driver") {
			t.Errorf("driver = %s: warnings %q", d, w)
		}
		if c.Notifications.Messaging() {
			t.Errorf("driver = %s counts as a messaging driver", d)
		}
	}
}
