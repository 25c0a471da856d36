package api

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/glance-go/glance-go/domain"
)

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string the way Python's json.dumps does
// with ensure_ascii=False: UTF-8 kept, no HTML escaping.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// writePyString writes s as Python's json.dumps does by default
// (ensure_ascii=True): every non-ASCII rune becomes a \u escape.
func writePyString(w *strings.Builder, s string) {
	w.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			w.WriteByte('\\')
			w.WriteRune(r)
		case r == '\n':
			w.WriteString(`\n`)
		case r == '\r':
			w.WriteString(`\r`)
		case r == '\t':
			w.WriteString(`\t`)
		case r == '\b':
			w.WriteString(`\b`)
		case r == '\f':
			w.WriteString(`\f`)
		case r < 0x20 || (r >= 0x7f && r < 0x10000):
			writeU4(w, r)
		case r >= 0x10000:
			r -= 0x10000
			writeU4(w, 0xd800+(r>>10))
			writeU4(w, 0xdc00+(r&0x3ff))
		default:
			w.WriteRune(r)
		}
	}
	w.WriteByte('"')
}

func writeU4(w *strings.Builder, r rune) {
	w.WriteString(`\u`)
	for shift := 12; shift >= 0; shift -= 4 {
		w.WriteByte(hexDigits[(r>>uint(shift))&0xf])
	}
}

func appendNullString(b []byte, p *string) []byte {
	if p == nil {
		return append(b, "null"...)
	}
	return appendString(b, *p)
}

func appendNullInt(b []byte, p *int64) []byte {
	if p == nil {
		return append(b, "null"...)
	}
	return strconv.AppendInt(b, *p, 10)
}

// appendTime writes Glance's isotime: YYYY-MM-DDTHH:MM:SSZ in UTC.
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, "2006-01-02T15:04:05Z")
	return append(b, '"')
}

// viewKeys are the image view's own keys; an extra property of the same
// name is never shown (os_hash_algo given at create stays hidden, say).
var viewKeys = map[string]bool{
	"name": true, "disk_format": true, "container_format": true, "visibility": true, "size": true,
	"virtual_size": true, "status": true, "checksum": true, "protected": true, "min_ram": true,
	"min_disk": true, "owner": true, "os_hidden": true, "os_hash_algo": true, "os_hash_value": true,
	"id": true, "created_at": true, "updated_at": true, "tags": true, "self": true, "file": true,
	"schema": true, "locations": true, "direct_url": true,
	// hidden by ResponseSerializer._hidden_properties
	"os_glance_stage_host": true, "os_glance_hash_op_host": true,
}

// imageView carries what the image view depends on besides the record.
type imageView struct {
	showDirectURL, showLocations bool
	isAdmin                      bool
	multiStore                   bool // enabled_backends: the stores field is shown
}

// imageViewSize is room for the view of a typical image with a dozen
// properties, so that a show grows its buffer once at most.
const imageViewSize = 2048

// appendImage writes the image JSON in Glance's key order: extra
// properties (sorted), the base attributes, then the links.
func (v imageView) appendImage(b []byte, m *domain.Meta) []byte {
	b = append(b, '{')
	if len(m.Properties) > 0 {
		var arr [32]string
		keys := arr[:0]
		for k := range m.Properties {
			if !viewKeys[k] {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			b = appendString(b, k)
			b = append(b, ": "...)
			b = appendString(b, m.Properties[k])
			b = append(b, ", "...)
		}
	}
	b = append(b, `"name": `...)
	b = appendNullString(b, m.Name)
	b = append(b, `, "disk_format": `...)
	b = appendNullString(b, m.DiskFormat)
	b = append(b, `, "container_format": `...)
	b = appendNullString(b, m.ContainerFormat)
	b = append(b, `, "visibility": `...)
	b = appendString(b, string(m.Visibility))
	b = append(b, `, "size": `...)
	b = appendNullInt(b, m.Size)
	b = append(b, `, "virtual_size": `...)
	b = appendNullInt(b, m.VirtualSize)
	b = append(b, `, "status": `...)
	b = appendString(b, string(m.Status))
	b = append(b, `, "checksum": `...)
	b = appendNullString(b, m.Checksum)
	b = append(b, `, "protected": `...)
	b = strconv.AppendBool(b, m.Protected)
	b = append(b, `, "min_ram": `...)
	b = strconv.AppendInt(b, int64(m.MinRAM), 10)
	b = append(b, `, "min_disk": `...)
	b = strconv.AppendInt(b, int64(m.MinDisk), 10)
	b = append(b, `, "owner": `...)
	b = appendNullString(b, m.Owner)
	b = append(b, `, "os_hidden": `...)
	b = strconv.AppendBool(b, m.Hidden)
	b = append(b, `, "os_hash_algo": `...)
	b = appendNullString(b, m.HashAlgo)
	b = append(b, `, "os_hash_value": `...)
	b = appendNullString(b, m.HashValue)
	b = append(b, `, "id": `...)
	b = appendString(b, m.ID)
	b = append(b, `, "created_at": `...)
	b = appendTime(b, m.CreatedAt)
	b = append(b, `, "updated_at": `...)
	b = appendTime(b, m.UpdatedAt)
	if v.showLocations {
		b = append(b, `, "locations": [`...)
		if v.isAdmin || m.Status != domain.StatusDeactivated {
			n := 0
			for _, l := range m.Locations {
				if l.Status != "" && l.Status != "active" {
					continue
				}
				if n > 0 {
					b = append(b, ", "...)
				}
				n++
				b = appendLocation(b, l)
			}
		}
		b = append(b, ']')
	}
	if v.showDirectURL {
		for _, l := range m.Locations {
			if l.Status == "" || l.Status == "active" {
				b = append(b, `, "direct_url": `...)
				b = appendString(b, l.URL)
				break
			}
		}
	}
	b = append(b, `, "tags": [`...)
	for i, t := range m.Tags {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = appendString(b, t)
	}
	b = append(b, `], "self": "/v2/images/`...)
	b = appendEscapedTail(b, m.ID)
	b = append(b, `", "file": "/v2/images/`...)
	b = appendEscapedTail(b, m.ID)
	b = append(b, `/file", "schema": "/v2/schemas/image"`...)
	if v.multiStore {
		b = appendStores(b, m.Locations)
	}
	return append(b, '}')
}

// appendStores writes the stores field: the ids of the stores holding the
// image's data, comma-joined, when there are any (multi-store only).
func appendStores(b []byte, locs []domain.Location) []byte {
	n := 0
	for _, l := range locs {
		if l.Status != "" && l.Status != "active" {
			continue
		}
		id, _ := l.Metadata["store"].(string)
		if id == "" {
			continue
		}
		if n == 0 {
			b = append(b, `, "stores": "`...)
		} else {
			b = append(b, ',')
		}
		n++
		b = appendEscapedTail(b, id)
	}
	if n > 0 {
		b = append(b, '"')
	}
	return b
}

// appendLocation writes a location as Glance shows it: url and metadata.
func appendLocation(b []byte, l domain.Location) []byte {
	b = append(b, `{"url": `...)
	b = appendString(b, l.URL)
	b = append(b, `, "metadata": `...)
	if l.Metadata == nil {
		b = append(b, "{}"...)
	} else {
		b = appendValue(b, ordered(l.Metadata))
	}
	return append(b, '}')
}

// ordered turns decoded JSON (maps, slices, float64 numbers) into the
// ordered form appendValue writes like Python: object keys sorted, whole
// numbers without a fraction.
func ordered(v any) any {
	switch t := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		o := make(object, 0, len(t))
		for _, k := range keys {
			o = append(o, member{key: k, val: ordered(t[k])})
		}
		return o
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = ordered(x)
		}
		return out
	case float64:
		if t == math.Trunc(t) && math.Abs(t) < 1e15 {
			return json.Number(strconv.FormatInt(int64(t), 10))
		}
	}
	return v
}

// appendEscapedTail writes s inside an already opened JSON string.
func appendEscapedTail(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			start := len(b)
			b = appendString(b, s)
			// drop the quotes appendString put around s
			copy(b[start:], b[start+1:len(b)-1])
			return b[:len(b)-2]
		}
	}
	return append(b, s...)
}

// appendMember writes a member's JSON view.
func appendMember(b []byte, m domain.Member) []byte {
	b = append(b, `{"member_id": `...)
	b = appendString(b, m.MemberID)
	b = append(b, `, "image_id": `...)
	b = appendString(b, m.ImageID)
	b = append(b, `, "status": `...)
	b = appendString(b, string(m.Status))
	b = append(b, `, "created_at": `...)
	b = appendTime(b, m.CreatedAt)
	b = append(b, `, "updated_at": `...)
	b = appendTime(b, m.UpdatedAt)
	return append(b, `, "schema": "/v2/schemas/member"}`...)
}

func (s *server) view(c *domain.Caller) imageView {
	return imageView{showDirectURL: s.opts.ShowDirectURL, showLocations: s.opts.ShowMultipleLocations, isAdmin: c.IsAdmin,
		multiStore: s.multiStore()}
}
