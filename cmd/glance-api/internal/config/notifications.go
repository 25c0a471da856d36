package config

import (
	"fmt"
	"sort"
	"strings"

	"github.com/glance-go/glance-go/domain"
	"github.com/glance-go/glance-go/proxies/notifier/rabbit"
)

// NotificationsConfig is where notifications go: [oslo_messaging_notifications],
// the RabbitMQ options of [oslo_messaging_rabbit], and [DEFAULT]
// transport_url and control_exchange.
type NotificationsConfig struct {
	// Driver is driver, a multi-valued option (one value per assignment,
	// in every file): noop (or none) drops notifications; log writes them
	// as JSON lines to standard error; messaging and messagingv2 publish
	// them to RabbitMQ without and with oslo.messaging's 2.0 envelope;
	// routing sends nothing (see docs/compatibility.md).
	Driver []string
	// TransportURL is [oslo_messaging_notifications] transport_url; ""
	// falls back to DefaultTransportURL (see URL).
	TransportURL string
	// DefaultTransportURL is [DEFAULT] transport_url, rabbit:// by default.
	DefaultTransportURL string
	// Topics is topics, [notifications] by default.
	Topics []string
	// Retry is retry: how often a message is sent again after a failure;
	// -1 (the default) until it is sent, 0 never.
	Retry int
	// ControlExchange is [DEFAULT] control_exchange, Glance's default
	// glance.
	ControlExchange string
	// RoutingConfig is routing_config, the routing driver's file.
	RoutingConfig string
	// Rabbit is [oslo_messaging_rabbit].
	Rabbit RabbitConfig
	// QueueSize is [glance_go] notification_queue_size (glance-go's own):
	// how many messages wait for the broker before new ones are dropped.
	QueueSize int
}

// RabbitConfig is the part of [oslo_messaging_rabbit] glance-go reads.
type RabbitConfig struct {
	AMQPDurableQueues         bool   // amqp_durable_queues
	AMQPAutoDelete            bool   // amqp_auto_delete
	HAQueues                  bool   // rabbit_ha_queues
	QuorumQueue               bool   // rabbit_quorum_queue
	QuorumDeliveryLimit       int    // rabbit_quorum_delivery_limit
	QuorumMaxMemoryLength     int    // rabbit_quorum_max_memory_length
	QuorumMaxMemoryBytes      int    // rabbit_quorum_max_memory_bytes
	RetryInterval             int    // rabbit_retry_interval, seconds
	RetryBackoff              int    // rabbit_retry_backoff, seconds
	IntervalMax               int    // rabbit_interval_max, seconds
	HeartbeatTimeoutThreshold int    // heartbeat_timeout_threshold, seconds; 0 disables heartbeats
	LoginMethod               string // rabbit_login_method
}

// defaultNotifications returns oslo.messaging's and Glance's defaults.
func defaultNotifications() NotificationsConfig {
	return NotificationsConfig{
		DefaultTransportURL: "rabbit://",
		Topics:              []string{"notifications"},
		Retry:               -1,
		ControlExchange:     "glance",
		QueueSize:           1000,
		Rabbit: RabbitConfig{
			RetryInterval:             1,
			RetryBackoff:              2,
			IntervalMax:               30,
			HeartbeatTimeoutThreshold: 60,
			LoginMethod:               "AMQPLAIN",
		},
	}
}

func init() {
	n := func(f func(n *NotificationsConfig) any) func(c *Config) any {
		return func(c *Config) any { return f(&c.Notifications) }
	}
	r := func(f func(r *RabbitConfig) any) func(c *Config) any {
		return func(c *Config) any { return f(&c.Notifications.Rabbit) }
	}
	const sec, rsec = "oslo_messaging_notifications", "oslo_messaging_rabbit"
	options = append(options,
		option{sec, "transport_url", nil, n(func(n *NotificationsConfig) any { return &n.TransportURL })},
		option{sec, "topics", nil, n(func(n *NotificationsConfig) any { return &n.Topics })},
		option{sec, "retry", nil, n(func(n *NotificationsConfig) any { return &n.Retry })},
		option{sec, "routing_config", nil, n(func(n *NotificationsConfig) any { return &n.RoutingConfig })},
		option{"DEFAULT", "transport_url", nil, n(func(n *NotificationsConfig) any { return &n.DefaultTransportURL })},
		option{"DEFAULT", "control_exchange", nil, n(func(n *NotificationsConfig) any { return &n.ControlExchange })},
		option{"glance_go", "notification_queue_size", nil, n(func(n *NotificationsConfig) any { return &n.QueueSize })},
		option{rsec, "amqp_durable_queues", nil, r(func(r *RabbitConfig) any { return &r.AMQPDurableQueues })},
		option{rsec, "amqp_auto_delete", nil, r(func(r *RabbitConfig) any { return &r.AMQPAutoDelete })},
		option{rsec, "rabbit_ha_queues", nil, r(func(r *RabbitConfig) any { return &r.HAQueues })},
		option{rsec, "rabbit_quorum_queue", nil, r(func(r *RabbitConfig) any { return &r.QuorumQueue })},
		option{rsec, "rabbit_quorum_delivery_limit", nil, r(func(r *RabbitConfig) any { return &r.QuorumDeliveryLimit })},
		option{rsec, "rabbit_quorum_max_memory_length", nil, r(func(r *RabbitConfig) any { return &r.QuorumMaxMemoryLength })},
		option{rsec, "rabbit_quorum_max_memory_bytes", nil, r(func(r *RabbitConfig) any { return &r.QuorumMaxMemoryBytes })},
		option{rsec, "rabbit_retry_interval", nil, r(func(r *RabbitConfig) any { return &r.RetryInterval })},
		option{rsec, "rabbit_retry_backoff", nil, r(func(r *RabbitConfig) any { return &r.RetryBackoff })},
		option{rsec, "rabbit_interval_max", nil, r(func(r *RabbitConfig) any { return &r.IntervalMax })},
		option{rsec, "heartbeat_timeout_threshold", nil, r(func(r *RabbitConfig) any { return &r.HeartbeatTimeoutThreshold })},
		option{rsec, "rabbit_login_method", nil, r(func(r *RabbitConfig) any { return &r.LoginMethod })},
	)
}

// notificationDrivers are the driver names oslo.messaging knows.
var notificationDrivers = map[string]bool{"messaging": true, "messagingv2": true, "log": true, "noop": true, "routing": true}

// notificationOptions reads driver, a MultiStrOpt: every assignment in
// every file adds one driver.
func (l *loader) notificationOptions(c *Config) error {
	ds, err := l.multi("oslo_messaging_notifications", "driver")
	if err != nil {
		return err
	}
	for _, d := range ds {
		if d = strings.TrimSpace(d); d != "" {
			c.Notifications.Driver = append(c.Notifications.Driver, d)
		}
	}
	if e, ok := l.find("oslo_messaging_notifications", "driver"); ok {
		c.origin["oslo_messaging_notifications driver"] = e
	}
	if e, ok := l.find("oslo_messaging_notifications", "transport_url"); ok && c.Notifications.TransportURL != "" {
		c.origin["oslo_messaging_notifications transport_url"] = e
	}
	return nil
}

// URL is the transport URL notifications use: [oslo_messaging_notifications]
// transport_url, else [DEFAULT] transport_url.
func (n NotificationsConfig) URL() string {
	if n.TransportURL != "" {
		return n.TransportURL
	}
	return n.DefaultTransportURL
}

// Messaging tells whether a driver publishes to the message bus.
func (n NotificationsConfig) Messaging() bool {
	for _, d := range n.Driver {
		if d == "messaging" || d == "messagingv2" {
			return true
		}
	}
	return false
}

// checkNotifications checks the notification options.
func (c *Config) checkNotifications() error {
	n := c.Notifications
	r := n.Rabbit
	checks := []struct {
		section, option string
		value           any
		bad             string
	}{
		{"oslo_messaging_notifications", "topics", n.Topics, checkChoices(n.Topics, nil)},
		{"oslo_messaging_notifications", "retry", n.Retry, inRange(int64(n.Retry), -1, 1<<30)},
		{"DEFAULT", "control_exchange", n.ControlExchange, nonEmpty(n.ControlExchange)},
		{"glance_go", "notification_queue_size", n.QueueSize, inRange(int64(n.QueueSize), 1, 1<<24)},
		{"oslo_messaging_rabbit", "rabbit_retry_interval", r.RetryInterval, inRange(int64(r.RetryInterval), 1, 1<<20)},
		{"oslo_messaging_rabbit", "rabbit_retry_backoff", r.RetryBackoff, inRange(int64(r.RetryBackoff), 0, 1<<20)},
		{"oslo_messaging_rabbit", "rabbit_interval_max", r.IntervalMax, inRange(int64(r.IntervalMax), 1, 1<<20)},
		{"oslo_messaging_rabbit", "heartbeat_timeout_threshold", r.HeartbeatTimeoutThreshold, inRange(int64(r.HeartbeatTimeoutThreshold), 0, 1<<20)},
		{"oslo_messaging_rabbit", "rabbit_login_method", r.LoginMethod, oneOf(strings.ToUpper(r.LoginMethod), "AMQPLAIN", "PLAIN")},
	}
	for _, ck := range checks {
		if ck.bad != "" {
			return c.fieldError(ck.section, ck.option, ck.value, "%s", ck.bad)
		}
	}
	if r.QuorumQueue && r.HAQueues {
		return domain.Errorf(domain.ErrInvalid, "[oslo_messaging_rabbit] rabbit_quorum_queue and rabbit_ha_queues are both enabled: a queue is quorum or HA (mirrored), not both")
	}
	if !n.Messaging() {
		return nil
	}
	if _, err := rabbit.ParseTransportURL(n.URL()); err != nil {
		where, opt := "", "[DEFAULT] transport_url"
		key := "DEFAULT transport_url"
		if n.TransportURL != "" {
			key, opt = "oslo_messaging_notifications transport_url", "[oslo_messaging_notifications] transport_url"
		}
		if e, ok := c.origin[key]; ok {
			where = e.where() + ": "
		}
		return domain.Errorf(domain.ErrInvalid, "%s%s = %q: %v", where, opt, rabbit.Redact(n.URL()), err)
	}
	return nil
}

func nonEmpty(s string) string {
	if strings.TrimSpace(s) == "" {
		return "must not be empty"
	}
	return ""
}

// NotificationWarnings are the startup notes about notification options
// glance-go reads but does not act on as oslo.messaging would.
func (c *Config) NotificationWarnings() []string {
	var out []string
	n := c.Notifications
	for _, d := range n.Driver {
		switch {
		case d == "routing":
			out = append(out, "[oslo_messaging_notifications] driver = routing is not supported: notifications routed by "+
				"routing_config are not sent; use messagingv2, messaging or log")
		case !notificationDrivers[d]:
			// oslo.messaging loads the drivers it finds and leaves out the
			// others with a warning; so does glance-go.
			names := make([]string, 0, len(notificationDrivers))
			for k := range notificationDrivers {
				names = append(names, k)
			}
			sort.Strings(names)
			out = append(out, fmt.Sprintf("[oslo_messaging_notifications] driver = %s is not a known driver (known: %s; "+
				"several drivers are several driver = lines): it sends nothing", d, strings.Join(names, ", ")))
		}
	}
	if n.Messaging() {
		if u, err := rabbit.ParseTransportURL(n.URL()); err == nil && len(u.Query) > 0 {
			keys := make([]string, 0, len(u.Query))
			for k := range u.Query {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			out = append(out, fmt.Sprintf("transport_url query options are ignored: %s", strings.Join(keys, ", ")))
		}
	}
	return out
}
