package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/glance-go/glance-go/domain"
)

// The two JSON-patch media types of PATCH /v2/images/{id}, with the draft
// they follow.
const (
	patchV20 = "application/openstack-images-v2.0-json-patch"
	patchV21 = "application/openstack-images-v2.1-json-patch"
)

// change is one validated PATCH operation.
type change struct {
	op    string // add, remove or replace
	path  []string
	value any
	draft int // 4 (v2.0) or 10 (v2.1)
}

// baseAttrs are the image attributes a PATCH sets directly.
var baseAttrs = map[string]bool{"name": true, "visibility": true, "protected": true, "os_hidden": true,
	"disk_format": true, "container_format": true, "min_ram": true, "min_disk": true, "owner": true,
	"tags": true, "locations": true}

var (
	adjacentSlash = regexp.MustCompile(`/\s*?/`)
	badTilde      = regexp.MustCompile(`~[^01]`)
)

// parsePatch validates a PATCH request into changes (RequestDeserializer.update).
func (s *server) parsePatch(r *http.Request) ([]change, error) {
	ct, _, _ := strings.Cut(r.Header.Get(echo.HeaderContentType), ";")
	draft := 0
	switch strings.TrimSpace(ct) {
	case patchV20:
		draft = 4
	case patchV21:
		draft = 10
	default:
		return nil, &httpError{status: http.StatusUnsupportedMediaType,
			header: http.Header{"Accept-Patch": {patchV20 + ", " + patchV21}}}
	}
	body, err := requireJSON(r)
	if err != nil {
		return nil, err
	}
	list, ok := body.([]any)
	if !ok {
		return nil, badRequest("Request body must be a JSON array of operation objects.")
	}
	changes := make([]change, 0, len(list))
	for _, raw := range list {
		obj, ok := raw.(object)
		if !ok {
			return nil, badRequest("Operations must be JSON objects.")
		}
		ch := change{draft: draft}
		var pointer any
		if draft == 10 {
			op, ok := obj.get("op")
			if !ok || op == nil {
				return nil, badRequest("Unable to find `op` in JSON Schema change. It must be one of the following: add, remove, replace.")
			}
			ch.op = fmt.Sprint(op)
			if _, isStr := op.(string); !isStr || (ch.op != "add" && ch.op != "remove" && ch.op != "replace") {
				return nil, badRequest("Invalid operation: `%s`. It must be one of the following: add, remove, replace.", pyText(op))
			}
			if pointer, ok = obj.get("path"); !ok {
				return nil, badRequest("Unable to find 'path' in JSON Schema change")
			}
		} else {
			for _, k := range []string{"add", "remove", "replace"} {
				if _, ok := obj.get(k); ok {
					if ch.op != "" {
						return nil, badRequest(`Operation objects must contain only one member named "add", "remove", or "replace".`)
					}
					ch.op = k
				}
			}
			if ch.op == "" {
				return nil, badRequest(`Operation objects must contain exactly one member named "add", "remove", or "replace".`)
			}
			pointer, _ = obj.get(ch.op)
		}
		if ch.path, err = decodePointer(pointer); err != nil {
			return nil, err
		}
		depth := 1
		if ch.path[0] == "locations" && ch.op != "replace" {
			depth = 2
		}
		if len(ch.path) != depth {
			return nil, badRequest("Invalid JSON pointer for this resource: '/%s'", strings.Join(ch.path, "/"))
		}
		if ch.op != "remove" {
			if ch.value, ok = obj.get("value"); !ok {
				return nil, badRequest(`Operation "%s" requires a member named "value".`, ch.op)
			}
		}
		if err := s.validateChange(ch); err != nil {
			return nil, err
		}
		changes = append(changes, ch)
	}
	return changes, nil
}

// pyText is how Python's "%s" shows a decoded JSON value.
func pyText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return pyRepr(v)
}

// decodePointer validates and splits a JSON pointer.
func decodePointer(v any) ([]string, error) {
	p, ok := v.(string)
	if !ok || !strings.HasPrefix(p, "/") {
		return nil, badRequest("Pointer `%s` does not start with \"/\".", pyText(v))
	}
	switch {
	case adjacentSlash.MatchString(p[1:]):
		return nil, badRequest("Pointer `%s` contains adjacent \"/\".", p)
	case len(p) > 1 && strings.HasSuffix(p, "/"):
		return nil, badRequest("Pointer `%s` end with \"/\".", p)
	case strings.TrimSpace(p[1:]) == "/":
		return nil, badRequest("Pointer `%s` does not contains valid token.", p)
	case badTilde.MatchString(p) || strings.HasSuffix(p, "~"):
		return nil, badRequest("Pointer `%s` contains \"~\" not part of a recognized escape sequence.", p)
	}
	parts := strings.Split(strings.TrimLeft(p, "/"), "/")
	for i, part := range parts {
		parts[i] = strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~"))
	}
	return parts, nil
}

// validateChange applies the read-only, reserved and schema checks.
func (s *server) validateChange(ch change) error {
	root := ch.path[0]
	if patchReadOnly[root] {
		return explain(http.StatusForbidden, "Attribute '%s' is read-only.", root)
	}
	if reservedKeys[root] || strings.HasPrefix(root, reservedNamespace) {
		return explain(http.StatusForbidden, "Attribute '%s' is reserved.", root)
	}
	if ch.op == "remove" {
		return nil
	}
	// Glance leaves this to the database, which fails on MySQL's
	// VARCHAR(255): refuse it cleanly, as on create.
	if ch.op == "add" && len(ch.path) == 1 && utf8.RuneCountInString(root) > 255 {
		return badRequest("Custom property should not be greater than 255 characters.")
	}
	switch {
	case len(ch.path) == 1:
		return s.schemas.validate(object{{root, ch.value}})
	case root == "locations" || root == "tags":
		return s.schemas.validate(object{{root, []any{ch.value}}})
	}
	return nil
}

func (s *server) updateImage(c echo.Context) error {
	r := c.Request()
	changes, err := s.parsePatch(r)
	if err != nil {
		return err
	}
	caller := callerOf(c)
	repo, img, err := s.getImage(c)
	if err != nil {
		return err
	}
	if len(changes) > 0 {
		from := img.Meta().Status
		err := img.Update(func(m *domain.Meta) error {
			for _, ch := range changes {
				if err := s.applyChange(m, ch, caller); err != nil {
					return err
				}
			}
			return checkRecord(m)
		})
		if err != nil {
			return err
		}
		if err := repo.Save(r.Context(), img, from); err != nil {
			return err
		}
	}
	m := img.Meta()
	return writeJSON(c, http.StatusOK, s.view(caller).appendImage(nil, &m))
}

// applyChange is ImagesController._do_add/_do_replace/_do_remove on a copy
// of the record.
func (s *server) applyChange(m *domain.Meta, ch change, caller *domain.Caller) error {
	root := ch.path[0]
	if root == "locations" {
		return s.applyLocations(m, ch)
	}
	switch ch.op {
	case "replace":
		if root == "owner" && !caller.IsAdmin {
			return detailed(http.StatusForbidden, "Owner can't be updated by non admin.")
		}
		if baseAttrs[root] {
			return setBase(m, root, ch.value)
		}
		if _, ok := m.Properties[root]; !ok {
			return detailed(http.StatusConflict, "Property %s does not exist.", root)
		}
		m.Properties[root], _ = ch.value.(string)
	case "add":
		_, exists := m.Properties[root]
		if ch.draft == 4 && (baseAttrs[root] || exists) {
			return detailed(http.StatusConflict, "Property %s already present.", root)
		}
		if baseAttrs[root] {
			return setBase(m, root, ch.value)
		}
		if m.Properties == nil {
			m.Properties = map[string]string{}
		}
		m.Properties[root], _ = ch.value.(string)
	case "remove":
		if baseAttrs[root] {
			return detailed(http.StatusForbidden, "Property %s may not be removed.", root)
		}
		if _, ok := m.Properties[root]; !ok {
			return detailed(http.StatusConflict, "Property %s does not exist.", root)
		}
		delete(m.Properties, root)
	}
	return nil
}

// applyLocations is ImagesController._do_{add,replace,remove}_locations:
// the deprecated location operations of show_multiple_locations. The
// location layer below checks each new URL against the stores, tags it with
// its store, sets the size of an image without one, and deletes the data
// of removed locations when the image is saved.
func (s *server) applyLocations(m *domain.Meta, ch change) error {
	switch ch.op {
	case "replace":
		list, _ := ch.value.([]any)
		if len(list) == 0 {
			return detailed(http.StatusForbidden, "Cannot set locations to empty list.")
		}
		if !s.opts.ShowMultipleLocations {
			return explain(http.StatusForbidden, "It's not allowed to update locations if locations are invisible.")
		}
		if m.Status != domain.StatusActive && m.Status != domain.StatusQueued {
			return explain(http.StatusConflict, "It's not allowed to replace locations if image status is %s.", m.Status)
		}
		locs := make([]domain.Location, 0, len(list))
		vals := make([]object, 0, len(list))
		for _, v := range list {
			l, vd, err := locationOf(v)
			if err != nil {
				return err
			}
			locs = append(locs, l)
			vals = append(vals, vd)
		}
		set, err := s.validationData(m, vals)
		if err != nil {
			return err
		}
		if len(m.Locations) > 0 && !sameURLs(m.Locations, locs) {
			return explain(http.StatusBadRequest, "Original locations is not empty: %s", pyLocations(m.Locations))
		}
		m.Locations = locs
		s.activate(m, set)
	case "add":
		if !s.opts.ShowMultipleLocations {
			return explain(http.StatusForbidden, "It's not allowed to add locations if locations are invisible.")
		}
		if m.Status != domain.StatusActive && m.Status != domain.StatusQueued {
			return explain(http.StatusConflict, "It's not allowed to add locations if image status is %s.", m.Status)
		}
		l, vd, err := locationOf(ch.value)
		if err != nil {
			return err
		}
		set, err := s.validationData(m, []object{vd})
		if err != nil {
			return err
		}
		pos, ok := locationPos(ch.path[1], len(m.Locations), true)
		if !ok {
			return explain(http.StatusBadRequest, "Invalid position for adding a location.")
		}
		m.Locations = slices.Insert(m.Locations, pos, l)
		s.activate(m, set)
	case "remove":
		if !s.opts.ShowMultipleLocations {
			return explain(http.StatusForbidden, "It's not allowed to remove locations if locations are invisible.")
		}
		if m.Status != domain.StatusActive {
			return explain(http.StatusConflict, "It's not allowed to remove locations if image status is %s.", m.Status)
		}
		if len(m.Locations) == 1 {
			return explain(http.StatusForbidden, "Cannot remove last location in the image.")
		}
		pos, ok := locationPos(ch.path[1], len(m.Locations), false)
		if !ok {
			return explain(http.StatusBadRequest, "Invalid position for removing a location.")
		}
		m.Locations = slices.Delete(m.Locations, pos, pos+1)
	}
	return nil
}

// activate makes a queued image that got a location active, with the
// values of its validation data.
func (s *server) activate(m *domain.Meta, set func(*domain.Meta)) {
	if m.Status != domain.StatusQueued {
		return
	}
	set(m)
	m.Status = domain.StatusActive
}

// sameURLs reports whether a and b hold the same URLs, in any order.
func sameURLs(a, b []domain.Location) bool {
	urls := func(ls []domain.Location) []string {
		out := make([]string, len(ls))
		for i, l := range ls {
			out[i] = l.URL
		}
		slices.Sort(out)
		return out
	}
	return slices.Equal(urls(a), urls(b))
}

// pyLocations renders locations as Python shows the list in messages.
func pyLocations(ls []domain.Location) string {
	list := make([]any, len(ls))
	for i, l := range ls {
		status := l.Status
		if status == "" {
			status = "active"
		}
		md := any(object{})
		if l.Metadata != nil {
			md = ordered(l.Metadata)
		}
		list[i] = object{{"id", json.Number(strconv.FormatInt(l.ID, 10))}, {"url", l.URL}, {"metadata", md},
			{"status", status}}
	}
	return pyRepr(list)
}

// locationPos is ImagesController._get_locations_op_pos: an index, or "-"
// for the end when adding.
func locationPos(p string, n int, allowEnd bool) (int, bool) {
	pos := n - 1
	if allowEnd {
		pos = n
	}
	switch {
	case p != "" && strings.Trim(p, "0123456789") == "":
		v, err := strconv.Atoi(p)
		if err != nil {
			return 0, false
		}
		pos = v
	case p != "-":
		return 0, false
	}
	if !allowEnd && (pos < 0 || pos >= n) {
		return 0, false
	}
	if pos > n {
		pos = n // Python's list.insert clamps
	}
	return pos, true
}

// locationOf converts a location object of the PATCH body, with its
// validation_data (nil when absent).
func locationOf(v any) (domain.Location, object, error) {
	bad := func(msg string) error {
		return explain(http.StatusBadRequest, "Provided object does not match schema 'image': %s", msg)
	}
	obj, ok := v.(object)
	if !ok {
		return domain.Location{}, nil, bad(pyRepr(plain(v)) + " is not of type 'object'")
	}
	u, ok := obj.get("url")
	if !ok {
		return domain.Location{}, nil, bad("'url' is a required property")
	}
	us, ok := u.(string)
	if !ok {
		return domain.Location{}, nil, bad(pyRepr(plain(u)) + " is not of type 'string'")
	}
	mv, ok := obj.get("metadata")
	if !ok {
		return domain.Location{}, nil, bad("'metadata' is a required property")
	}
	mo, ok := mv.(object)
	if !ok {
		return domain.Location{}, nil, bad(pyRepr(plain(mv)) + " is not of type 'object'")
	}
	var vd object
	if x, ok := obj.get("validation_data"); ok {
		if vd, ok = x.(object); !ok {
			return domain.Location{}, nil, bad(pyRepr(plain(x)) + " is not of type 'object'")
		}
		for _, mb := range vd {
			switch mb.key {
			case "checksum", "os_hash_algo", "os_hash_value":
				sv, isStr := mb.val.(string)
				switch {
				case !isStr:
					return domain.Location{}, nil, bad(pyRepr(plain(mb.val)) + " is not of type 'string'")
				case mb.key == "checksum" && len([]rune(sv)) > 32:
					return domain.Location{}, nil, bad(pyRepr(sv) + " is too long")
				case mb.key == "checksum" && len([]rune(sv)) < 32:
					return domain.Location{}, nil, bad(pyRepr(sv) + " is too short")
				case mb.key == "os_hash_algo" && len([]rune(sv)) > 64, mb.key == "os_hash_value" && len([]rune(sv)) > 128:
					return domain.Location{}, nil, bad(pyRepr(sv) + " is too long")
				}
			default:
				return domain.Location{}, nil, bad("Additional properties are not allowed (" + pyRepr(mb.key) + " was unexpected)")
			}
		}
		for _, k := range []string{"os_hash_algo", "os_hash_value"} {
			if _, ok := vd.get(k); !ok {
				return domain.Location{}, nil, bad(pyRepr(k) + " is a required property")
			}
		}
	}
	md, _ := plain(mo).(map[string]any)
	return domain.Location{URL: us, Metadata: md}, vd, nil
}

// validationData is ImagesController._validate_validation_data: the
// checksum and hashes the new locations vouch for must agree with each
// other and with what the image already has, and may only be new on a
// queued image. It returns how to record the new values.
func (s *server) validationData(m *domain.Meta, vals []object) (func(*domain.Meta), error) {
	var keys []string
	given := map[string]string{}
	for _, vd := range vals {
		for _, mb := range vd {
			v, _ := mb.val.(string)
			if old, ok := given[mb.key]; ok && old != v {
				return nil, explain(http.StatusConflict, "Conflicting values for %s", mb.key)
			}
			if _, ok := given[mb.key]; !ok {
				keys = append(keys, mb.key)
			}
			given[mb.key] = v
		}
	}
	current := func(k string) *string {
		switch k {
		case "checksum":
			return m.Checksum
		case "os_hash_algo":
			return m.HashAlgo
		}
		return m.HashValue
	}
	var fresh []string
	for _, k := range keys {
		cur := current(k)
		if cur != nil && *cur == given[k] {
			continue
		}
		if cur != nil && *cur != "" {
			return nil, explain(http.StatusConflict, "%s is already set with a different value", k)
		}
		fresh = append(fresh, k)
	}
	none := func(*domain.Meta) {}
	if len(fresh) == 0 {
		return none, nil
	}
	if m.Status != domain.StatusQueued {
		return nil, explain(http.StatusConflict, "New value(s) for %s may only be provided when image status is 'queued'",
			strings.Join(fresh, ", "))
	}
	has := func(k string) bool { return slices.Contains(fresh, k) }
	if has("checksum") {
		sum := given["checksum"]
		raw, ok := fromHex(sum)
		if !ok {
			return nil, explain(http.StatusConflict, "checksum (%s) is not a valid hexadecimal value", sum)
		}
		if len(raw) != 16 {
			return nil, explain(http.StatusConflict, "checksum (%s) is not the correct size for md5 (should be 16 bytes)", sum)
		}
	}
	algo := "None"
	if has("os_hash_algo") {
		algo = given["os_hash_algo"]
	}
	if algo != s.hashAlgo() {
		return nil, explain(http.StatusConflict, "os_hash_algo must be %s, not %s", s.hashAlgo(), algo)
	}
	value := given["os_hash_value"]
	raw, ok := fromHex(value)
	if !ok {
		return nil, explain(http.StatusConflict, "os_hash_value (%s) is not a valid hexadecimal value", value)
	}
	if want, _ := digestSize(algo); len(raw) != want {
		return nil, explain(http.StatusConflict, "os_hash_value (%s) is not the correct size for %s (should be %d bytes)",
			value, algo, want)
	}
	return func(m *domain.Meta) {
		for _, k := range fresh {
			v := domain.Ptr(given[k])
			switch k {
			case "checksum":
				m.Checksum = v
			case "os_hash_algo":
				m.HashAlgo = v
			default:
				m.HashValue = v
			}
		}
	}, nil
}

// plain converts ordered JSON into maps and slices.
func plain(v any) any {
	switch t := v.(type) {
	case object:
		m := make(map[string]any, len(t))
		for _, x := range t {
			m[x.key] = plain(x.val)
		}
		return m
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = plain(x)
		}
		return out
	}
	return v
}
