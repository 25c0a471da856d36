package rabbit_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/glance-go/glance-go/proxies/notifier"
	"github.com/glance-go/glance-go/proxies/notifier/rabbit"
)

// deadURL is a transport URL on a loopback port nobody listens on.
func deadURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "rabbit://guest:guest@" + addr + "/"
}

func ev(typ string) notifier.Event {
	return notifier.Event{EventType: typ, Priority: "INFO", PublisherID: "image.test", MessageID: typ, Timestamp: time.Now(), Payload: map[string]any{"id": typ}}
}

// eventually polls cond until it holds or a minute has passed.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("gave up waiting for %s", what)
}

func TestFullQueueDrops(t *testing.T) {
	s, start, err := rabbit.NewIdle(rabbit.Config{URL: deadURL(t), QueueSize: 2, Retry: 0, RetryInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := s.Emit(context.Background(), ev(fmt.Sprint("image.e", i))); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.Stats(); got.Dropped != 3 || got.Queued != 2 || got.Published != 0 {
		t.Fatalf("after 5 events on a queue of 2: %+v", got)
	}
	start()
	// With retry = 0, each queued message gets one attempt on the dead
	// broker and is then given up.
	eventually(t, "the queued messages to be given up", func() bool { return s.Stats().Undelivered == 2 })
	if got := s.Stats(); got.Retried != 0 || got.Queued != 0 || got.Connected {
		t.Errorf("after giving up: %+v", got)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.Emit(context.Background(), ev("image.late"))
	if got := s.Stats(); got.Dropped != 4 {
		t.Errorf("an event after Close was not dropped: %+v", got)
	}
}

func TestRetriesUsedUp(t *testing.T) {
	s, err := rabbit.New(rabbit.Config{URL: deadURL(t), Retry: 3, RetryInterval: time.Millisecond, IntervalMax: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	s.Emit(context.Background(), ev("image.create"))
	eventually(t, "the message to be given up", func() bool { return s.Stats().Undelivered == 1 })
	if got := s.Stats(); got.Retried != 3 || got.Dropped != 0 {
		t.Errorf("after 1 + 3 attempts: %+v", got)
	}
}

func TestTopicsAndFormatsMultiply(t *testing.T) {
	s, _, err := rabbit.NewIdle(rabbit.Config{URL: deadURL(t), QueueSize: 10,
		Topics: []string{"a", "b"}, Formats: []rabbit.Format{rabbit.FormatV1, rabbit.FormatV2}})
	if err != nil {
		t.Fatal(err)
	}
	s.Emit(context.Background(), ev("image.create"))
	if got := s.Stats().Queued; got != 4 {
		t.Errorf("one event on 2 topics in 2 formats queued %d messages, want 4", got)
	}
}

func TestCloseGivesUpAtDeadline(t *testing.T) {
	s, err := rabbit.New(rabbit.Config{URL: deadURL(t), Retry: -1, RetryInterval: time.Millisecond, IntervalMax: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		s.Emit(context.Background(), ev("image.update"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := s.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close with an unreachable broker = %v, want the deadline", err)
	}
	if got := s.Stats(); got.Undelivered != 3 || got.Queued != 0 || got.Published != 0 {
		t.Errorf("after Close: %+v", got)
	}
}

func TestConfigRefused(t *testing.T) {
	for _, cfg := range []rabbit.Config{
		{URL: "amqp://h/"},
		{URL: "rabbit://h/", LoginMethod: "EXTERNAL"},
		{URL: "rabbit://h/", HAQueues: true, QuorumQueues: true},
	} {
		if s, err := rabbit.New(cfg); err == nil {
			s.Close(context.Background())
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

// brokerURL is the RabbitMQ of GLANCE_TEST_RABBIT_URL, or the local one.
func brokerURL() string {
	if u := os.Getenv("GLANCE_TEST_RABBIT_URL"); u != "" {
		return u
	}
	return "amqp://guest:guest@127.0.0.1:5672/"
}

func dialBroker(t *testing.T) *amqp.Connection {
	t.Helper()
	conn, err := amqp.Dial(brokerURL())
	if err != nil {
		why := "no RabbitMQ at " + brokerURL() + " (scripts/ensure-rabbitmq.sh starts one): " + err.Error()
		if os.Getenv("GLANCE_TEST_STRICT") != "" {
			t.Fatal(why + " (GLANCE_TEST_STRICT is set)")
		}
		t.Skip(why)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestBroker publishes to the real broker and reads back what a consumer
// of Glance's notifications sees: the exchange and default queue the sink
// declares, the routing key, the properties and the envelope.
func TestBroker(t *testing.T) {
	conn := dialBroker(t)
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("glance-go-unit-%d-%d", os.Getpid(), time.Now().UnixNano())
	t.Cleanup(func() {
		ch.QueueDelete(id+".info", false, false, false)
		ch.ExchangeDelete(id, false, false)
	})
	s, err := rabbit.New(rabbit.Config{URL: "rabbit://guest:guest@127.0.0.1:5672/", Exchange: id, Topics: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		s.Emit(context.Background(), ev(fmt.Sprint("image.e", i)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatalf("Close: %v (%+v)", err, s.Stats())
	}
	if got := s.Stats(); got.Published != 3 || got.Dropped+got.Undelivered != 0 {
		t.Fatalf("stats %+v", got)
	}
	// Nobody consumed: the default queue the sink declared kept them.
	for i := range 3 {
		d, ok, err := ch.Get(id+".info", true)
		if err != nil || !ok {
			t.Fatalf("message %d: ok %v, %v", i, ok, err)
		}
		if d.Exchange != id || d.RoutingKey != id+".info" || d.ContentType != "application/json" ||
			d.ContentEncoding != "utf-8" || d.DeliveryMode != amqp.Persistent {
			t.Errorf("delivery exchange %q key %q type %q encoding %q mode %d", d.Exchange, d.RoutingKey, d.ContentType, d.ContentEncoding, d.DeliveryMode)
		}
		var env map[string]string
		if err := json.Unmarshal(d.Body, &env); err != nil || env["oslo.version"] != "2.0" {
			t.Fatalf("envelope %s: %v", d.Body, err)
		}
		var msg map[string]any
		if err := json.Unmarshal([]byte(env["oslo.message"]), &msg); err != nil {
			t.Fatal(err)
		}
		if msg["event_type"] != fmt.Sprint("image.e", i) || msg["priority"] != "INFO" || msg["publisher_id"] != "image.test" {
			t.Errorf("message %d: %v", i, msg)
		}
	}
	q, err := ch.QueueDeclarePassive(id+".info", false, false, false, false, nil)
	if err != nil || q.Messages != 0 {
		t.Errorf("queue after reading: %+v %v", q, err)
	}
}

// TestBrokerExistingExchange publishes to an exchange another service
// declared with the other durability: the sink adopts it and its default
// queue gets the same durability.
func TestBrokerExistingExchange(t *testing.T) {
	conn := dialBroker(t)
	for _, durable := range []bool{true, false} {
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprintf("glance-go-unit-x-%d-%d", os.Getpid(), time.Now().UnixNano())
		if err := ch.ExchangeDeclare(id, "topic", durable, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ch.QueueDelete(id+".info", false, false, false)
			ch.ExchangeDelete(id, false, false)
		})
		s, err := rabbit.New(rabbit.Config{URL: "rabbit://guest:guest@127.0.0.1:5672/", Exchange: id, Topics: []string{id}, Durable: !durable})
		if err != nil {
			t.Fatal(err)
		}
		s.Emit(context.Background(), ev("image.create"))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = s.Close(ctx)
		cancel()
		if err != nil || s.Stats().Published != 1 {
			t.Fatalf("durable %v exchange: Close %v, stats %+v", durable, err, s.Stats())
		}
		// The default queue was declared with the exchange's durability
		// and holds the message.
		if _, ok, err := ch.Get(id+".info", true); err != nil || !ok {
			t.Errorf("durable %v exchange: message in the default queue: %v %v", durable, ok, err)
		}
	}
}

// TestBrokerFailover gives two brokers, one of them dead: the message
// goes through the live one.
func TestBrokerFailover(t *testing.T) {
	conn := dialBroker(t)
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("glance-go-unit-f-%d-%d", os.Getpid(), time.Now().UnixNano())
	t.Cleanup(func() {
		ch.QueueDelete(id+".info", false, false, false)
		ch.ExchangeDelete(id, false, false)
	})
	dead := deadURL(t)
	dead = dead[len("rabbit://") : len(dead)-1]
	// The brokers are shuffled at start: try until the dead one came
	// first, which happens half of the time.
	for range 30 {
		s, err := rabbit.New(rabbit.Config{URL: "rabbit://" + dead + ",guest:guest@127.0.0.1:5672/", Exchange: id, Topics: []string{id},
			Retry: -1, RetryInterval: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		s.Emit(context.Background(), ev("image.create"))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = s.Close(ctx)
		cancel()
		st := s.Stats()
		if err != nil || st.Published != 1 {
			t.Fatalf("Close %v, stats %+v", err, st)
		}
		if st.Retried == 1 {
			return // failed on the dead broker, then went to the live one
		}
	}
	t.Error("the dead broker never came first, or a failure on it was not followed by the live one")
}
