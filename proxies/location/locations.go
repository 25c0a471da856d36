package location

import (
	"cmp"
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/glance-go/glance-go/domain"
	"github.com/glance-go/glance-go/stores"
)

// restrictedSchemes are the schemes a location added through the API may
// not use (glance/common/store_utils.py RESTRICTED_URI_SCHEMAS): they would
// let a user point an image at the server's own files.
var restrictedSchemes = map[string]bool{"file": true, "filesystem": true, "swift+config": true}

// checkTimeout bounds the store calls that validate a new location.
const checkTimeout = time.Minute

// StoreOf returns the backend id a location's metadata names, "" if none.
func StoreOf(l domain.Location) string {
	s, _ := l.Metadata["store"].(string)
	return s
}

// weight is the weight of the backend holding l, 0 when unknown.
func (i *image) weight(l domain.Location) int {
	id := StoreOf(l)
	if id == "" || !i.st.Multi() {
		return 0
	}
	if b, ok := i.st.Backend(id); ok && b != nil {
		return b.Weight
	}
	return 0
}

// sortLocations puts the image's locations in the order downloads and
// direct_url use: in multi-store, highest backend weight first, keeping
// the stored order among equals (glance/common/utils.py
// sort_image_locations, applied when an image is loaded).
func (i *image) sortLocations() {
	if !i.st.Multi() {
		return
	}
	m := i.Next.Meta()
	if len(m.Locations) < 2 {
		return
	}
	byWeight := func(a, b domain.Location) int { return cmp.Compare(i.weight(b), i.weight(a)) }
	if slices.IsSortedFunc(m.Locations, byWeight) {
		return
	}
	err := i.Next.Update(func(m *domain.Meta) error {
		slices.SortStableFunc(m.Locations, byWeight)
		return nil
	})
	if err != nil {
		i.log().Warn("cannot order the locations of an image", "image_id", m.ID, "error", err)
	}
}

// Update implements domain.Image: a change of the locations list is
// checked as Glance's StoreLocations proxy checks it. Each new location
// must be served by a configured store, not be one of the restricted
// schemes, and hold data; it becomes active, is tagged with its store in
// multi-store, and gives its size to an image that has none. Two equal
// locations are refused. The data of removed locations is deleted when the
// image is next saved.
func (i *image) Update(fn func(*domain.Meta) error) error {
	var gone []domain.Location
	err := i.Next.Update(func(m *domain.Meta) error {
		before := m.Clone()
		if err := fn(m); err != nil {
			return err
		}
		if reflect.DeepEqual(before.Locations, m.Locations) {
			return nil
		}
		var err error
		gone, err = i.checkLocations(&before, m)
		return err
	})
	if err != nil {
		return err
	}
	if len(gone) > 0 {
		i.mu.Lock()
		i.removed = append(i.removed, gone...)
		i.mu.Unlock()
	}
	return nil
}

// checkLocations validates the locations m gained since before and returns
// those it lost.
func (i *image) checkLocations(before, m *domain.Meta) ([]domain.Location, error) {
	known := map[string]domain.Location{} // by URL, the first entry
	for _, l := range before.Locations {
		if _, ok := known[l.URL]; !ok {
			known[l.URL] = l
		}
	}
	for k := range m.Locations {
		l := &m.Locations[k]
		if l.Metadata == nil {
			l.Metadata = map[string]any{}
		}
		if old, ok := known[l.URL]; ok {
			// The same data: a new entry for it takes the row of the old
			// one, so that replacing the list only updates metadata, and
			// its store.
			if l.ID == 0 && !slices.ContainsFunc(m.Locations, func(o domain.Location) bool { return o.ID == old.ID }) {
				l.ID = old.ID
			}
			if store := StoreOf(old); store != "" && StoreOf(*l) == "" && i.st.Multi() {
				l.Metadata["store"] = store
			}
			if l.Status == "" {
				l.Status = "active"
			}
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
		store, size, err := i.locate(ctx, l.URL, StoreOf(*l))
		cancel()
		if err != nil {
			return nil, err
		}
		l.ID = 0
		l.Status = "active"
		if store != "" {
			l.Metadata["store"] = store
		}
		if m.Size == nil || *m.Size == 0 {
			m.Size = domain.Ptr(size)
		}
	}
	for k, l := range m.Locations {
		for _, o := range m.Locations[:k] {
			if o.URL == l.URL && reflect.DeepEqual(normMeta(o.Metadata), normMeta(l.Metadata)) {
				return nil, domain.Errorf(domain.ErrInvalid, "The location %s already exists", l.URL)
			}
		}
	}
	// Data is deleted only when no entry points at it any more.
	var gone []domain.Location
	for _, o := range before.Locations {
		if !slices.ContainsFunc(m.Locations, func(l domain.Location) bool { return l.URL == o.URL }) &&
			!slices.ContainsFunc(gone, func(l domain.Location) bool { return l.URL == o.URL }) {
			gone = append(gone, o)
		}
	}
	return gone, nil
}

func normMeta(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// errInvalidLocation is Glance's BadStoreUri for a location it refuses.
func errInvalidLocation() error { return domain.Errorf(domain.ErrInvalid, "Invalid location") }

// locate finds the backend serving url and the size of the data there
// (glance/location.py _check_location_uri). store is the backend the
// location's metadata names, tried first. It returns the id of the
// backend that answered ("" in single-store) and ErrInvalid "Invalid
// location" when the scheme is restricted or unknown, or no store holds
// data there.
func (i *image) locate(ctx context.Context, url, store string) (string, int64, error) {
	sc, _, ok := strings.Cut(url, "://")
	sc = strings.ToLower(sc)
	if !ok || sc == "" || restrictedSchemes[sc] {
		return "", 0, errInvalidLocation()
	}
	type candidate struct {
		id  string
		drv stores.Driver
	}
	var cands []candidate
	if i.st.Multi() {
		if b, ok := i.st.Backend(store); store != "" && ok && b != nil {
			cands = append(cands, candidate{b.ID, b.Driver})
		}
		for _, b := range i.st.Backends() {
			if b.ID != store && b.Driver != nil && slices.Contains(lower(b.Driver.Schemes()), sc) {
				cands = append(cands, candidate{b.ID, b.Driver})
			}
		}
	} else if drv, err := i.st.ForURL(url); err == nil {
		cands = append(cands, candidate{"", drv})
	}
	for _, c := range cands {
		size, err := c.drv.Size(ctx, url)
		if err == nil && size > 0 {
			return c.id, size, nil
		}
		if err != nil {
			i.log().Info("location refused by a store", "url", redact(url), "store", c.id, "error", err)
		}
	}
	return "", 0, errInvalidLocation()
}

func lower(ss []string) []string {
	out := make([]string, len(ss))
	for k, s := range ss {
		out[k] = strings.ToLower(s)
	}
	return out
}

// driverFor returns the driver of a stored location.
func (i *image) driverFor(l domain.Location) (stores.Driver, error) {
	return i.st.ForLocation(l.URL, StoreOf(l))
}

// readOnly reports whether drv belongs to a store that cannot delete data
// (the http store), whose locations are dropped without touching the data.
func (i *image) readOnly(drv stores.Driver) bool {
	for _, b := range i.st.Backends() {
		if b.Driver == drv {
			return b.ReadOnly()
		}
	}
	for _, sc := range drv.Schemes() {
		if sc == "http" || sc == "https" {
			return true
		}
	}
	return false
}

// flush deletes the data of the locations removed since the last Save.
// Missing data is fine; a store that refuses stops the save.
func (i *image) flush(ctx context.Context) error {
	i.mu.Lock()
	gone := i.removed
	i.removed = nil
	i.mu.Unlock()
	id := i.Next.Meta().ID
	for k, l := range gone {
		if err := i.deleteLocation(ctx, id, l); err != nil {
			i.mu.Lock()
			i.removed = append(gone[k:], i.removed...)
			i.mu.Unlock()
			return err
		}
	}
	return nil
}

// deleteLocation deletes the data at one location of image id
// (store_utils.delete_image_location_from_backend). Data already gone, a
// read-only store and a location no store serves are logged and skipped.
func (i *image) deleteLocation(ctx context.Context, id string, l domain.Location) error {
	drv, err := i.driverFor(l)
	if err != nil {
		i.log().Warn("no store for location; leaving its data", "image_id", id, "url", redact(l.URL))
		return nil
	}
	if i.readOnly(drv) {
		return nil
	}
	err = drv.Delete(ctx, l.URL)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, stores.ErrNotFound):
		i.log().Warn("the image data was not found in the store", "image_id", id, "url", redact(l.URL))
		return nil
	case errors.Is(err, stores.ErrInUse):
		return domain.Errorf(domain.ErrConflict, "The data for Image %s could not be deleted because it is in use: %s",
			id, storeMsg(err))
	}
	return domain.Errorf(domain.ErrUnavailable, "The data for Image %s could not be deleted: %s", id, storeMsg(err))
}
