package rabbit

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/glance-go/glance-go/proxies/notifier"
)

// Format is the shape of a message body: the messaging driver's bare
// message (1) or the messagingv2 driver's envelope (2).
type Format int

// The formats of oslo.messaging's notification drivers.
const (
	FormatV1 Format = 1 // driver = messaging
	FormatV2 Format = 2 // driver = messagingv2
)

// message is the notification oslo.messaging's Notifier builds, in its
// order, with the _unique_id its AMQP driver adds for duplicate detection.
// Glance notifies with an empty context, so no _context_* keys follow.
type message struct {
	MessageID   string `json:"message_id"`
	PublisherID string `json:"publisher_id"`
	EventType   string `json:"event_type"`
	Priority    string `json:"priority"`
	Payload     any    `json:"payload"`
	Timestamp   string `json:"timestamp"`
	UniqueID    string `json:"_unique_id"`
}

// envelope is oslo.messaging's 2.0 message envelope.
type envelope struct {
	Version string `json:"oslo.version"`
	Message string `json:"oslo.message"`
}

// Encode returns the AMQP body oslo.messaging sends for ev in format f:
// JSON as Python's json.dumps writes it (", " and ": " separators, every
// character beyond ASCII escaped), the message's keys in the order
// oslo.messaging builds them and the payload's in the order Glance does
// (keys it does not know follow, sorted). The priority is sent as given
// (INFO, ERROR).
func Encode(ev notifier.Event, f Format) ([]byte, error) {
	m := message{
		MessageID:   ev.MessageID,
		PublisherID: ev.PublisherID,
		EventType:   ev.EventType,
		Priority:    ev.Priority,
		Payload:     ordered(ev.Payload),
		Timestamp:   notifier.Timestamp(ev.Timestamp),
		UniqueID:    uniqueID(),
	}
	inner, err := pyJSON(m)
	if err != nil {
		return nil, err
	}
	switch f {
	case FormatV1:
		return inner, nil
	case FormatV2:
		return pyJSON(envelope{Version: "2.0", Message: string(inner)})
	}
	return nil, fmt.Errorf("unknown message format %d", f)
}

// Glance's payload key orders (glance/notifier.py): format_image_notification,
// then the import lists of image.prepare and image.upload and their
// backend; format_image_member_notification; _format_image_send.
var (
	imageOrder = []string{"id", "name", "status", "created_at", "updated_at", "min_disk", "min_ram", "protected",
		"checksum", "owner", "disk_format", "container_format", "size", "virtual_size", "is_public", "visibility",
		"properties", "tags", "deleted", "deleted_at", "os_glance_importing_to_stores", "os_glance_failed_import", "backend"}
	memberOrder = []string{"image_id", "member_id", "status", "created_at", "updated_at", "deleted", "deleted_at"}
	sendOrder   = []string{"bytes_sent", "image_id", "owner_id", "receiver_tenant_id", "receiver_user_id"}
)

// orderedMap is a payload object written with its keys in a given order.
type orderedMap struct {
	m     map[string]any
	order []string
}

// ordered puts a payload object's keys in Glance's order for its kind of
// event; anything else is left to encoding/json.
func ordered(p any) any {
	m, ok := p.(map[string]any)
	if !ok {
		return p
	}
	_, hasImage := m["image_id"]
	_, hasMember := m["member_id"]
	_, hasSent := m["bytes_sent"]
	switch {
	case hasSent:
		return orderedMap{m, sendOrder}
	case hasImage && hasMember:
		return orderedMap{m, memberOrder}
	}
	if _, ok := m["id"]; ok {
		return orderedMap{m, imageOrder}
	}
	return m
}

// MarshalJSON implements json.Marshaler.
func (o orderedMap) MarshalJSON() ([]byte, error) {
	known := make(map[string]bool, len(o.order))
	keys := make([]string, 0, len(o.m))
	for _, k := range o.order {
		known[k] = true
		if _, ok := o.m[k]; ok {
			keys = append(keys, k)
		}
	}
	rest := make([]string, 0, len(o.m))
	for k := range o.m {
		if !known[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	keys = append(keys, rest...)
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			buf.WriteByte(',')
		}
		kb, err := marshalNoHTML(k)
		if err != nil {
			return nil, err
		}
		vb, err := marshalNoHTML(o.m[k])
		if err != nil {
			return nil, err
		}
		buf.Write(kb)
		buf.WriteByte(':')
		buf.Write(vb)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// marshalNoHTML is json.Marshal without the escaping of <, > and &.
func marshalNoHTML(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// RoutingKey is the routing key of a notification of priority on topic:
// "notifications.info".
func RoutingKey(topic, priority string) string { return topic + "." + strings.ToLower(priority) }

// uniqueID is a random UUID in hex without dashes, as uuid4().hex.
func uniqueID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return hex.EncodeToString(b[:])
}

// pyJSON marshals v as Python's json.dumps does by default.
func pyJSON(v any) ([]byte, error) {
	b, err := marshalNoHTML(v)
	if err != nil {
		return nil, err
	}
	return pythonize(b), nil
}

// pythonize rewrites compact JSON with Python's separators and with
// non-ASCII characters escaped as \uXXXX (surrogate pairs beyond the BMP).
func pythonize(b []byte) []byte {
	out := make([]byte, 0, len(b)+len(b)/8)
	inString, escaped := false, false
	for i := 0; i < len(b); {
		c := b[i]
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			case c >= utf8.RuneSelf:
				r, n := utf8.DecodeRune(b[i:])
				if r >= 0x10000 {
					r -= 0x10000
					out = fmt.Appendf(out, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
				} else {
					out = fmt.Appendf(out, `\u%04x`, r)
				}
				i += n
				continue
			}
			out = append(out, c)
			i++
			continue
		}
		out = append(out, c)
		switch c {
		case '"':
			inString = true
		case ',', ':':
			out = append(out, ' ')
		}
		i++
	}
	return out
}
