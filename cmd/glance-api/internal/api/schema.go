package api

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"
)

// baseProperties is the image schema's base properties
// (images.py:get_base_properties), in Glance's order.
//
//go:embed image-base-properties.json
var baseProperties []byte

// defaultCustomSchema is the schema-image.json that Glance's packages ship.
//
//go:embed schema-image.json
var defaultCustomSchema []byte

// object is a JSON object that keeps its key order.
type object []member

type member struct {
	key string
	val any
}

func (o object) get(key string) (any, bool) {
	for _, m := range o {
		if m.key == key {
			return m.val, true
		}
	}
	return nil, false
}

func (o *object) set(key string, val any) {
	for i, m := range *o {
		if m.key == key {
			(*o)[i].val = val
			return
		}
	}
	*o = append(*o, member{key, val})
}

// Bounds of a JSON request body beyond its size (maxJSONBody). No body of
// the Image API nests deeper than a few levels, nor has that many values.
const (
	maxJSONDepth  = 32
	maxJSONValues = 100_000
)

// jsonLimitError is a body that passes a bound of decodeOrdered.
type jsonLimitError struct{ what string }

func (e *jsonLimitError) Error() string { return e.what }

// decodeOrdered parses JSON keeping object key order; numbers stay
// json.Number. Its work is linear in the body: nesting deeper than
// maxJSONDepth or more than maxJSONValues values are refused with a
// *jsonLimitError.
func decodeOrdered(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	values := 0
	v, err := decodeValue(dec, 0, &values)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after JSON value")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder, depth int, values *int) (any, error) {
	if *values++; *values > maxJSONValues {
		return nil, &jsonLimitError{fmt.Sprintf("The JSON body has more than %d values.", maxJSONValues)}
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return tok, nil
	}
	if depth >= maxJSONDepth {
		return nil, &jsonLimitError{fmt.Sprintf("The JSON body nests deeper than %d levels.", maxJSONDepth)}
	}
	switch d {
	case '{':
		o := object{}
		// A later duplicate key replaces the earlier value in place, as
		// set does, found through an index rather than a scan.
		var index map[string]int
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			v, err := decodeValue(dec, depth+1, values)
			if err != nil {
				return nil, err
			}
			k := kt.(string)
			if index == nil && len(o) >= 8 {
				index = make(map[string]int, 2*len(o))
				for i, m := range o {
					index[m.key] = i
				}
			}
			if index != nil {
				if i, dup := index[k]; dup {
					o[i].val = v
				} else {
					index[k] = len(o)
					o = append(o, member{k, v})
				}
				continue
			}
			o.set(k, v)
		}
		_, err := dec.Token()
		return o, err
	case '[':
		a := []any{}
		for dec.More() {
			v, err := decodeValue(dec, depth+1, values)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		_, err := dec.Token()
		return a, err
	}
	return nil, fmt.Errorf("unexpected %v", d)
}

// appendValue writes v as Python's json.dumps would.
func appendValue(b []byte, v any) []byte {
	switch t := v.(type) {
	case nil:
		return append(b, "null"...)
	case object:
		b = append(b, '{')
		for i, m := range t {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = appendString(b, m.key)
			b = append(b, ": "...)
			b = appendValue(b, m.val)
		}
		return append(b, '}')
	case []any:
		b = append(b, '[')
		for i, x := range t {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = appendValue(b, x)
		}
		return append(b, ']')
	case string:
		return appendString(b, t)
	case bool:
		return strconv.AppendBool(b, t)
	case json.Number:
		return append(b, t...)
	case int:
		return strconv.AppendInt(b, int64(t), 10)
	case float64:
		return strconv.AppendFloat(b, t, 'g', -1, 64)
	}
	return append(b, "null"...)
}

// schemas holds the served schema documents and the image validator.
type schemas struct {
	image, images, member, members []byte
	props                          object // the image schema's properties
	required                       []string
}

func newSchemas(opts Options) (*schemas, error) {
	basev, err := decodeOrdered(baseProperties)
	if err != nil {
		return nil, err
	}
	props := basev.(object)
	enumOf := func(list []string) []any {
		out := []any{nil}
		for _, f := range list {
			out = append(out, f)
		}
		return out
	}
	for key, list := range map[string][]string{"disk_format": opts.DiskFormats, "container_format": opts.ContainerFormats} {
		p, _ := props.get(key)
		po := p.(object)
		po.set("enum", enumOf(list))
		props.set(key, po)
	}

	raw := opts.CustomSchema
	if raw == nil {
		raw = defaultCustomSchema
	}
	customv, err := decodeOrdered(raw)
	if err != nil {
		return nil, fmt.Errorf("schema-image.json: %w", err)
	}
	custom, ok := customv.(object)
	if !ok {
		return nil, errors.New("schema-image.json: not a JSON object")
	}
	var required []string
	if p, ok := custom.get("properties"); ok {
		if r, ok := custom.get("required"); ok {
			if list, ok := r.([]any); ok {
				for _, x := range list {
					if s, ok := x.(string); ok {
						required = append(required, s)
					}
				}
			}
		}
		if custom, ok = p.(object); !ok {
			return nil, errors.New("schema-image.json: properties is not an object")
		}
	}
	for _, m := range custom {
		po, ok := m.val.(object)
		if !ok {
			return nil, fmt.Errorf("schema-image.json: property %s is not an object", m.key)
		}
		if _, exists := props.get(m.key); exists {
			return nil, fmt.Errorf("schema-image.json: custom property %s conflicts with a base property", m.key)
		}
		po = append(slicesClone(po), member{"is_base", false})
		props = append(props, member{m.key, po})
	}

	links := []any{
		object{{"rel", "self"}, {"href", "{self}"}},
		object{{"rel", "enclosure"}, {"href", "{file}"}},
		object{{"rel", "describedby"}, {"href", "{schema}"}},
	}
	image := object{{"name", "image"}, {"properties", props},
		{"additionalProperties", object{{"type", "string"}}}}
	if len(required) > 0 {
		req := make([]any, len(required))
		for i, r := range required {
			req[i] = r
		}
		image = append(image, member{"required", req})
	}
	image = append(image, member{"links", links})
	images := collection("images", image, true)

	memberProps := object{
		{"member_id", object{{"type", "string"}, {"description", "An identifier for the image member (tenantId)"}}},
		{"image_id", object{{"type", "string"}, {"description", "An identifier for the image"}, {"pattern", uuidPattern}}},
		{"created_at", object{{"type", "string"}, {"description", "Date and time of image member creation"}}},
		{"updated_at", object{{"type", "string"}, {"description", "Date and time of last modification of image member"}}},
		{"status", object{{"type", "string"}, {"description", "The status of this image member"},
			{"enum", []any{"pending", "accepted", "rejected"}}}},
		{"schema", object{{"readOnly", true}, {"type", "string"}}},
	}
	memberSchema := object{{"name", "member"}, {"properties", memberProps}}
	return &schemas{
		image:    appendValue(nil, image),
		images:   appendValue(nil, images),
		member:   appendValue(nil, memberSchema),
		members:  appendValue(nil, collection("members", memberSchema, false)),
		props:    props,
		required: required,
	}, nil
}

func slicesClone(o object) object { return append(object(nil), o...) }

// collection is glance.schema.CollectionSchema: raw with first/next links,
// minimal with describedby only.
func collection(name string, item object, raw bool) object {
	props := object{{name, object{{"type", "array"}, {"items", item}}}}
	if raw {
		props = append(props, member{"first", object{{"type", "string"}}}, member{"next", object{{"type", "string"}}})
	}
	props = append(props, member{"schema", object{{"type", "string"}}})
	links := []any{object{{"rel", "describedby"}, {"href", "{schema}"}}}
	if raw {
		links = []any{
			object{{"rel", "first"}, {"href", "{first}"}},
			object{{"rel", "next"}, {"href", "{next}"}},
			object{{"rel", "describedby"}, {"href", "{schema}"}},
		}
	}
	return object{{"name", name}, {"properties", props}, {"links", links}}
}

const uuidPattern = "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"

func (s *server) schemaImage(c echo.Context) error   { return writeJSON(c, 200, s.schemas.image) }
func (s *server) schemaImages(c echo.Context) error  { return writeJSON(c, 200, s.schemas.images) }
func (s *server) schemaMember(c echo.Context) error  { return writeJSON(c, 200, s.schemas.member) }
func (s *server) schemaMembers(c echo.Context) error { return writeJSON(c, 200, s.schemas.members) }

// validate checks obj (decoded with decodeOrdered or plain JSON types)
// against the image schema, the way jsonschema reports the first failure.
func (sc *schemas) validate(obj object) error {
	keys := make([]string, 0, len(obj))
	for _, m := range obj {
		keys = append(keys, m.key)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v, _ := obj.get(k)
		var path string
		sub, ok := sc.props.get(k)
		if ok {
			path = "['properties'][" + pyRepr(k) + "]"
		} else {
			sub = object{{"type", "string"}}
			path = "['additionalProperties']"
		}
		if err := check(sub.(object), v, path, "["+pyRepr(k)+"]"); err != nil {
			return err
		}
	}
	for _, r := range sc.required {
		if _, ok := obj.get(r); !ok {
			return schemaError(pyRepr(r)+" is a required property", "required", "", pyRepr(sc.required), "", obj)
		}
	}
	return nil
}

// patterns caches compiled "pattern" regexps; handlers share it.
var patterns sync.Map

func compiledPattern(p string) *regexp.Regexp {
	if re, ok := patterns.Load(p); ok {
		return re.(*regexp.Regexp)
	}
	re, err := regexp.Compile(p)
	if err != nil {
		return nil
	}
	patterns.Store(p, re)
	return re
}

// check validates v against one property schema; schemaPath and instPath
// name where, for the message.
func check(sch object, v any, schemaPath, instPath string) error {
	fail := func(msg, validator string) error {
		return schemaError(msg, validator, schemaPath, pformat(sch, 0), instPath, v)
	}
	if t, ok := sch.get("type"); ok {
		var types []string
		switch tt := t.(type) {
		case string:
			types = []string{tt}
		case []any:
			for _, x := range tt {
				if s, ok := x.(string); ok {
					types = append(types, s)
				}
			}
		}
		matched := false
		for _, ty := range types {
			if isType(v, ty) {
				matched = true
				break
			}
		}
		if !matched && len(types) > 0 {
			quoted := make([]string, len(types))
			for i, ty := range types {
				quoted[i] = pyRepr(ty)
			}
			return fail(pyRepr(v)+" is not of type "+strings.Join(quoted, ", "), "type")
		}
	}
	if e, ok := sch.get("enum"); ok {
		if list, ok := e.([]any); ok {
			found := false
			for _, x := range list {
				if jsonEqual(x, v) {
					found = true
					break
				}
			}
			if !found {
				return fail(pyRepr(v)+" is not one of "+pyRepr(list), "enum")
			}
		}
	}
	if s, ok := v.(string); ok {
		n := len([]rune(s))
		if ml, ok := intOf(sch, "maxLength"); ok && n > ml {
			return fail(pyRepr(s)+" is too long", "maxLength")
		}
		if ml, ok := intOf(sch, "minLength"); ok && n < ml {
			return fail(pyRepr(s)+" is too short", "minLength")
		}
		if p, ok := sch.get("pattern"); ok {
			ps, _ := p.(string)
			if re := compiledPattern(ps); re != nil && !re.MatchString(s) {
				return fail(pyRepr(s)+" does not match "+pyRepr(ps), "pattern")
			}
		}
	}
	if a, ok := v.([]any); ok {
		if items, ok := sch.get("items"); ok {
			if io, ok := items.(object); ok {
				for i, x := range a {
					idx := "[" + strconv.Itoa(i) + "]"
					if err := check(io, x, schemaPath+"['items']", instPath+idx); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

func intOf(sch object, key string) (int, bool) {
	v, ok := sch.get(key)
	if !ok {
		return 0, false
	}
	if n, ok := v.(json.Number); ok {
		i, err := n.Int64()
		return int(i), err == nil
	}
	return 0, false
}

func isType(v any, ty string) bool {
	switch ty {
	case "null":
		return v == nil
	case "string":
		_, ok := v.(string)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "integer":
		n, ok := v.(json.Number)
		if !ok {
			return false
		}
		if _, err := n.Int64(); err == nil {
			return true
		}
		f, err := n.Float64()
		return err == nil && f == float64(int64(f))
	case "number":
		_, ok := v.(json.Number)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "object":
		_, ok := v.(object)
		return ok
	}
	return false
}

func jsonEqual(a, b any) bool {
	if an, ok := a.(json.Number); ok {
		bn, ok := b.(json.Number)
		if !ok {
			return false
		}
		af, _ := an.Float64()
		bf, _ := bn.Float64()
		return af == bf
	}
	switch at := a.(type) {
	case nil, string, bool:
		return a == b
	case []any:
		bt, ok := b.([]any)
		if !ok || len(at) != len(bt) {
			return false
		}
		for i := range at {
			if !jsonEqual(at[i], bt[i]) {
				return false
			}
		}
		return true
	}
	return false
}

// schemaError builds Glance's InvalidObject message for a jsonschema failure.
func schemaError(msg, validator, schemaPath, schemaText, instPath string, inst any) error {
	var b strings.Builder
	b.WriteString("Provided object does not match schema 'image': ")
	b.WriteString(msg)
	b.WriteString("\n\nFailed validating ")
	b.WriteString(pyRepr(validator))
	b.WriteString(" in schema")
	b.WriteString(schemaPath)
	b.WriteString(":\n    ")
	b.WriteString(strings.ReplaceAll(schemaText, "\n", "\n    "))
	b.WriteString("\n\nOn instance")
	b.WriteString(instPath)
	b.WriteString(":\n    ")
	b.WriteString(strings.ReplaceAll(pformat(inst, 0), "\n", "\n    "))
	return explain(400, "%s", b.String())
}

// pyRepr renders v as Python's repr would.
func pyRepr(v any) string {
	switch t := v.(type) {
	case nil:
		return "None"
	case bool:
		if t {
			return "True"
		}
		return "False"
	case string:
		return pyStr(t)
	case json.Number:
		return t.String()
	case []string:
		a := make([]any, len(t))
		for i, s := range t {
			a[i] = s
		}
		return pyRepr(a)
	case []any:
		parts := make([]string, len(t))
		for i, x := range t {
			parts[i] = pyRepr(x)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case object:
		sorted := sortedObject(t)
		parts := make([]string, len(sorted))
		for i, m := range sorted {
			parts[i] = pyRepr(m.key) + ": " + pyRepr(m.val)
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return fmt.Sprint(v)
}

func sortedObject(o object) object {
	s := slicesClone(o)
	sort.SliceStable(s, func(i, j int) bool { return s[i].key < s[j].key })
	return s
}

// pyStr is Python's repr of a str: single quotes unless the text has a
// single quote and no double quote.
func pyStr(s string) string {
	q := byte('\'')
	if strings.Contains(s, "'") && !strings.Contains(s, `"`) {
		q = '"'
	}
	var b strings.Builder
	b.WriteByte(q)
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == rune(q):
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte(q)
	return b.String()
}

// pformat is a small pprint.pformat(width=72): a value that does not fit on
// the line is split one dict entry or list item per line.
func pformat(v any, indent int) string {
	return pfmt(v, indent, 0)
}

func pfmt(v any, indent, allowance int) string {
	const width = 72
	rep := pyRepr(v)
	if len(rep) <= width-indent-allowance {
		return rep
	}
	switch t := v.(type) {
	case object:
		sorted := sortedObject(t)
		var b strings.Builder
		b.WriteByte('{')
		for i, m := range sorted {
			k := pyRepr(m.key)
			b.WriteString(k)
			b.WriteString(": ")
			last := i == len(sorted)-1
			al := 1
			if last {
				al = allowance + 1
			}
			b.WriteString(pfmt(m.val, indent+1+len(k)+2, al))
			if !last {
				b.WriteString(",\n")
				b.WriteString(strings.Repeat(" ", indent+1))
			}
		}
		b.WriteByte('}')
		return b.String()
	case []any:
		var b strings.Builder
		b.WriteByte('[')
		for i, x := range t {
			last := i == len(t)-1
			al := 1
			if last {
				al = allowance + 1
			}
			b.WriteString(pfmt(x, indent+1, al))
			if !last {
				b.WriteString(",\n")
				b.WriteString(strings.Repeat(" ", indent+1))
			}
		}
		b.WriteByte(']')
		return b.String()
	}
	return rep
}
