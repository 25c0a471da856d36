package policy

import (
	"context"
	"io"
	"strings"

	"github.com/glance-go/glance-go/domain"
)

// fakeRepo hands out every image it holds, whoever asks: the tests look at
// the policy layer alone, without the database's visibility rules.
type fakeRepo struct {
	images []domain.Meta
	full   bool
	saved  []domain.Meta
}

func (r *fakeRepo) Get(_ context.Context, id string) (domain.Image, error) {
	for _, m := range r.images {
		if m.ID == id {
			return &fakeImage{Image: domain.NewImage(m.Clone())}, nil
		}
	}
	return nil, domain.Errorf(domain.ErrNotFound, "No image found with ID %s", id)
}

func (r *fakeRepo) List(context.Context, domain.ListQuery) (domain.Page, error) {
	p := domain.Page{Full: r.full}
	for _, m := range r.images {
		p.Images = append(p.Images, &fakeImage{Image: domain.NewImage(m.Clone())})
	}
	return p, nil
}

func (r *fakeRepo) Add(_ context.Context, img domain.Image) error {
	r.saved = append(r.saved, img.Meta())
	return nil
}

func (r *fakeRepo) Save(_ context.Context, img domain.Image, _ domain.Status) error {
	r.saved = append(r.saved, img.Meta())
	return nil
}

func (r *fakeRepo) Remove(_ context.Context, img domain.Image) error {
	r.saved = append(r.saved, img.Meta())
	return nil
}

// fakeImage is a core image whose data calls succeed and are counted.
type fakeImage struct {
	domain.Image
	calls []string
}

func (i *fakeImage) Unwrap() domain.Image { return nil }

func (i *fakeImage) SetData(context.Context, io.Reader, domain.DataIn) error {
	i.calls = append(i.calls, "SetData")
	return nil
}

func (i *fakeImage) Data(context.Context, int64, int64) (io.ReadCloser, error) {
	i.calls = append(i.calls, "Data")
	return io.NopCloser(strings.NewReader("data")), nil
}

// fakeMembers records the calls that reach it.
type fakeMembers struct {
	list  []domain.Member
	calls []string
}

func (m *fakeMembers) List(context.Context) ([]domain.Member, error) {
	m.calls = append(m.calls, "List")
	return m.list, nil
}

func (m *fakeMembers) Get(_ context.Context, id string) (domain.Member, error) {
	m.calls = append(m.calls, "Get")
	for _, mb := range m.list {
		if mb.MemberID == id {
			return mb, nil
		}
	}
	return domain.Member{}, domain.Errorf(domain.ErrNotFound, "not a member")
}

func (m *fakeMembers) Add(context.Context, domain.Member) error {
	m.calls = append(m.calls, "Add")
	return nil
}

func (m *fakeMembers) Save(context.Context, domain.Member) error {
	m.calls = append(m.calls, "Save")
	return nil
}

func (m *fakeMembers) Remove(context.Context, domain.Member) error {
	m.calls = append(m.calls, "Remove")
	return nil
}
