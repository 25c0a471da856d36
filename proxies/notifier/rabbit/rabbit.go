// Package rabbit sends notifications to RabbitMQ as oslo.messaging's
// messaging and messagingv2 drivers do over its rabbit transport
// (oslo_messaging/notify/messaging.py, _drivers/impl_rabbit.py), so that
// consumers of Glance's notifications, Ceilometer among them, read ours
// unchanged: the same body, AMQP properties, topic exchange, routing keys
// (<topic>.<priority>) and default queues.
//
// Unlike oslo.messaging, which blocks the notifying request until the
// broker has the message, Emit never waits: events go into a bounded queue
// that one background publisher drains over one connection with a channel
// in confirm mode, reconnecting with oslo.messaging's backoff while the
// broker is away. An event that finds the queue full, or whose retries
// are used up, is dropped and counted (see Stats).
package rabbit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/glance-go/glance-go/proxies/notifier"
)

// Config is what the sink needs of [oslo_messaging_notifications],
// [oslo_messaging_rabbit] and [DEFAULT] control_exchange.
type Config struct {
	// URL is the transport_url; see ParseTransportURL.
	URL string
	// Formats lists the message formats to send each event in, one per
	// configured driver (messaging, messagingv2).
	Formats []Format
	// Topics is topics; empty means notifications.
	Topics []string
	// Exchange is control_exchange; empty means glance.
	Exchange string
	// Retry is retry: how often an event is sent again after a
	// recoverable failure; -1 (or less) retries until the event is sent or
	// the server stops, 0 never retries.
	Retry int
	// Durable is amqp_durable_queues (or rabbit_quorum_queue): the
	// exchange and the default queues survive a broker restart.
	Durable bool
	// AutoDelete is amqp_auto_delete.
	AutoDelete bool
	// HAQueues is rabbit_ha_queues: default queues get x-ha-policy: all.
	HAQueues bool
	// QuorumQueues is rabbit_quorum_queue: default queues are quorum
	// queues, with the three limits below when they are positive.
	QuorumQueues        bool
	QuorumDeliveryLimit int // rabbit_quorum_delivery_limit
	QuorumMaxMemLength  int // rabbit_quorum_max_memory_length
	QuorumMaxMemBytes   int // rabbit_quorum_max_memory_bytes
	// RetryInterval, RetryBackoff and IntervalMax are
	// rabbit_retry_interval, rabbit_retry_backoff and rabbit_interval_max:
	// the n-th wait before trying again is RetryInterval + n*RetryBackoff,
	// at most IntervalMax. Zero RetryInterval and IntervalMax mean 1s and
	// 30s.
	RetryInterval, RetryBackoff, IntervalMax time.Duration
	// Heartbeat is heartbeat_timeout_threshold; 0 leaves it to the
	// broker.
	Heartbeat time.Duration
	// LoginMethod is rabbit_login_method: AMQPLAIN (the default) or PLAIN.
	LoginMethod string
	// QueueSize bounds the events waiting to be sent; 0 means 1000.
	QueueSize int
	// ConfirmTimeout bounds the wait for the broker to confirm one
	// message; 0 means 30s.
	ConfirmTimeout time.Duration
	// Logger receives connection changes and drops; nil means
	// slog.Default().
	Logger *slog.Logger
}

// Stats counts what the sink did since it started.
type Stats struct {
	// Published is the number of messages the broker confirmed.
	Published uint64
	// Retried is the number of attempts to send a message again after a
	// failed attempt (a refused connection, a lost one, a nack).
	Retried uint64
	// Dropped is the number of messages refused because the queue was
	// full or the sink was closed.
	Dropped uint64
	// Undelivered is the number of messages given up after their retries
	// were used up, or still queued when Close ran out of time.
	Undelivered uint64
	// Queued is the number of messages waiting now, the one being sent
	// included.
	Queued int
	// Connected tells whether the publisher holds a connection now.
	Connected bool
}

// Sink publishes notifications to RabbitMQ. It is a notifier.Sink and is
// safe for concurrent use.
type Sink struct {
	cfg   Config
	url   *TransportURL
	log   *slog.Logger
	dial  func(network, addr string) (net.Conn, error)
	queue chan item

	mu       sync.Mutex
	closed   bool
	stopping chan struct{} // closed by Close: drain the queue, then stop
	ctx      context.Context
	cancel   context.CancelFunc // ends the publisher's waits
	done     chan struct{}

	published, retried, dropped, undelivered atomic.Uint64
	inFlight, connected                      atomic.Bool
	drops                                    dropLog

	// publisher state, owned by run
	sess  *session
	next  int  // index of the broker to try next
	fails int  // consecutive failures, for the backoff
	down  bool // a failed connection was reported since the last good one
}

var _ notifier.Sink = (*Sink)(nil)

// item is one message bound for one routing key.
type item struct {
	key   string
	body  []byte
	event string
	tries int
}

// New checks cfg and starts the publisher. It does not wait for the
// broker: the first connection is made in the background, so that the
// server starts while the broker is away.
func New(cfg Config) (*Sink, error) {
	s, err := newSink(cfg)
	if err != nil {
		return nil, err
	}
	go s.run()
	return s, nil
}

// newSink is New without starting the publisher.
func newSink(cfg Config) (*Sink, error) {
	u, err := ParseTransportURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if len(cfg.Formats) == 0 {
		cfg.Formats = []Format{FormatV2}
	}
	if len(cfg.Topics) == 0 {
		cfg.Topics = []string{"notifications"}
	}
	if cfg.Exchange == "" {
		cfg.Exchange = "glance"
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = time.Second
	}
	if cfg.IntervalMax <= 0 {
		cfg.IntervalMax = 30 * time.Second
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 1000
	}
	if cfg.ConfirmTimeout <= 0 {
		cfg.ConfirmTimeout = 30 * time.Second
	}
	switch strings.ToUpper(cfg.LoginMethod) {
	case "", "AMQPLAIN", "PLAIN":
	default:
		return nil, fmt.Errorf("rabbit_login_method %q is not supported (AMQPLAIN or PLAIN)", cfg.LoginMethod)
	}
	if cfg.HAQueues && cfg.QuorumQueues {
		return nil, errors.New("rabbit_quorum_queue and rabbit_ha_queues are both enabled: a queue is quorum or HA (mirrored), not both")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if len(u.Hosts) > 1 {
		// oslo.messaging shuffles the brokers, then fails over round-robin.
		rand.Shuffle(len(u.Hosts), func(i, j int) { u.Hosts[i], u.Hosts[j] = u.Hosts[j], u.Hosts[i] })
	}
	s := &Sink{
		cfg:      cfg,
		url:      u,
		log:      cfg.Logger.With("notifier", "rabbit"),
		queue:    make(chan item, cfg.QueueSize),
		stopping: make(chan struct{}),
		done:     make(chan struct{}),
	}
	s.drops.every = 10 * time.Second
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.dial = s.dialBroker
	return s, nil
}

// Emit encodes ev in each configured format and queues one message per
// topic. It never blocks: a message that finds the queue full is dropped
// and counted. It returns an error only when ev cannot be encoded.
func (s *Sink) Emit(_ context.Context, ev notifier.Event) error {
	bodies := make([][]byte, 0, len(s.cfg.Formats))
	for _, f := range s.cfg.Formats {
		b, err := Encode(ev, f)
		if err != nil {
			return fmt.Errorf("encoding %s: %w", ev.EventType, err)
		}
		bodies = append(bodies, b)
	}
	// The queue is filled under the lock, which Close takes to mark the
	// sink closed; the drops are logged after it.
	type dropped struct {
		it  item
		why string
	}
	var drops []dropped
	s.mu.Lock()
	for _, b := range bodies {
		for _, t := range s.cfg.Topics {
			it := item{key: RoutingKey(t, ev.Priority), body: b, event: ev.EventType}
			if s.closed {
				drops = append(drops, dropped{it, "the notifier is shut down"})
				continue
			}
			select {
			case s.queue <- it:
			default:
				drops = append(drops, dropped{it, fmt.Sprintf("the queue of %d notifications is full", cap(s.queue))})
			}
		}
	}
	s.mu.Unlock()
	for _, d := range drops {
		s.drop(d.it, d.why, &s.dropped)
	}
	return nil
}

// Stats returns the sink's counters.
func (s *Sink) Stats() Stats {
	q := len(s.queue)
	if s.inFlight.Load() {
		q++
	}
	return Stats{
		Published:   s.published.Load(),
		Retried:     s.retried.Load(),
		Dropped:     s.dropped.Load(),
		Undelivered: s.undelivered.Load(),
		Queued:      q,
		Connected:   s.connected.Load(),
	}
}

// Close stops taking events, sends what is queued until ctx is done,
// counts what is left as undelivered and closes the connection. It
// returns ctx's error when messages were left.
func (s *Sink) Close(ctx context.Context) error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.stopping)
	}
	s.mu.Unlock()
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
	}
	s.cancel()
	<-s.done
	return ctx.Err()
}

// run is the publisher: it sends the queued messages one after the other,
// until Close.
func (s *Sink) run() {
	defer close(s.done)
	defer s.closeSession()
	for {
		select {
		case it := <-s.queue:
			s.deliver(it)
		case <-s.stopping:
			for {
				select {
				case it := <-s.queue:
					s.deliver(it)
				default:
					return
				}
			}
		}
	}
}

// deliver sends it, connecting first when needed, until the broker
// confirms it, its retries are used up or Close gives up.
func (s *Sink) deliver(it item) {
	s.inFlight.Store(true)
	defer s.inFlight.Store(false)
	for {
		if s.ctx.Err() != nil {
			s.drop(it, "the server stopped before it could be sent", &s.undelivered)
			return
		}
		err := s.connect()
		if err == nil {
			if err = s.publish(it); err == nil {
				s.published.Add(1)
				s.fails = 0
				return
			}
			s.log.Warn("cannot publish a notification; reconnecting", "event_type", it.event, "error", err)
			s.closeSession()
		}
		it.tries++
		if s.cfg.Retry >= 0 && it.tries > s.cfg.Retry {
			s.drop(it, fmt.Sprintf("not sent after %d attempts: %v", it.tries, err), &s.undelivered)
			return
		}
		s.retried.Add(1)
		s.wait()
	}
}

// wait sleeps before the next attempt: rabbit_retry_interval, growing by
// rabbit_retry_backoff with each failure in a row, at most
// rabbit_interval_max, or until Close gives up.
func (s *Sink) wait() {
	d := s.cfg.RetryInterval + time.Duration(s.fails)*s.cfg.RetryBackoff
	if d > s.cfg.IntervalMax {
		d = s.cfg.IntervalMax
	}
	s.fails++
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.ctx.Done():
	}
}

// session is one connection with its confirm-mode channel and what was
// declared on it.
type session struct {
	conn     *amqp.Connection
	ch       *amqp.Channel
	closed   chan *amqp.Error
	durable  bool // of the exchange, false after the broker refused a durable one
	exchange bool
	queues   map[string]bool
}

// connect makes sure there is a live session, trying the next broker of
// the URL.
func (s *Sink) connect() error {
	if s.sess != nil {
		select {
		case err := <-s.sess.closed:
			s.log.Warn("lost the connection to RabbitMQ", "error", err)
			s.closeSession()
		default:
			return nil
		}
	}
	h := s.url.Hosts[s.next%len(s.url.Hosts)]
	s.next++
	var auth amqp.Authentication = &amqp.AMQPlainAuth{Username: h.Username, Password: h.Password}
	if strings.EqualFold(s.cfg.LoginMethod, "PLAIN") {
		auth = &amqp.PlainAuth{Username: h.Username, Password: h.Password}
	}
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName(fmt.Sprintf("%s:%d:notifications", processName(), os.Getpid()))
	vhost := s.url.VirtualHost
	if vhost == "" {
		vhost = "/"
	}
	conn, err := amqp.DialConfig("amqp://"+h.Addr()+"/", amqp.Config{
		SASL:       []amqp.Authentication{auth},
		Vhost:      vhost,
		Heartbeat:  s.cfg.Heartbeat,
		Properties: props,
		Dial:       s.dial,
	})
	if err != nil {
		if !s.down {
			s.log.Warn("cannot connect to RabbitMQ; notifications wait in the queue", "host", h.Addr(), "error", err)
			s.down = true
		}
		return err
	}
	sess := &session{conn: conn, durable: s.cfg.Durable, queues: map[string]bool{}}
	if err := s.openChannel(sess); err != nil {
		conn.Close()
		return err
	}
	s.sess = sess
	s.down = false
	s.connected.Store(true)
	s.log.Info("connected to RabbitMQ", "host", h.Addr(), "vhost", vhost, "exchange", s.cfg.Exchange)
	return nil
}

// dialBroker opens the TCP connection to a broker; Close cuts it short.
// The deadline covers the AMQP handshake, which clears it once done.
func (s *Sink) dialBroker(network, addr string) (net.Conn, error) {
	const timeout = 10 * time.Second
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(s.ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// openChannel opens the session's channel in confirm mode.
func (s *Sink) openChannel(sess *session) error {
	ch, err := sess.conn.Channel()
	if err != nil {
		return err
	}
	if err := ch.Confirm(false); err != nil {
		ch.Close()
		return err
	}
	sess.ch = ch
	sess.closed = make(chan *amqp.Error, 2)
	sess.conn.NotifyClose(forward(sess.closed))
	ch.NotifyClose(forward(sess.closed))
	return nil
}

// forward returns a channel for NotifyClose that passes its one error on
// to c without blocking.
func forward(c chan *amqp.Error) chan *amqp.Error {
	in := make(chan *amqp.Error, 1)
	go func() {
		if err, ok := <-in; ok {
			select {
			case c <- err:
			default:
			}
		} else {
			select {
			case c <- amqp.ErrClosed:
			default:
			}
		}
	}()
	return in
}

func (s *Sink) closeSession() {
	if s.sess == nil {
		return
	}
	_ = s.sess.conn.Close()
	s.sess = nil
	s.connected.Store(false)
}

// publish declares the exchange and the message's default queue once per
// connection, as oslo.messaging's notify_send does, then publishes the
// message and waits for the broker's confirmation.
func (s *Sink) publish(it item) error {
	sess := s.sess
	if !sess.exchange {
		if err := s.declareExchange(sess); err != nil {
			return fmt.Errorf("declaring exchange %s: %w", s.cfg.Exchange, err)
		}
		sess.exchange = true
	}
	if !sess.queues[it.key] {
		_, err := sess.ch.QueueDeclare(it.key, sess.durable, s.cfg.AutoDelete, false, false, s.queueArgs())
		if err == nil {
			err = sess.ch.QueueBind(it.key, it.key, s.cfg.Exchange, false, nil)
		}
		var ae *amqp.Error
		if errors.As(err, &ae) && ae.Code == amqp.PreconditionFailed {
			// The queue exists with other arguments: whoever made it
			// consumes from it, so publish anyway on a fresh channel.
			s.log.Warn("the default queue exists with other arguments; publishing without declaring it", "queue", it.key, "error", ae.Reason)
			if err = s.openChannel(sess); err != nil {
				return err
			}
		} else if err != nil {
			return fmt.Errorf("declaring queue %s: %w", it.key, err)
		}
		sess.queues[it.key] = true
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.ConfirmTimeout)
	defer cancel()
	dc, err := sess.ch.PublishWithDeferredConfirmWithContext(ctx, s.cfg.Exchange, it.key, false, false, Publishing(it.body))
	if err != nil {
		return err
	}
	select {
	case <-dc.Done():
		if dc.Acked() {
			return nil
		}
		if sess.ch.IsClosed() {
			return errors.New("the connection closed before the broker confirmed the message")
		}
		return errors.New("the broker did not take the message (nack)")
	case err := <-sess.closed:
		return fmt.Errorf("connection closed before the broker confirmed the message: %v", err)
	case <-ctx.Done():
		return fmt.Errorf("no confirmation from the broker: %w", ctx.Err())
	}
}

// declareExchange declares the topic exchange. When it exists with the
// other durability (another service declared it), it is declared with
// that one, as oslo.messaging falls back to a transient exchange; when it
// exists with other arguments still, it is used as it is.
func (s *Sink) declareExchange(sess *session) error {
	declare := func(durable bool) error {
		return sess.ch.ExchangeDeclare(s.cfg.Exchange, "topic", durable, s.cfg.AutoDelete, false, false, nil)
	}
	err := declare(sess.durable)
	var ae *amqp.Error
	if !errors.As(err, &ae) || ae.Code != amqp.PreconditionFailed {
		return err
	}
	// The failed declaration closed the channel.
	if err := s.openChannel(sess); err != nil {
		return err
	}
	if strings.Contains(ae.Reason, "'durable'") {
		if err = declare(!sess.durable); err == nil {
			sess.durable = !sess.durable
			s.log.Warn("the exchange exists with the other durability; using it, and the same for the default queues",
				"exchange", s.cfg.Exchange, "durable", sess.durable)
			return nil
		}
		if !errors.As(err, &ae) || ae.Code != amqp.PreconditionFailed {
			return err
		}
		if err := s.openChannel(sess); err != nil {
			return err
		}
	}
	if err := sess.ch.ExchangeDeclarePassive(s.cfg.Exchange, "topic", sess.durable, s.cfg.AutoDelete, false, false, nil); err != nil {
		return err
	}
	s.log.Warn("the exchange exists with other arguments; publishing to it as it is", "exchange", s.cfg.Exchange, "error", ae.Reason)
	return nil
}

// Publishing is the AMQP message oslo.messaging's rabbit driver sends
// (kombu's JSON serializer, persistent delivery, priority 0, no headers).
func Publishing(body []byte) amqp.Publishing {
	return amqp.Publishing{
		ContentType:     "application/json",
		ContentEncoding: "utf-8",
		DeliveryMode:    amqp.Persistent,
		Priority:        0,
		Headers:         amqp.Table{},
		Body:            body,
	}
}

// queueArgs are the arguments of a default queue (_get_queue_arguments,
// without the TTL, which notifications' queues do not get).
func (s *Sink) queueArgs() amqp.Table {
	args := amqp.Table{}
	if s.cfg.HAQueues {
		args["x-ha-policy"] = "all"
	}
	if s.cfg.QuorumQueues {
		args["x-queue-type"] = "quorum"
		if s.cfg.QuorumDeliveryLimit > 0 {
			args["x-delivery-limit"] = int64(s.cfg.QuorumDeliveryLimit)
		}
		if s.cfg.QuorumMaxMemLength > 0 {
			args["x-max-in-memory-length"] = int64(s.cfg.QuorumMaxMemLength)
		}
		if s.cfg.QuorumMaxMemBytes > 0 {
			args["x-max-in-memory-bytes"] = int64(s.cfg.QuorumMaxMemBytes)
		}
	}
	if len(args) == 0 {
		return nil
	}
	return args
}

// drop counts a message that will not be sent and logs it, at most once
// per dropLog.every with the number dropped since.
func (s *Sink) drop(it item, why string, counter *atomic.Uint64) {
	counter.Add(1)
	if n, ok := s.drops.due(time.Now()); ok {
		s.log.Warn("notification dropped", "event_type", it.event, "routing_key", it.key, "reason", why, "dropped_since_last_warning", n)
	}
}

// dropLog bounds the rate of drop warnings.
type dropLog struct {
	mu      sync.Mutex
	every   time.Duration
	last    time.Time
	pending int
}

// due records one drop and tells whether to log now, with the number of
// drops since the last warning (this one included).
func (d *dropLog) due(now time.Time) (int, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pending++
	if !d.last.IsZero() && now.Sub(d.last) < d.every {
		return 0, false
	}
	n := d.pending
	d.pending = 0
	d.last = now
	return n, true
}

func processName() string {
	if len(os.Args) == 0 {
		return "glance-api"
	}
	name := os.Args[0]
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	return name
}
