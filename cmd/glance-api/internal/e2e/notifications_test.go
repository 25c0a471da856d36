package e2e

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// rabbitAddr is the RabbitMQ the notification tests use
// (scripts/ensure-rabbitmq.sh provides it, with guest/guest).
const rabbitAddr = "127.0.0.1:5672"

// notification is one message read from RabbitMQ, envelope opened.
type notification struct {
	delivery amqp.Delivery
	msg      map[string]any // the oslo.message
	payload  map[string]any // nil when the payload is not an object
}

func (n notification) eventType() string { s, _ := n.msg["event_type"].(string); return s }

// busConsumer reads the notifications of one test from RabbitMQ: its own
// exchange (control_exchange) and topic, so that runs side by side and
// other users of the broker do not mix.
type busConsumer struct {
	exchange, topic string
	conn            *amqp.Connection
	ch              *amqp.Channel
	info, errs      <-chan amqp.Delivery
	seen            map[string]bool // _unique_id of the messages read
}

// newBusConsumer connects to RabbitMQ as guest, declares the exchange and
// the <topic>.info and <topic>.error queues as our server does, and
// consumes both. It skips t without RabbitMQ (fails under
// GLANCE_TEST_STRICT). The queues and the exchange go when t ends.
func newBusConsumer(t *testing.T) *busConsumer {
	t.Helper()
	if suite.bin == "" {
		t.Skip("needs our own server configured with a RabbitMQ transport")
	}
	conn, err := amqp.Dial("amqp://guest:guest@" + rabbitAddr + "/")
	if err != nil {
		strictSkip(t, "no RabbitMQ at "+rabbitAddr+" with guest/guest (scripts/ensure-rabbitmq.sh starts one): "+err.Error())
	}
	id := "glance-e2e-" + runID + "-" + randHex(3)
	b := &busConsumer{exchange: id, topic: id + "-notifications", conn: conn, seen: map[string]bool{}}
	t.Cleanup(func() {
		if ch, err := conn.Channel(); err == nil {
			ch.QueueDelete(b.topic+".info", false, false, false)
			ch.QueueDelete(b.topic+".error", false, false, false)
			ch.ExchangeDelete(b.exchange, false, false)
		}
		conn.Close()
	})
	if b.ch, err = conn.Channel(); err != nil {
		t.Fatal(err)
	}
	if err := b.ch.ExchangeDeclare(b.exchange, "topic", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	consume := func(prio string) <-chan amqp.Delivery {
		q := b.topic + "." + prio
		if _, err := b.ch.QueueDeclare(q, false, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
		if err := b.ch.QueueBind(q, q, b.exchange, false, nil); err != nil {
			t.Fatal(err)
		}
		d, err := b.ch.Consume(q, "", true, true, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	b.info, b.errs = consume("info"), consume("error")
	return b
}

// conf is the configuration of a server on port that notifies through
// the broker at addr to the consumer's exchange and topic.
func (b *busConsumer) conf(dir string, port int, addr, publisher string) string {
	return fmt.Sprintf(`[DEFAULT]
bind_host = 127.0.0.1
bind_port = %d
default_publisher_id = %s
control_exchange = %s

[database]
connection = sqlite:///%s

[glance_store]
filesystem_store_datadir = %s

[paste_deploy]
flavor = trusted-auth

[oslo_messaging_notifications]
driver = messagingv2
transport_url = rabbit://guest:guest@%s/
topics = %s

[oslo_messaging_rabbit]
rabbit_retry_interval = 1
rabbit_retry_backoff = 0
`, port, publisher, b.exchange, filepath.Join(dir, "g.sqlite"), filepath.Join(dir, "images"), addr, b.topic)
}

// next returns the next notification of priority info, failing t when
// none comes within a minute. Like oslo.messaging's listeners, it skips a
// message whose _unique_id it has seen: a message whose confirmation the
// broker could not send before the connection broke is sent again.
func (b *busConsumer) next(t *testing.T) notification {
	t.Helper()
	return b.read(t, b.info, "info")
}

func (b *busConsumer) read(t *testing.T, from <-chan amqp.Delivery, prio string) notification {
	t.Helper()
	for {
		n := b.read1(t, from, prio)
		u, _ := n.msg["_unique_id"].(string)
		if !b.seen[u] {
			b.seen[u] = true
			return n
		}
	}
}

func (b *busConsumer) read1(t *testing.T, from <-chan amqp.Delivery, prio string) notification {
	t.Helper()
	select {
	case d, ok := <-from:
		if !ok {
			t.Fatalf("the %s.%s consumer was closed", b.topic, prio)
		}
		var env map[string]any
		if err := json.Unmarshal(d.Body, &env); err != nil {
			t.Fatalf("body is not JSON: %v: %s", err, clip(d.Body))
		}
		if len(env) != 2 || env["oslo.version"] != "2.0" {
			t.Fatalf("not an oslo.messaging 2.0 envelope: %s", clip(d.Body))
		}
		inner, ok := env["oslo.message"].(string)
		if !ok {
			t.Fatalf("oslo.message is not a JSON string: %s", clip(d.Body))
		}
		n := notification{delivery: d}
		if err := json.Unmarshal([]byte(inner), &n.msg); err != nil {
			t.Fatalf("oslo.message is not a JSON object: %v: %s", err, inner)
		}
		n.payload, _ = n.msg["payload"].(map[string]any)
		return n
	case <-time.After(time.Minute):
		t.Fatalf("no notification on %s.%s within a minute", b.topic, prio)
	}
	panic("unreachable")
}

var (
	uuidRE      = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	hex32RE     = regexp.MustCompile(`^[0-9a-f]{32}$`)
	osloTimeRE  = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{6})?$`)
	isoTimeRE   = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)
	imageFields = []string{"id", "name", "status", "created_at", "updated_at", "min_disk", "min_ram", "protected", "checksum",
		"owner", "disk_format", "container_format", "size", "virtual_size", "is_public", "visibility", "properties", "tags",
		"deleted", "deleted_at"}
)

// expect checks that n is eventType at priority prio, as oslo.messaging
// sends it: AMQP properties, routing key, exchange and envelope fields.
func (b *busConsumer) expect(t *testing.T, n notification, eventType, prio, publisher string) {
	t.Helper()
	d := n.delivery
	if got := n.eventType(); got != eventType {
		t.Fatalf("got %s, want %s; message %v", got, eventType, n.msg)
	}
	if d.Exchange != b.exchange || d.RoutingKey != b.topic+"."+strings.ToLower(prio) {
		t.Errorf("%s: exchange %q routing key %q", eventType, d.Exchange, d.RoutingKey)
	}
	if d.ContentType != "application/json" || d.ContentEncoding != "utf-8" || d.DeliveryMode != amqp.Persistent || d.Priority != 0 {
		t.Errorf("%s: content type %q encoding %q delivery mode %d priority %d", eventType, d.ContentType, d.ContentEncoding, d.DeliveryMode, d.Priority)
	}
	m := n.msg
	if id, _ := m["message_id"].(string); !uuidRE.MatchString(id) {
		t.Errorf("%s: message_id %v", eventType, m["message_id"])
	}
	if u, _ := m["_unique_id"].(string); !hex32RE.MatchString(u) {
		t.Errorf("%s: _unique_id %v", eventType, m["_unique_id"])
	}
	if ts, _ := m["timestamp"].(string); !osloTimeRE.MatchString(ts) {
		t.Errorf("%s: timestamp %v, want Python's str(datetime)", eventType, m["timestamp"])
	}
	if m["publisher_id"] != publisher || m["priority"] != prio {
		t.Errorf("%s: publisher_id %v priority %v", eventType, m["publisher_id"], m["priority"])
	}
	if len(m) != 7 {
		t.Errorf("%s: message keys %v, want message_id publisher_id event_type priority payload timestamp _unique_id", eventType, keys(m))
	}
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// imagePayload checks the fields of format_image_notification and the
// values given in want.
func imagePayload(t *testing.T, n notification, want map[string]any) {
	t.Helper()
	p := n.payload
	if p == nil {
		t.Fatalf("%s: payload %v is not an object", n.eventType(), n.msg["payload"])
	}
	for _, f := range imageFields {
		if _, ok := p[f]; !ok {
			t.Errorf("%s: payload has no %s: %v", n.eventType(), f, p)
		}
	}
	if _, ok := p["locations"]; ok {
		t.Errorf("%s: payload shows the locations", n.eventType())
	}
	for _, f := range []string{"created_at", "updated_at"} {
		if s, _ := p[f].(string); !isoTimeRE.MatchString(s) {
			t.Errorf("%s: %s = %v", n.eventType(), f, p[f])
		}
	}
	payloadHas(t, n, want)
}

func payloadHas(t *testing.T, n notification, want map[string]any) {
	t.Helper()
	for k, v := range want {
		got, _ := json.Marshal(n.payload[k])
		w, _ := json.Marshal(v)
		if string(got) != string(w) {
			t.Errorf("%s: payload %s = %s, want %s", n.eventType(), k, got, w)
		}
	}
}

// TestNotificationsLifeCycle drives an image through its life and reads,
// from RabbitMQ, the notifications Glance sends for each step.
func TestNotificationsLifeCycle(t *testing.T) {
	bus := newBusConsumer(t)
	dir := filepath.Join(suite.tmp, "notify-"+randHex(3))
	if err := os.MkdirAll(filepath.Join(dir, "images"), 0o755); err != nil {
		t.Fatal(err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	publisher := "image.e2e-" + runID
	p := startConf(t, dir, bus.conf(dir, port, rabbitAddr, publisher), port)
	srv := &server{URL: p.url, Trusted: true}
	read := 0
	expect := func(eventType string) notification {
		t.Helper()
		n := bus.next(t)
		read++
		bus.expect(t, n, eventType, "INFO", publisher)
		return n
	}

	name := uniq("notify")
	img := srv.createImage(t, tenantA, map[string]any{"name": name, "disk_format": "raw", "container_format": "bare",
		"visibility": "shared", "e2e_prop": "v1"})
	id := img["id"].(string)
	base := map[string]any{"id": id, "owner": tenantA.Project, "visibility": "shared", "is_public": false,
		"disk_format": "raw", "container_format": "bare", "min_disk": 0, "min_ram": 0, "protected": false,
		"deleted": false, "deleted_at": nil}
	with := func(extra map[string]any) map[string]any {
		m := map[string]any{}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	imagePayload(t, expect("image.create"), with(map[string]any{"name": name, "status": "queued", "size": nil,
		"checksum": nil, "properties": map[string]any{"e2e_prop": "v1"}, "tags": []string{}}))

	data := randomBytes(3000)
	sum := md5.Sum(data)
	checksum := hex.EncodeToString(sum[:])
	srv.upload(t, tenantA, id, data)
	imagePayload(t, expect("image.update"), with(map[string]any{"status": "saving"}))
	prep := expect("image.prepare")
	imagePayload(t, prep, with(nil))
	payloadHas(t, prep, map[string]any{"os_glance_importing_to_stores": []string{}, "os_glance_failed_import": []string{}})
	up := expect("image.upload")
	imagePayload(t, up, with(map[string]any{"status": "active", "size": len(data), "checksum": checksum}))
	payloadHas(t, up, map[string]any{"os_glance_importing_to_stores": []string{}, "os_glance_failed_import": []string{}})
	imagePayload(t, expect("image.activate"), with(map[string]any{"status": "active", "size": len(data), "checksum": checksum}))
	imagePayload(t, expect("image.update"), with(map[string]any{"status": "active"}))

	renamed := name + "-renamed"
	srv.patch(t, tenantA, id, op{Op: "replace", Path: "/name", Value: renamed},
		op{Op: "add", Path: "/e2e_prop2", Value: "v2"}).want(t, http.StatusOK)
	imagePayload(t, expect("image.update"), with(map[string]any{"name": renamed, "status": "active",
		"properties": map[string]any{"e2e_prop": "v1", "e2e_prop2": "v2"}}))
	srv.do(t, tenantA, http.MethodPut, "/v2/images/"+id+"/tags/blue", nil).want(t, http.StatusNoContent)
	imagePayload(t, expect("image.update"), with(map[string]any{"name": renamed, "tags": []string{"blue"}}))

	srv.do(t, tenantA, http.MethodPost, "/v2/images/"+id+"/members", map[string]any{"member": tenantB.Project}).want(t, http.StatusOK)
	mb := expect("image.member.create")
	payloadHas(t, mb, map[string]any{"image_id": id, "member_id": tenantB.Project, "status": "pending", "deleted": false, "deleted_at": nil})
	srv.do(t, tenantB, http.MethodPut, "/v2/images/"+id+"/members/"+tenantB.Project, map[string]any{"status": "accepted"}).want(t, http.StatusOK)
	payloadHas(t, expect("image.member.update"), map[string]any{"image_id": id, "member_id": tenantB.Project, "status": "accepted", "deleted": false})
	srv.do(t, tenantA, http.MethodDelete, "/v2/images/"+id+"/members/"+tenantB.Project, nil).want(t, http.StatusNoContent)
	del := expect("image.member.delete")
	payloadHas(t, del, map[string]any{"image_id": id, "member_id": tenantB.Project, "deleted": true})
	if s, _ := del.payload["deleted_at"].(string); !isoTimeRE.MatchString(s) {
		t.Errorf("image.member.delete: deleted_at %v", del.payload["deleted_at"])
	}

	got := srv.do(t, tenantA, http.MethodGet, "/v2/images/"+id+"/file", nil).want(t, http.StatusOK)
	if string(got.Body) != string(data) {
		t.Fatal("the download differs from the upload")
	}
	payloadHas(t, expect("image.send"), map[string]any{"bytes_sent": len(data), "image_id": id, "owner_id": tenantA.Project,
		"receiver_tenant_id": tenantA.Project, "receiver_user_id": tenantA.User})

	srv.do(t, tenantA, http.MethodDelete, "/v2/images/"+id, nil).want(t, http.StatusNoContent)
	gone := expect("image.delete")
	want := with(map[string]any{"name": renamed, "status": "deleted", "deleted": true})
	delete(want, "deleted_at")
	imagePayload(t, gone, want)
	if s, _ := gone.payload["deleted_at"].(string); !isoTimeRE.MatchString(s) {
		t.Errorf("image.delete: deleted_at %v", gone.payload["deleted_at"])
	}
	select {
	case d := <-bus.errs:
		t.Errorf("unexpected ERROR notification: %s", clip(d.Body))
	default:
	}

	// The sink sends one message at a time, awaiting the broker's
	// confirmation: every message read but the last is counted by now.
	m := scrape(t, p.url)
	if got := m["glance_notifications_published_total"]; got < float64(read-1) || got > float64(read) {
		t.Errorf("glance_notifications_published_total %v after %d messages read", got, read)
	}
	for _, name := range []string{"glance_notifications_retried_total", "glance_notifications_dropped_total",
		"glance_notifications_undelivered_total"} {
		if got, ok := m[name]; !ok || got != 0 {
			t.Errorf("%s %v (exported: %v), want 0", name, got, ok)
		}
	}
	if m["glance_notifications_connected"] != 1 || m["glance_notifications_queued"] > 1 {
		t.Errorf("glance_notifications_connected %v, _queued %v: want 1 and at most the last message",
			m["glance_notifications_connected"], m["glance_notifications_queued"])
	}
}

// awaitMetrics scrapes the metrics at url until ok accepts them, failing t
// with what the last scrape showed when a minute passes first.
func awaitMetrics(t *testing.T, url, what string, ok func(m map[string]float64) bool) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		m := scrape(t, url)
		if ok(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("the metrics never showed %s: %v", what, filterGlance(m))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// tcpProxy forwards 127.0.0.1:<port> to a target; cut closes the
// listener and every live connection, as a broker that goes away does.
type tcpProxy struct {
	addr, target string
	mu           sync.Mutex
	ln           net.Listener
	conns        map[net.Conn]bool
}

// newTCPProxy reserves a loopback port for a proxy to target; it does not
// listen until up.
func newTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{addr: fmt.Sprintf("127.0.0.1:%d", port), target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(p.cut)
	return p
}

func (p *tcpProxy) up(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatalf("proxy listen %s: %v", p.addr, err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.forward(c)
		}
	}()
}

func (p *tcpProxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		return false
	}
	for _, c := range cs {
		p.conns[c] = true
	}
	return true
}

func (p *tcpProxy) forward(c net.Conn) {
	u, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	if !p.track(c, u) {
		c.Close()
		u.Close()
		return
	}
	go func() { io.Copy(u, c); u.Close(); c.Close() }()
	io.Copy(c, u)
	c.Close()
	u.Close()
}

func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]bool{}
}

// startThroughProxy starts a server whose broker is reached through a
// proxy to the local RabbitMQ.
func startThroughProxy(t *testing.T, bus *busConsumer, proxy *tcpProxy, publisher string) (*server, *process) {
	t.Helper()
	dir := filepath.Join(suite.tmp, "notify-"+randHex(3))
	if err := os.MkdirAll(filepath.Join(dir, "images"), 0o755); err != nil {
		t.Fatal(err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	p := startConf(t, dir, bus.conf(dir, port, proxy.addr, publisher), port)
	return &server{URL: p.url, Trusted: true}, p
}

// TestNotificationsBrokerOutage cuts the way to RabbitMQ under a running
// server: the API goes on answering, the events wait, and they arrive, in
// order, once the broker is back.
func TestNotificationsBrokerOutage(t *testing.T) {
	bus := newBusConsumer(t)
	proxy := newTCPProxy(t, rabbitAddr)
	proxy.up(t)
	publisher := "image.e2e-outage-" + runID
	srv, p := startThroughProxy(t, bus, proxy, publisher)

	first := srv.rawImage(t, tenantA, nil)
	n := bus.next(t)
	bus.expect(t, n, "image.create", "INFO", publisher)
	payloadHas(t, n, map[string]any{"id": first["id"]})

	proxy.cut()
	img := srv.rawImage(t, tenantA, nil)
	id := img["id"].(string)
	srv.patch(t, tenantA, id, op{Op: "replace", Path: "/name", Value: "during-outage"}).want(t, http.StatusOK)
	srv.do(t, tenantA, http.MethodPut, "/v2/images/"+id+"/tags/outage", nil).want(t, http.StatusNoContent)
	srv.do(t, tenantA, http.MethodGet, "/v2/images/"+id, nil).want(t, http.StatusOK)
	srv.do(t, tenantA, http.MethodDelete, "/v2/images/"+id, nil).want(t, http.StatusNoContent)

	// The four events wait (with the first, if its confirmation was cut
	// off) while the sink tries the broker again.
	m := awaitMetrics(t, p.url, "a retry", func(m map[string]float64) bool {
		return m["glance_notifications_retried_total"] > 0
	})
	if q := m["glance_notifications_queued"]; q < 4 || q > 5 || m["glance_notifications_connected"] != 0 {
		t.Errorf("during the outage: glance_notifications_queued %v (want 4 or 5), _connected %v (want 0)", q,
			m["glance_notifications_connected"])
	}
	retried := m["glance_notifications_retried_total"]

	proxy.up(t)
	for _, want := range []string{"image.create", "image.update", "image.update", "image.delete"} {
		n := bus.next(t)
		bus.expect(t, n, want, "INFO", publisher)
		payloadHas(t, n, map[string]any{"id": id})
	}
	m = awaitMetrics(t, p.url, "the queue sent", func(m map[string]float64) bool {
		return m["glance_notifications_queued"] == 0 && m["glance_notifications_published_total"] >= 5
	})
	if m["glance_notifications_connected"] != 1 || m["glance_notifications_retried_total"] < retried ||
		m["glance_notifications_dropped_total"] != 0 || m["glance_notifications_undelivered_total"] != 0 {
		t.Errorf("after the outage: %v", filterGlance(m))
	}
	if log := tail(p.log); !regexp.MustCompile(`level=WARN msg=".*(RabbitMQ|reconnecting).*notifier=rabbit`).MatchString(log) {
		t.Errorf("the server did not report the lost broker:\n%s", log)
	}
}

// TestNotificationsBrokerDownAtStart starts a server while RabbitMQ is
// unreachable: it starts and serves, and the events it queued arrive once
// the broker can be reached.
func TestNotificationsBrokerDownAtStart(t *testing.T) {
	bus := newBusConsumer(t)
	proxy := newTCPProxy(t, rabbitAddr) // not listening yet
	publisher := "image.e2e-down-" + runID
	srv, _ := startThroughProxy(t, bus, proxy, publisher)

	img := srv.rawImage(t, tenantA, nil)
	srv.patch(t, tenantA, img["id"].(string), op{Op: "add", Path: "/e2e_note", Value: "queued"}).want(t, http.StatusOK)

	proxy.up(t)
	for _, want := range []string{"image.create", "image.update"} {
		n := bus.next(t)
		bus.expect(t, n, want, "INFO", publisher)
		payloadHas(t, n, map[string]any{"id": img["id"]})
	}
}
