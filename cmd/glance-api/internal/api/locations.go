package api

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/glance-go/glance-go/domain"
	"github.com/glance-go/glance-go/proxies/location"
)

// locationRoutes are the location routes (/v2/images/{id}/locations,
// DELETE /v2/stores/{store}/{id}).
func (s *server) locationRoutes() []route {
	return []route{
		{"/v2/images/:id/locations", []methodHandler{
			{http.MethodPost, s.addLocation},
			{http.MethodGet, s.getLocations},
		}},
		{"/v2/stores/:store/:id", []methodHandler{{http.MethodDelete, bodyless(mutating(s.deleteFromStore))}}},
	}
}

// policyEnforcer is what the policy layer offers for the location
// operations that domain.Image has no method for.
type policyEnforcer interface {
	Enforce(action string) error
}

// enforce checks a policy rule on img through the first layer under it that
// enforces policies. Without such a layer the action is refused: a chain
// built without the policy ring allows nothing it would have decided.
func enforce(img domain.Image, action string) error {
	for x := img; x != nil; x = x.Unwrap() {
		if e, ok := x.(policyEnforcer); ok {
			return e.Enforce(action)
		}
	}
	return domain.Errorf(domain.ErrForbidden, "Policy doesn't allow %s to be performed: no policy decides it.", action)
}

// multiStore reports whether enabled_backends is in use.
func (s *server) multiStore() bool { return s.opts.Stores != nil && s.opts.Stores.Multi() }

// hashAlgo is the configured hashing_algorithm.
func (s *server) hashAlgo() string {
	if s.opts.HashAlgo == "" {
		return location.DefaultHashAlgo
	}
	return s.opts.HashAlgo
}

// deleteFromStore is ImagesController.delete_from_store: the image's data
// is deleted from one store and its location there dropped.
func (s *server) deleteFromStore(c echo.Context) error {
	if !s.multiStore() {
		return &httpError{status: http.StatusNotFound}
	}
	store, id := c.Param("store"), c.Param("id")
	if b, ok := s.opts.Stores.Backend(store); !ok || b == nil {
		return explain(http.StatusConflict, "The selected store %s is not available on this node.", store)
	}
	ctx := c.Request().Context()
	repo, img, err := s.getImage(c)
	if errors.Is(err, domain.ErrNotFound) {
		return withMessage(err, "Failed to find image "+id)
	}
	if err != nil {
		return err
	}
	if err := enforce(img, "get_image_location"); err != nil {
		return err
	}
	if err := enforce(img, "delete_image_location"); err != nil {
		return err
	}
	m := img.Meta()
	if m.Status != domain.StatusActive {
		return explain(http.StatusConflict, "It's not allowed to remove image data from store if image status is not 'active'")
	}
	if len(m.Locations) == 1 {
		return explain(http.StatusForbidden,
			"Cannot delete image data from the only store containing it. Consider deleting the image instead.")
	}
	pos := -1
	for k, l := range m.Locations {
		if location.StoreOf(l) == store {
			pos = k
			break
		}
	}
	if pos < 0 {
		return explain(http.StatusNotFound, "Image %s is not stored in store %s.", id, store)
	}
	err = img.Update(func(m *domain.Meta) error {
		if pos >= len(m.Locations) || location.StoreOf(m.Locations[pos]) != store {
			return explain(http.StatusConflict, "The locations of image %s changed meanwhile.", id)
		}
		m.Locations = append(m.Locations[:pos:pos], m.Locations[pos+1:]...)
		return nil
	})
	if err != nil {
		return err
	}
	if err := repo.Save(ctx, img, m.Status); err != nil {
		return err
	}
	return noContent(c)
}

// getLocations is ImagesController.get_locations (API 2.17): the image's
// locations, for services (fetch_image_location).
func (s *server) getLocations(c echo.Context) error {
	_, img, err := s.getImage(c)
	if err != nil {
		return err
	}
	if err := enforce(img, "fetch_image_location"); err != nil {
		return err
	}
	m := img.Meta()
	b := []byte{'['}
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
	b = append(b, ']')
	return writeJSON(c, http.StatusOK, b)
}

// addLocationBody is a validated POST /locations body.
type addLocationBody struct {
	url       string
	algo      string // os_hash_algo of validation_data, "" without it
	hashValue string
}

// parseAddLocation validates the body against Glance's add_location
// schema (images.py get_add_location_properties).
func parseAddLocation(v any) (addLocationBody, error) {
	bad := func(format string, args ...any) error {
		return explain(http.StatusBadRequest, "Provided object does not match schema 'location': "+format, args...)
	}
	var out addLocationBody
	obj, ok := v.(object)
	if !ok {
		return out, bad("%s is not of type 'object'", pyRepr(plain(v)))
	}
	u, ok := obj.get("url")
	if !ok {
		return out, bad("'url' is a required property")
	}
	if out.url, ok = u.(string); !ok {
		return out, bad("%s is not of type 'string'", pyRepr(plain(u)))
	}
	vd, ok := obj.get("validation_data")
	if !ok {
		return out, nil
	}
	vo, ok := vd.(object)
	if !ok {
		return out, bad("%s is not of type 'object'", pyRepr(plain(vd)))
	}
	for _, mb := range vo {
		switch mb.key {
		case "os_hash_algo", "os_hash_value":
		default:
			return out, bad("Additional properties are not allowed (%s was unexpected)", pyRepr(mb.key))
		}
	}
	if a, ok := vo.get("os_hash_algo"); ok {
		s, isStr := a.(string)
		switch {
		case !isStr:
			return out, bad("%s is not of type 'string'", pyRepr(plain(a)))
		case len([]rune(s)) > 64:
			return out, bad("%s is too long", pyRepr(s))
		case s != "sha1" && s != "sha256" && s != "sha512" && s != "md5":
			return out, bad("%s is not one of ['sha1', 'sha256', 'sha512', 'md5']", pyRepr(s))
		}
		out.algo = s
	}
	if h, ok := vo.get("os_hash_value"); ok {
		s, isStr := h.(string)
		switch {
		case !isStr:
			return out, bad("%s is not of type 'string'", pyRepr(plain(h)))
		case len([]rune(s)) > 128:
			return out, bad("%s is too long", pyRepr(s))
		}
		out.hashValue = s
	}
	_, hasAlgo := vo.get("os_hash_algo")
	_, hasValue := vo.get("os_hash_value")
	switch {
	case hasValue && !hasAlgo:
		return out, bad("'os_hash_algo' is a dependency of 'os_hash_value'")
	case hasAlgo && !hasValue:
		return out, bad("'os_hash_value' is a dependency of 'os_hash_algo'")
	}
	return out, nil
}

// fromHex decodes hex digits as Python's bytearray.fromhex does: ASCII
// whitespace between bytes is skipped.
func fromHex(s string) ([]byte, bool) {
	s = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\f' || r == '\v' {
			return -1
		}
		return r
	}, s)
	b, err := hex.DecodeString(s)
	return b, err == nil
}

// digestSize is the size in bytes of the named hash's digest.
func digestSize(algo string) (int, bool) {
	if algo == "md5" {
		return md5.Size, true
	}
	h, ok := location.NewHash(algo)
	if !ok {
		return 0, false
	}
	return h.Size(), true
}

// httpStoreConfigured is utils.is_http_store_configured: url is an http(s)
// URL and an http store is configured.
func (s *server) httpStoreConfigured(url string) bool {
	if !strings.HasPrefix(url, "http") || s.opts.Stores == nil {
		return false
	}
	if s.opts.Stores.Multi() {
		for _, b := range s.opts.Stores.Backends() {
			if b.Type == "http" {
				return true
			}
		}
		return false
	}
	_, err := s.opts.Stores.ForURL(url)
	return err == nil
}

// addLocation is ImagesController.add_location (API 2.17): a queued image
// gets its data from a location a service names. The location is checked
// and recorded before the answer (Glance does that in its task); the
// checksum and multihash are computed from the data afterwards, and with
// validation_data the image stays importing until the hash matches.
func (s *server) addLocation(c echo.Context) error {
	r := c.Request()
	raw, err := requireJSON(r)
	if err != nil {
		return err
	}
	body, err := parseAddLocation(raw)
	if err != nil {
		return err
	}
	caller := callerOf(c)
	repo, img, err := s.getImage(c)
	if err != nil {
		return err
	}
	m := img.Meta()
	if m.Status != domain.StatusQueued {
		return explain(http.StatusConflict, "It's not allowed to add locations if image status is %s.", m.Status)
	}
	if err := enforce(img, "add_image_location"); err != nil {
		return err
	}
	service := caller.HasRole("service")
	for _, r := range caller.ServiceRoles {
		service = service || strings.EqualFold(r, "service")
	}
	if !service && !s.httpStoreConfigured(body.url) {
		return explain(http.StatusForbidden, "http store must be enabled to use location API by normal user.")
	}
	if body.hashValue != "" || body.algo != "" {
		raw, ok := fromHex(body.hashValue)
		if !ok {
			return explain(http.StatusBadRequest, "os_hash_value (%s) is not a valid hexadecimal value", body.hashValue)
		}
		want, _ := digestSize(body.algo)
		if len(raw) != want {
			return explain(http.StatusBadRequest, "os_hash_value: (%s) is not the correct size for (%s) (should be (%d) bytes)",
				body.hashValue, body.algo, want)
		}
	}
	if _, ok := m.Properties["os_glance_import_task"]; ok {
		return explain(http.StatusConflict, "Image has active task")
	}
	algo := body.algo
	if algo == "" {
		algo = s.hashAlgo()
	}
	validate := body.hashValue != ""
	err = img.Update(func(m *domain.Meta) error {
		m.Locations = append(m.Locations, domain.Location{URL: body.url, Metadata: map[string]any{}})
		m.HashAlgo = domain.Ptr(algo)
		if validate {
			m.Status = domain.StatusImporting
		} else {
			m.Status = domain.StatusActive
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := repo.Save(r.Context(), img, domain.StatusQueued); err != nil {
		return err
	}
	// The hash is computed as the caller, with the rights the recorded
	// location already proved, as Glance's task does outside the policy
	// checks of the API.
	bg := *caller
	bg.IsAdmin = true
	go s.hashLocation(context.WithoutCancel(r.Context()), &bg, m.ID, algo, body.hashValue)
	c.Response().Header().Set(echo.HeaderContentLength, "0")
	c.Response().Header().Set(echo.HeaderContentType, "text/html; charset=UTF-8")
	return c.NoContent(http.StatusAccepted)
}

// hashRetries is http_retries: how many times the data of a new location is
// read before giving up on its hash.
const hashRetries = 3

// hashLocation computes the checksum and multihash of image id's data (the
// location_import flow's _CalculateHash and _VerifyValidationData). With
// want set, the image is active only when the multihash equals want;
// otherwise it goes back to queued without the location.
func (s *server) hashLocation(ctx context.Context, caller *domain.Caller, id, algo, want string) {
	log := s.log.With("image_id", id, "request_id", caller.RequestID)
	repo, _ := s.gw.Images(caller)
	var (
		img      domain.Image
		checksum string
		multi    string
		err      error
	)
	for try := 1; try <= hashRetries; try++ {
		if img, err = repo.Get(ctx, id); err != nil {
			log.Warn("image gone before its hash was computed", "error", err)
			return
		}
		if checksum, multi, err = digest(ctx, img, algo); err == nil {
			break
		}
		log.Warn("cannot compute the hash of a new location", "try", try, "error", err)
	}
	from := img.Meta().Status
	switch {
	case err != nil && want == "":
		log.Warn("hash calculation failed for the image data; the image stays active without hashes")
		return
	case err == nil && (want == "" || multi == want):
		err = img.Update(func(m *domain.Meta) error {
			m.Checksum, m.HashAlgo, m.HashValue = domain.Ptr(checksum), domain.Ptr(algo), domain.Ptr(multi)
			m.Status = domain.StatusActive
			return nil
		})
	default:
		if err == nil {
			log.Warn("os_hash_value of the validation data does not match the data", "want", want, "got", multi)
		}
		err = img.Update(func(m *domain.Meta) error {
			m.Locations = nil
			m.Size, m.Checksum, m.HashAlgo, m.HashValue = nil, nil, nil, nil
			m.Status = domain.StatusQueued
			return nil
		})
	}
	if err == nil {
		err = repo.Save(ctx, img, from)
	}
	if err != nil {
		log.Error("cannot record the result of hashing a new location", "error", err)
	}
}

// digest reads all of img's data and returns its md5 checksum and its
// multihash under algo.
func digest(ctx context.Context, img domain.Image, algo string) (string, string, error) {
	h, ok := location.NewHash(algo)
	if !ok {
		return "", "", domain.Errorf(domain.ErrUnavailable, "Unsupported hashing algorithm %q.", algo)
	}
	rc, err := img.Data(ctx, 0, -1)
	if err != nil {
		return "", "", err
	}
	defer rc.Close()
	sum := md5.New()
	if _, err := io.Copy(io.MultiWriter(sum, h), rc); err != nil {
		return "", "", err
	}
	return hexOf(sum), hexOf(h), nil
}

func hexOf(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }
