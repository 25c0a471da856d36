package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/glance-go/glance-go/domain"
)

// maxJSONBody caps JSON request bodies; image metadata is small.
const maxJSONBody = 8 << 20

// readJSON reads a JSON request body as JSONRequestDeserializer does.
// It returns (nil, nil) when the request has no body.
func readJSON(r *http.Request) (any, error) {
	if !hasBody(r) {
		return nil, nil
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, maxJSONBody+1))
	if err != nil {
		return nil, badRequest("Malformed JSON in request body.")
	}
	if len(data) > maxJSONBody {
		return nil, explain(http.StatusRequestEntityTooLarge, "The request body is too large.")
	}
	v, err := decodeOrdered(data)
	var limit *jsonLimitError
	if errors.As(err, &limit) {
		return nil, badRequest("Malformed JSON in request body: %s", limit.what)
	}
	if err != nil {
		return nil, badRequest("Malformed JSON in request body.")
	}
	switch v.(type) {
	case object, []any:
		return v, nil
	}
	return nil, badRequest("Unexpected body type. Expected list/dict.")
}

// requireJSON is readJSON for routes that need a body.
func requireJSON(r *http.Request) (any, error) {
	v, err := readJSON(r)
	if err == nil && v == nil {
		err = badRequest("Body expected in request.")
	}
	return v, err
}

var (
	createDisallowed = []string{"direct_url", "self", "file", "schema", "stores"}
	createBase       = map[string]bool{"checksum": true, "created_at": true, "container_format": true,
		"disk_format": true, "id": true, "min_disk": true, "min_ram": true, "name": true, "size": true,
		"virtual_size": true, "status": true, "tags": true, "owner": true, "updated_at": true,
		"visibility": true, "protected": true, "os_hidden": true}
	factoryReadOnly = []string{"created_at", "updated_at", "status", "checksum", "size", "virtual_size"}
	patchReadOnly   = map[string]bool{"created_at": true, "updated_at": true, "status": true, "checksum": true,
		"size": true, "virtual_size": true, "direct_url": true, "self": true, "file": true, "schema": true,
		"id": true, "os_hash_algo": true, "os_hash_value": true}
	reservedKeys = map[string]bool{"location": true, "deleted": true, "deleted_at": true}
)

const reservedNamespace = "os_glance"

func (s *server) createImage(c echo.Context) error {
	r := c.Request()
	body, err := requireJSON(r)
	if err != nil {
		return err
	}
	obj, ok := body.(object)
	if !ok {
		return badRequest("Unexpected body type. Expected list/dict.")
	}
	for _, k := range createDisallowed {
		if _, ok := obj.get(k); ok {
			return explain(http.StatusForbidden, "Attribute '%s' is read-only.", k)
		}
	}
	if err := s.schemas.validate(obj); err != nil {
		return err
	}
	for _, m := range obj {
		if createBase[m.key] {
			continue
		}
		if utf8.RuneCountInString(m.key) > 255 {
			return badRequest("Custom property should not be greater than 255 characters.")
		}
		if reservedKeys[m.key] || strings.HasPrefix(m.key, reservedNamespace) {
			return detailed(http.StatusForbidden, "Attribute '%s' is reserved.", m.key)
		}
	}
	for _, k := range factoryReadOnly {
		if _, ok := obj.get(k); ok {
			return explain(http.StatusForbidden, "Attribute '%s' is read-only.", k)
		}
	}
	if _, ok := obj.get("locations"); ok {
		return explain(http.StatusForbidden, "Attribute 'locations' is reserved.")
	}

	caller := callerOf(c)
	m := domain.Meta{Properties: map[string]string{}}
	if caller.ProjectID != "" {
		m.Owner = domain.Ptr(caller.ProjectID)
	}
	for _, f := range obj {
		if err := setBase(&m, f.key, f.val); err != nil {
			return err
		}
		if !createBase[f.key] {
			m.Properties[f.key], _ = f.val.(string)
		}
	}
	if err := checkRecord(&m); err != nil {
		return err
	}
	repo, factory := s.gw.Images(caller)
	img, err := factory.NewImage(r.Context(), m)
	if err != nil {
		return err
	}
	if err := repo.Add(r.Context(), img); err != nil {
		return err
	}
	out := img.Meta()
	h := c.Response().Header()
	h.Set(echo.HeaderLocation, s.baseURL(r)+"/v2/images/"+out.ID)
	if len(s.opts.ImportMethods) > 0 {
		h.Set("OpenStack-image-import-methods", strings.Join(s.opts.ImportMethods, ","))
	}
	if s.opts.Stores != nil && s.opts.Stores.Multi() {
		ids := make([]string, 0, 4)
		for _, b := range s.opts.Stores.Backends() {
			ids = append(ids, b.ID)
		}
		h.Set("OpenStack-image-store-ids", strings.Join(ids, ","))
	}
	return writeJSON(c, http.StatusCreated, s.view(caller).appendImage(nil, &out))
}

// setBase stores a schema-valid value of a base attribute in m. Keys that
// are not base attributes are left alone.
func setBase(m *domain.Meta, key string, v any) error {
	str := func() *string {
		if s, ok := v.(string); ok {
			return &s
		}
		return nil
	}
	switch key {
	case "id":
		m.ID, _ = v.(string)
	case "name":
		m.Name = str()
	case "owner":
		m.Owner = str()
	case "disk_format":
		m.DiskFormat = str()
	case "container_format":
		m.ContainerFormat = str()
	case "visibility":
		s, _ := v.(string)
		m.Visibility = domain.Visibility(s)
	case "protected":
		m.Protected, _ = v.(bool)
	case "os_hidden":
		m.Hidden, _ = v.(bool)
	case "min_ram", "min_disk":
		n, err := intValue(key, v)
		if err != nil {
			return err
		}
		if key == "min_ram" {
			m.MinRAM = n
		} else {
			m.MinDisk = n
		}
	case "tags":
		list, _ := v.([]any)
		tags := make([]string, 0, len(list))
		for _, t := range list {
			s, _ := t.(string)
			tags = append(tags, s)
		}
		m.SetTags(tags)
	}
	return nil
}

// intValue converts a schema-valid integer, enforcing the domain's and the
// database's bounds with Glance's messages.
func intValue(key string, v any) (int, error) {
	n, _ := v.(json.Number)
	f, err := n.Float64()
	if err != nil {
		return 0, badRequest("Invalid value '%s' for parameter '%s': must be an integer", n, key)
	}
	if f < 0 {
		return 0, badRequest("Invalid value '%s' for parameter '%s': Cannot be a negative value", n, key)
	}
	if f > 2147483647 {
		return 0, badRequest("'%s' value out of range, must not exceed 2147483647.", key)
	}
	return int(f), nil
}

var fourByte = regexp.MustCompile("[\U00010000-\U0010ffff]")

// pyTitle is Python's str.title().
func pyTitle(s string) string {
	var b strings.Builder
	prevLetter := false
	for _, r := range s {
		if unicode.IsLetter(r) {
			if prevLetter {
				b.WriteRune(unicode.ToLower(r))
			} else {
				b.WriteRune(unicode.ToUpper(r))
			}
			prevLetter = true
			continue
		}
		prevLetter = false
		b.WriteRune(r)
	}
	return b.String()
}

// checkRecord applies the database's checks (4-byte UTF-8) that Glance
// reports as 400.
func checkRecord(m *domain.Meta) error {
	for _, f := range []struct {
		key string
		val *string
	}{{"name", m.Name}, {"owner", m.Owner}} {
		if f.val != nil && fourByte.MatchString(*f.val) {
			return badRequest("%s can't contain 4 byte unicode characters.", pyTitle(f.key))
		}
	}
	for k, v := range m.Properties {
		if fourByte.MatchString(k) {
			return badRequest("Property names can't contain 4 byte unicode.")
		}
		if fourByte.MatchString(v) {
			return badRequest("%s can't contain 4 byte unicode characters.", pyTitle(k))
		}
	}
	for _, t := range m.Tags {
		if fourByte.MatchString(t) {
			return badRequest("Param values can't contain 4 byte unicode.")
		}
	}
	return nil
}

func (s *server) listImages(c echo.Context) error {
	r := c.Request()
	q, err := s.parseListQuery(r.URL.RawQuery)
	if err != nil {
		return err
	}
	caller := callerOf(c)
	repo, _ := s.gw.Images(caller)
	page, err := repo.List(r.Context(), q)
	if err != nil {
		if errors.Is(err, domain.ErrNotFound) {
			return withStatus(http.StatusBadRequest, err)
		}
		return err
	}
	next := ""
	if page.Full && len(page.Images) > 0 {
		next = page.Images[len(page.Images)-1].Meta().ID
	}
	first, nextHref := listLinks(r.URL.RawQuery, next)
	v := s.view(caller)
	b := make([]byte, 0, 1024)
	b = append(b, `{"images": [`...)
	for i, img := range page.Images {
		if i > 0 {
			b = append(b, ", "...)
		}
		m := img.Meta()
		start := len(b)
		b = v.appendImage(b, &m)
		if i == 0 && len(page.Images) > 1 {
			// size the buffer once from the first image
			b = slices.Grow(b, (len(b)-start+2)*(len(page.Images)-1)*9/8+256)
		}
	}
	b = append(b, `], "first": `...)
	b = appendString(b, first)
	b = append(b, `, "schema": "/v2/schemas/images"`...)
	if nextHref != "" {
		b = append(b, `, "next": `...)
		b = appendString(b, nextHref)
	}
	b = append(b, '}')
	return writeJSON(c, http.StatusOK, b)
}

// getImage loads the image named by the :id path parameter.
func (s *server) getImage(c echo.Context) (domain.Repo, domain.Image, error) {
	repo, _ := s.gw.Images(callerOf(c))
	img, err := repo.Get(c.Request().Context(), c.Param("id"))
	return repo, img, err
}

func (s *server) showImage(c echo.Context) error {
	_, img, err := s.getImage(c)
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, s.view(callerOf(c)).appendImage(make([]byte, 0, imageViewSize), domain.Peek(img)))
}

func (s *server) deleteImage(c echo.Context) error {
	ctx := c.Request().Context()
	repo, img, err := s.getImage(c)
	if errors.Is(err, domain.ErrNotFound) {
		return withMessage(err, "Failed to find image "+c.Param("id")+" to delete")
	}
	if err != nil {
		return err
	}
	var te *domain.TransitionError
	if err := img.Delete(ctx); err != nil {
		if errors.As(err, &te) {
			return withStatus(http.StatusBadRequest, err)
		}
		return err
	}
	if err := repo.Remove(ctx, img); err != nil {
		if errors.As(err, &te) {
			return withStatus(http.StatusBadRequest, err)
		}
		return err
	}
	return noContent(c)
}

func (s *server) deactivate(c echo.Context) error {
	return s.action(c, domain.Image.Deactivate)
}

func (s *server) reactivate(c echo.Context) error {
	return s.action(c, domain.Image.Reactivate)
}

// action runs deactivate or reactivate and saves the result.
func (s *server) action(c echo.Context, do func(domain.Image, context.Context) error) error {
	ctx := c.Request().Context()
	repo, img, err := s.getImage(c)
	if err != nil {
		return err
	}
	from := img.Meta().Status
	if err := do(img, ctx); err != nil {
		var te *domain.TransitionError
		if errors.As(err, &te) {
			return withStatus(http.StatusBadRequest, err)
		}
		return err
	}
	if err := repo.Save(ctx, img, from); err != nil {
		return err
	}
	return noContent(c)
}

func (s *server) addTag(c echo.Context) error {
	tag := c.Param("tag")
	if err := s.schemas.validate(object{{"tags", []any{tag}}}); err != nil {
		return err
	}
	return s.updateTags(c, func(m *domain.Meta) error {
		m.SetTags(append(m.Tags, tag))
		return checkRecord(m)
	})
}

func (s *server) deleteTag(c echo.Context) error {
	tag := c.Param("tag")
	return s.updateTags(c, func(m *domain.Meta) error {
		for i, t := range m.Tags {
			if t == tag {
				m.Tags = append(m.Tags[:i], m.Tags[i+1:]...)
				return nil
			}
		}
		return &httpError{status: http.StatusNotFound}
	})
}

// updateTags changes an image's tag set and saves it.
func (s *server) updateTags(c echo.Context, fn func(m *domain.Meta) error) error {
	ctx := c.Request().Context()
	repo, img, err := s.getImage(c)
	if err != nil {
		return err
	}
	from := img.Meta().Status
	if err := img.Update(fn); err != nil {
		return err
	}
	return orNoContent(c, repo.Save(ctx, img, from))
}

func orNoContent(c echo.Context, err error) error {
	if err != nil {
		return err
	}
	return noContent(c)
}
