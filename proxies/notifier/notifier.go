// Package notifier is the ring of the onion that reports what happens to
// images and members as notifications (glance/notifier.py): image.create,
// image.update, image.delete, image.prepare, image.upload, image.activate,
// image.send and image.member.create/update/delete. Events go to a Sink;
// a Sink that fails is logged, never allowed to fail the request.
package notifier

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/glance-go/glance-go/domain"
	"github.com/glance-go/glance-go/proxies"
)

// The priorities used by the layer.
const (
	PriorityInfo  = "INFO"
	PriorityError = "ERROR"
)

// DefaultPublisherID is the default of [DEFAULT] default_publisher_id.
const DefaultPublisherID = "image.localhost"

// Event is one notification, in the fields of an oslo.messaging envelope.
type Event struct {
	EventType   string
	Priority    string
	PublisherID string
	MessageID   string
	Timestamp   time.Time
	// Payload is a map[string]any for every event, except the string
	// message of a failed image.upload.
	Payload any
}

// Sink receives notifications.
type Sink interface {
	// Emit delivers ev. An error is logged by the caller and otherwise
	// ignored.
	Emit(ctx context.Context, ev Event) error
}

// Options tunes the layer.
type Options struct {
	// PublisherID is default_publisher_id; "" means image.localhost.
	PublisherID string
	// Disabled is disabled_notifications: full event types, or groups
	// (the part of a type before its first dot).
	Disabled []string
	// Logger receives sink failures; nil means slog.Default().
	Logger *slog.Logger
}

// Layer returns the notifier ring for caller c.
func Layer(sink Sink, opts Options, c *domain.Caller) proxies.Layer {
	if opts.PublisherID == "" {
		opts.PublisherID = DefaultPublisherID
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if c == nil {
		c = &domain.Caller{}
	}
	n := &notifier{sink: sink, opts: opts, c: c}
	if len(opts.Disabled) > 0 {
		n.disabled = make(map[string]bool, len(opts.Disabled))
	}
	for _, d := range opts.Disabled {
		n.disabled[strings.TrimSpace(d)] = true
	}
	wrap := func(img domain.Image) domain.Image {
		return &image{Image: proxies.Image{Next: img}, n: n}
	}
	return proxies.Layer{
		Name: "notifier",
		Repo: func(next domain.Repo) domain.Repo {
			return &repo{Repo: proxies.Repo{Next: next, Wrap: wrap}, n: n}
		},
		Factory: func(next domain.Factory) domain.Factory { return proxies.Factory{Next: next, Wrap: wrap} },
		Members: func(_ domain.Image, next domain.MemberRepo) domain.MemberRepo {
			return &members{Members: proxies.Members{Next: next}, n: n}
		},
	}
}

type notifier struct {
	sink     Sink
	opts     Options
	c        *domain.Caller
	disabled map[string]bool
}

// enabled is glance/notifier.py _is_notification_enabled.
func (n *notifier) enabled(eventType string) bool {
	group, _, _ := strings.Cut(eventType, ".")
	return !n.disabled[eventType] && !n.disabled[group]
}

func (n *notifier) emit(ctx context.Context, eventType, priority string, payload any) {
	if n.sink == nil || !n.enabled(eventType) {
		return
	}
	ev := Event{
		EventType:   eventType,
		Priority:    priority,
		PublisherID: n.opts.PublisherID,
		MessageID:   domain.NewUUID(),
		Timestamp:   time.Now().UTC(),
		Payload:     payload,
	}
	if err := n.sink.Emit(context.WithoutCancel(ctx), ev); err != nil {
		n.opts.Logger.Error("cannot send notification", "event_type", eventType, "error", err)
	}
}

// isotime is Glance's notification time format.
func isotime(t time.Time) string {
	if t.IsZero() {
		t = time.Now()
	}
	return t.UTC().Format("2006-01-02T15:04:05Z")
}

func orNil[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// ImagePayload is the payload of the image events
// (format_image_notification). It never includes locations, which may
// hold credentials.
func ImagePayload(m domain.Meta) map[string]any {
	props := make(map[string]any, len(m.Properties))
	for k, v := range m.Properties {
		props[k] = v
	}
	tags := make([]string, 0, len(m.Tags))
	tags = append(tags, m.Tags...)
	return map[string]any{
		"id":               m.ID,
		"name":             orNil(m.Name),
		"status":           string(m.Status),
		"created_at":       isotime(m.CreatedAt),
		"updated_at":       isotime(m.UpdatedAt),
		"min_disk":         m.MinDisk,
		"min_ram":          m.MinRAM,
		"protected":        m.Protected,
		"checksum":         orNil(m.Checksum),
		"owner":            orNil(m.Owner),
		"disk_format":      orNil(m.DiskFormat),
		"container_format": orNil(m.ContainerFormat),
		"size":             orNil(m.Size),
		"virtual_size":     orNil(m.VirtualSize),
		"is_public":        m.Visibility == domain.VisibilityPublic,
		"visibility":       string(m.Visibility),
		"properties":       props,
		"tags":             tags,
		"deleted":          false,
		"deleted_at":       nil,
	}
}

// MemberPayload is the payload of the member events
// (format_image_member_notification).
func MemberPayload(mb domain.Member) map[string]any {
	return map[string]any{
		"image_id":   mb.ImageID,
		"member_id":  mb.MemberID,
		"status":     string(mb.Status),
		"created_at": isotime(mb.CreatedAt),
		"updated_at": isotime(mb.UpdatedAt),
		"deleted":    false,
		"deleted_at": nil,
	}
}

// importPayload adds the import bookkeeping of prepare and upload events.
func importPayload(m domain.Meta) map[string]any {
	p := ImagePayload(m)
	split := func(s string) []string {
		if s == "" {
			return []string{}
		}
		return strings.Split(s, ",")
	}
	p["os_glance_importing_to_stores"] = split(m.Properties["os_glance_importing_to_stores"])
	p["os_glance_failed_import"] = split(m.Properties["os_glance_failed_import"])
	return p
}

type repo struct {
	proxies.Repo
	n *notifier
}

type image struct {
	proxies.Image
	n *notifier
}

// Peek implements domain.Peeker: this layer shows the record of the layer
// below unchanged.
func (i *image) Peek() *domain.Meta { return domain.Peek(i.Next) }

type members struct {
	proxies.Members
	n *notifier
}

var (
	_ domain.Repo       = (*repo)(nil)
	_ domain.Image      = (*image)(nil)
	_ domain.MemberRepo = (*members)(nil)
)

// Add implements domain.Repo; it sends image.create.
func (r *repo) Add(ctx context.Context, img domain.Image) error {
	if err := r.Repo.Add(ctx, img); err != nil {
		return err
	}
	r.n.emit(ctx, "image.create", PriorityInfo, ImagePayload(img.Meta()))
	return nil
}

// Save implements domain.Repo; it sends image.update.
func (r *repo) Save(ctx context.Context, img domain.Image, from domain.Status) error {
	if err := r.Repo.Save(ctx, img, from); err != nil {
		return err
	}
	r.n.emit(ctx, "image.update", PriorityInfo, ImagePayload(img.Meta()))
	return nil
}

// Remove implements domain.Repo; it sends image.delete.
func (r *repo) Remove(ctx context.Context, img domain.Image) error {
	if err := r.Repo.Remove(ctx, img); err != nil {
		return err
	}
	p := ImagePayload(img.Meta())
	p["deleted"] = true
	p["deleted_at"] = isotime(time.Now())
	r.n.emit(ctx, "image.delete", PriorityInfo, p)
	return nil
}

// SetData implements domain.Image: image.prepare before the upload, then
// image.upload (INFO with the image, or ERROR with a message) and
// image.activate when the image became active.
func (i *image) SetData(ctx context.Context, r io.Reader, in domain.DataIn) error {
	m := i.Meta()
	if m.Status != domain.StatusQueued {
		// Refused before any data moves; Glance sends nothing either.
		return i.Next.SetData(ctx, r, in)
	}
	// Glance stores the image as saving before it moves any data, and
	// stores it again once the data is in (or the image is back in
	// queued): each of those saves is an image.update.
	saving := m.Clone()
	saving.Status = domain.StatusSaving
	i.n.emit(ctx, "image.update", PriorityInfo, ImagePayload(saving))
	i.n.emit(ctx, "image.prepare", PriorityInfo, importPayload(m))
	if err := i.Next.SetData(ctx, r, in); err != nil {
		i.n.emit(ctx, "image.upload", PriorityError, uploadFailure(m.ID, err))
		i.n.emit(ctx, "image.update", PriorityInfo, ImagePayload(i.Meta()))
		return err
	}
	after := i.Meta()
	i.n.emit(ctx, "image.upload", PriorityInfo, importPayload(after))
	if after.Status == domain.StatusActive {
		i.n.emit(ctx, "image.activate", PriorityInfo, ImagePayload(after))
	}
	i.n.emit(ctx, "image.update", PriorityInfo, ImagePayload(after))
	return nil
}

// uploadFailure is the message of a failed image.upload.
func uploadFailure(id string, err error) string {
	msg := err.Error()
	switch {
	case errors.Is(err, domain.ErrOverLimit) && strings.HasPrefix(msg, "Image storage media is full"):
		return msg
	case errors.Is(err, domain.ErrInvalid):
		return "Cannot save data for image " + id + ": " + msg
	case errors.Is(err, domain.ErrForbidden):
		return "Not allowed to upload image data for image " + id + ": " + msg
	case errors.Is(err, domain.ErrGone), errors.Is(err, domain.ErrNotFound):
		return "Image " + id + " could not be found after upload. The image may have been deleted during the upload: " + msg
	case errors.Is(err, domain.ErrUnavailable):
		return "Failed to upload image data for image " + id + " due to internal error: " + msg
	}
	return "Failed to upload image data for image " + id + " due to HTTP error: " + msg
}

// Data implements domain.Image: image.send goes out when the returned
// reader is closed.
func (i *image) Data(ctx context.Context, off, n int64) (io.ReadCloser, error) {
	rc, err := i.Next.Data(ctx, off, n)
	if err != nil {
		return nil, err
	}
	m := i.Meta()
	want := int64(-1)
	switch {
	case n >= 0:
		want = n
	case m.Size != nil:
		want = *m.Size - off
	}
	return &sendReader{ReadCloser: rc, ctx: ctx, n: i.n, m: m, want: want}, nil
}

type sendReader struct {
	io.ReadCloser
	ctx  context.Context
	n    *notifier
	m    domain.Meta
	want int64
	sent int64
	once sync.Once
}

func (s *sendReader) Read(p []byte) (int, error) {
	n, err := s.ReadCloser.Read(p)
	s.sent += int64(n)
	return n, err
}

// WriteTo implements io.WriterTo: the reader of the store writes itself
// to w when it can (the file store's sendfile path), and w is handed over
// unwrapped so that its own io.ReaderFrom still applies.
func (s *sendReader) WriteTo(w io.Writer) (int64, error) {
	if wt, ok := s.ReadCloser.(io.WriterTo); ok {
		n, err := wt.WriteTo(w)
		s.sent += n
		return n, err
	}
	n, err := io.Copy(w, s.ReadCloser)
	s.sent += n
	return n, err
}

func (s *sendReader) Close() error {
	err := s.ReadCloser.Close()
	s.once.Do(func() {
		prio := PriorityInfo
		if s.want >= 0 && s.sent != s.want {
			prio = PriorityError
		}
		s.n.emit(s.ctx, "image.send", prio, map[string]any{
			"bytes_sent":         s.sent,
			"image_id":           s.m.ID,
			"owner_id":           orNil(s.m.Owner),
			"receiver_tenant_id": s.n.c.ProjectID,
			"receiver_user_id":   s.n.c.UserID,
		})
	})
	return err
}

// Add implements domain.MemberRepo; it sends image.member.create.
func (m *members) Add(ctx context.Context, mb domain.Member) error {
	if err := m.Members.Add(ctx, mb); err != nil {
		return err
	}
	m.n.emit(ctx, "image.member.create", PriorityInfo, MemberPayload(mb))
	return nil
}

// Save implements domain.MemberRepo; it sends image.member.update.
func (m *members) Save(ctx context.Context, mb domain.Member) error {
	if err := m.Members.Save(ctx, mb); err != nil {
		return err
	}
	m.n.emit(ctx, "image.member.update", PriorityInfo, MemberPayload(mb))
	return nil
}

// Remove implements domain.MemberRepo; it sends image.member.delete.
func (m *members) Remove(ctx context.Context, mb domain.Member) error {
	if err := m.Members.Remove(ctx, mb); err != nil {
		return err
	}
	p := MemberPayload(mb)
	p["deleted"] = true
	p["deleted_at"] = isotime(time.Now())
	m.n.emit(ctx, "image.member.delete", PriorityInfo, p)
	return nil
}

// logSink writes events as JSON lines.
type logSink struct {
	mu sync.Mutex
	w  io.Writer
}

// NewLogSink returns a Sink that writes each event to w as one JSON line
// with the fields of an oslo.messaging notification envelope (message_id,
// publisher_id, event_type, priority, payload, timestamp). It is safe for
// concurrent use.
func NewLogSink(w io.Writer) Sink { return &logSink{w: w} }

func (s *logSink) Emit(_ context.Context, ev Event) error {
	b, err := json.Marshal(struct {
		MessageID   string `json:"message_id"`
		PublisherID string `json:"publisher_id"`
		EventType   string `json:"event_type"`
		Priority    string `json:"priority"`
		Payload     any    `json:"payload"`
		Timestamp   string `json:"timestamp"`
	}{ev.MessageID, ev.PublisherID, ev.EventType, ev.Priority, ev.Payload, Timestamp(ev.Timestamp)})
	if err != nil {
		return err
	}
	b = append(b, '\n')
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err = s.w.Write(b)
	return err
}

// Timestamp renders t as oslo.messaging writes a notification's timestamp,
// Python's str() of a naive UTC datetime: "2006-01-02 15:04:05.000123",
// without the fraction when the microseconds are zero.
func Timestamp(t time.Time) string {
	t = t.UTC()
	if t.Nanosecond()/1000 == 0 {
		return t.Format("2006-01-02 15:04:05")
	}
	return t.Format("2006-01-02 15:04:05.000000")
}

// Fanout returns a Sink that hands every event to each of sinks, in order,
// as oslo.messaging hands a notification to each configured driver. Its
// error joins those of the sinks that failed.
func Fanout(sinks ...Sink) Sink {
	if len(sinks) == 1 {
		return sinks[0]
	}
	return fanout(sinks)
}

type fanout []Sink

func (f fanout) Emit(ctx context.Context, ev Event) error {
	var errs []error
	for _, s := range f {
		if err := s.Emit(ctx, ev); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
