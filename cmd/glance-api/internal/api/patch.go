package api

import (
	"fmt"
	"maps"
	"net/http"
	"regexp"
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

// applyLocations handles the deprecated location operations; the location
// layer below checks the URLs and the status rules.
func (s *server) applyLocations(m *domain.Meta, ch change) error {
	if ch.op == "replace" {
		if list, _ := ch.value.([]any); len(list) == 0 {
			return detailed(http.StatusForbidden, "Cannot set locations to empty list.")
		}
	}
	if !s.opts.ShowMultipleLocations {
		return explain(http.StatusForbidden, "It's not allowed to add/update/remove locations if locations are invisible.")
	}
	switch ch.op {
	case "replace":
		list, _ := ch.value.([]any)
		locs := make([]domain.Location, 0, len(list))
		for _, v := range list {
			l, err := locationOf(v)
			if err != nil {
				return err
			}
			locs = append(locs, l)
		}
		m.Locations = locs
	case "add":
		pos, err := locationPos(ch.path[1], len(m.Locations), true)
		if err != nil {
			return err
		}
		l, err := locationOf(ch.value)
		if err != nil {
			return err
		}
		m.Locations = append(m.Locations[:pos], append([]domain.Location{l}, m.Locations[pos:]...)...)
	case "remove":
		pos, err := locationPos(ch.path[1], len(m.Locations), false)
		if err != nil {
			return err
		}
		m.Locations = append(m.Locations[:pos], m.Locations[pos+1:]...)
	}
	return nil
}

// locationPos is ImagesController._get_locations_op_pos.
func locationPos(p string, n int, allowEnd bool) (int, error) {
	if p == "-" && allowEnd {
		return n, nil
	}
	pos, err := strconv.Atoi(p)
	if err != nil || pos < 0 || pos > n || (pos == n && !allowEnd) {
		return 0, badRequest("Invalid position for adding a location.")
	}
	return pos, nil
}

// locationOf converts a location object of the PATCH body.
func locationOf(v any) (domain.Location, error) {
	obj, ok := v.(object)
	if !ok {
		return domain.Location{}, badRequest("Invalid location")
	}
	u, _ := obj.get("url")
	us, ok := u.(string)
	if !ok {
		return domain.Location{}, badRequest("Invalid location")
	}
	md := map[string]any{}
	if mv, ok := obj.get("metadata"); ok {
		if mo, ok := mv.(object); ok {
			md = plain(mo).(map[string]any)
		}
	}
	return domain.Location{URL: us, Metadata: maps.Clone(md), Status: "active"}, nil
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
