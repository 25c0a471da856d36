package api

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/glance-go/glance-go/domain"
	"github.com/glance-go/glance-go/proxies"
)

// fakeStore is an in-memory database and data store for the handler tests.
// It keeps Glance's rules that the handlers rely on: visibility by owner and
// membership, compare-and-swap saves, soft deletes that keep ids taken.
type fakeStore struct {
	mu        sync.Mutex
	images    map[string]domain.Meta
	deleted   map[string]bool
	data      map[string][]byte
	members   map[string]map[string]domain.Member // image id → member id → member
	lastQuery domain.ListQuery
	deleteErr error // injected into Image.Delete when set
}

func newFakeStore() *fakeStore {
	return &fakeStore{images: map[string]domain.Meta{}, deleted: map[string]bool{},
		data: map[string][]byte{}, members: map[string]map[string]domain.Member{}}
}

// fakeGateway implements Gateway over a fakeStore.
type fakeGateway struct{ st *fakeStore }

func (g fakeGateway) Images(c *domain.Caller) (domain.Repo, domain.Factory) {
	return &fakeRepo{st: g.st, c: c}, domain.CoreFactory{}
}

func (g fakeGateway) Members(c *domain.Caller, img domain.Image) domain.MemberRepo {
	return &fakeMembers{st: g.st, c: c, img: img.Meta()}
}

type fakeRepo struct {
	st *fakeStore
	c  *domain.Caller
}

func (r *fakeRepo) visible(m domain.Meta) bool {
	if r.c.IsAdmin || m.Owner == nil || m.Visibility == domain.VisibilityPublic ||
		m.Visibility == domain.VisibilityCommunity || r.c.Owns(m.Owner) {
		return true
	}
	if m.Visibility == domain.VisibilityShared {
		_, ok := r.st.members[m.ID][r.c.ProjectID]
		return ok
	}
	return false
}

func (r *fakeRepo) wrap(m domain.Meta) domain.Image {
	return &fakeImage{Image: proxies.Image{Next: domain.NewImage(m)}, st: r.st, repo: r}
}

func (r *fakeRepo) Get(_ context.Context, id string) (domain.Image, error) {
	r.st.mu.Lock()
	defer r.st.mu.Unlock()
	m, ok := r.st.images[id]
	if !ok || r.st.deleted[id] || !r.visible(m) {
		return nil, domain.Errorf(domain.ErrNotFound, "No image found with ID %s", id)
	}
	return r.wrap(m.Clone()), nil
}

func (r *fakeRepo) List(_ context.Context, q domain.ListQuery) (domain.Page, error) {
	r.st.mu.Lock()
	defer r.st.mu.Unlock()
	r.st.lastQuery = q
	var all []domain.Meta
	for id, m := range r.st.images {
		if r.st.deleted[id] || !r.visible(m) || m.Hidden != q.Hidden || m.Status == domain.StatusKilled {
			continue
		}
		if q.Visibility == "" && m.Visibility == domain.VisibilityCommunity && !r.c.Owns(m.Owner) {
			continue
		}
		if q.Visibility != "" && q.Visibility != "all" && string(m.Visibility) != q.Visibility {
			continue
		}
		if !matches(m, q) {
			continue
		}
		all = append(all, m)
	}
	sort.Slice(all, func(i, j int) bool {
		if !all[i].CreatedAt.Equal(all[j].CreatedAt) {
			return all[i].CreatedAt.After(all[j].CreatedAt)
		}
		return all[i].ID > all[j].ID
	})
	if q.Marker != "" {
		at := slices.IndexFunc(all, func(m domain.Meta) bool { return m.ID == q.Marker })
		if at < 0 {
			return domain.Page{}, domain.Errorf(domain.ErrNotFound, "No image found with ID %s", q.Marker)
		}
		all = all[at+1:]
	}
	if len(all) > q.Limit {
		all = all[:q.Limit]
	}
	p := domain.Page{Full: len(all) == q.Limit}
	for _, m := range all {
		p.Images = append(p.Images, r.wrap(m.Clone()))
	}
	return p, nil
}

func matches(m domain.Meta, q domain.ListQuery) bool {
	for _, t := range q.Tags {
		if !slices.Contains(m.Tags, t) {
			return false
		}
	}
	for k, v := range q.Properties {
		if m.Properties[k] != v {
			return false
		}
	}
	for _, f := range q.Filters {
		var val string
		switch f.Field {
		case "name":
			if m.Name != nil {
				val = *m.Name
			}
		case "status":
			val = string(m.Status)
		default:
			continue
		}
		if (f.Op == domain.OpEq || f.Op == domain.OpIn) && !slices.Contains(f.Values, val) {
			return false
		}
	}
	return true
}

func (r *fakeRepo) Add(_ context.Context, img domain.Image) error {
	r.st.mu.Lock()
	defer r.st.mu.Unlock()
	m := img.Meta()
	if _, ok := r.st.images[m.ID]; ok {
		return domain.Errorf(domain.ErrConflict, "Image ID %s already exists!", m.ID)
	}
	if !r.c.IsAdmin && (m.Owner == nil || *m.Owner != r.c.ProjectID) {
		return domain.Errorf(domain.ErrForbidden, "You are not permitted to create images owned by '%s'.", deref(m.Owner))
	}
	r.st.images[m.ID] = m
	return nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func (r *fakeRepo) mutable(m domain.Meta) error {
	if r.c.IsAdmin || r.c.Owns(m.Owner) {
		return nil
	}
	return domain.Errorf(domain.ErrForbidden, "You do not own this image")
}

func (r *fakeRepo) Save(_ context.Context, img domain.Image, from domain.Status) error {
	r.st.mu.Lock()
	defer r.st.mu.Unlock()
	m := img.Meta()
	old, ok := r.st.images[m.ID]
	if !ok || r.st.deleted[m.ID] {
		return domain.Errorf(domain.ErrNotFound, "No image found with ID %s", m.ID)
	}
	if err := r.mutable(old); err != nil {
		return err
	}
	if old.Status != from {
		return domain.Errorf(domain.ErrConflict, "Image status changed meanwhile")
	}
	r.st.images[m.ID] = m
	return nil
}

func (r *fakeRepo) Remove(_ context.Context, img domain.Image) error {
	r.st.mu.Lock()
	defer r.st.mu.Unlock()
	m := img.Meta()
	if err := r.mutable(r.st.images[m.ID]); err != nil {
		return err
	}
	r.st.deleted[m.ID] = true
	delete(r.st.data, m.ID)
	return nil
}

// fakeImage adds data handling to the core image.
type fakeImage struct {
	proxies.Image
	st   *fakeStore
	repo *fakeRepo
}

func (i *fakeImage) SetData(ctx context.Context, rd io.Reader, in domain.DataIn) error {
	size := in.Size
	from := i.Meta().Status
	if err := i.Update(func(m *domain.Meta) error { m.Status = domain.StatusSaving; return nil }); err != nil {
		return err
	}
	data, err := io.ReadAll(rd)
	if err == nil && size > 0 && int64(len(data)) != size {
		err = domain.Errorf(domain.ErrInvalid, "Size mismatch")
	}
	if err != nil {
		_ = i.Update(func(m *domain.Meta) error { m.Status = domain.StatusQueued; return nil })
		return err
	}
	sum := md5.Sum(data)
	if err := i.Update(func(m *domain.Meta) error {
		m.Status = domain.StatusActive
		m.Size = domain.Ptr(int64(len(data)))
		m.Checksum = domain.Ptr(hex.EncodeToString(sum[:]))
		m.Locations = []domain.Location{{URL: "file:///fake/" + m.ID, Status: "active", Metadata: map[string]any{}}}
		return nil
	}); err != nil {
		return err
	}
	if err := i.repo.Save(ctx, i, from); err != nil {
		return err
	}
	i.st.mu.Lock()
	i.st.data[i.Meta().ID] = data
	i.st.mu.Unlock()
	return nil
}

func (i *fakeImage) Data(_ context.Context, off, n int64) (io.ReadCloser, error) {
	// As the authorization layer does.
	if !i.repo.c.IsAdmin && i.Meta().Status == domain.StatusDeactivated {
		return nil, domain.Errorf(domain.ErrForbidden, "The requested image has been deactivated. Image data download is forbidden.")
	}
	i.st.mu.Lock()
	data, ok := i.st.data[i.Meta().ID]
	i.st.mu.Unlock()
	if !ok {
		return nil, domain.ErrNoData
	}
	data = data[off:]
	if n >= 0 && n < int64(len(data)) {
		data = data[:n]
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

func (i *fakeImage) Unwrap() domain.Image { return i.Image.Next }

func (i *fakeImage) Delete(ctx context.Context) error {
	if i.st.deleteErr != nil {
		return i.st.deleteErr
	}
	return i.Image.Delete(ctx)
}

// fakeMembers is the member repository of one image for one caller.
type fakeMembers struct {
	st  *fakeStore
	c   *domain.Caller
	img domain.Meta
}

func (f *fakeMembers) isOwner() bool { return f.c.IsAdmin || f.c.Owns(f.img.Owner) }

func (f *fakeMembers) List(context.Context) ([]domain.Member, error) {
	f.st.mu.Lock()
	defer f.st.mu.Unlock()
	var out []domain.Member
	for _, m := range f.st.members[f.img.ID] {
		if f.isOwner() || m.MemberID == f.c.ProjectID {
			out = append(out, m)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].MemberID < out[j].MemberID })
	return out, nil
}

func (f *fakeMembers) Get(_ context.Context, id string) (domain.Member, error) {
	f.st.mu.Lock()
	defer f.st.mu.Unlock()
	m, ok := f.st.members[f.img.ID][id]
	if !ok || !(f.isOwner() || id == f.c.ProjectID) {
		return domain.Member{}, domain.Errorf(domain.ErrNotFound, "member not found")
	}
	return m, nil
}

func (f *fakeMembers) Add(_ context.Context, m domain.Member) error {
	f.st.mu.Lock()
	defer f.st.mu.Unlock()
	if !f.isOwner() {
		return domain.Errorf(domain.ErrForbidden, "You are not permitted to create image members for the image.")
	}
	if _, ok := f.st.members[m.ImageID][m.MemberID]; ok {
		return domain.Errorf(domain.ErrConflict, "duplicate member")
	}
	if f.st.members[m.ImageID] == nil {
		f.st.members[m.ImageID] = map[string]domain.Member{}
	}
	f.st.members[m.ImageID][m.MemberID] = m
	return nil
}

func (f *fakeMembers) Save(_ context.Context, m domain.Member) error {
	f.st.mu.Lock()
	defer f.st.mu.Unlock()
	if !f.c.IsAdmin && m.MemberID != f.c.ProjectID {
		return domain.Errorf(domain.ErrForbidden, "You are not permitted to modify 'status' on this image member.")
	}
	f.st.members[m.ImageID][m.MemberID] = m
	return nil
}

func (f *fakeMembers) Remove(_ context.Context, m domain.Member) error {
	f.st.mu.Lock()
	defer f.st.mu.Unlock()
	if !f.isOwner() {
		return domain.Errorf(domain.ErrForbidden, "You cannot delete image member.")
	}
	delete(f.st.members[m.ImageID], m.MemberID)
	return nil
}

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }

func newGet(path string) *http.Request { return httptest.NewRequest("GET", path, nil) }

// newChunkedPut builds a PUT whose length is unknown, as a chunked upload.
func newChunkedPut(t *testing.T, path, body string, headers []string) *http.Request {
	t.Helper()
	r := httptest.NewRequest("PUT", path, io.NopCloser(strings.NewReader(body)))
	r.ContentLength = -1
	r.TransferEncoding = []string{"chunked"}
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Add(headers[i], headers[i+1])
	}
	return r
}
