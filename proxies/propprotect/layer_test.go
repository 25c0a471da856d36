package propprotect

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/glance-go/glance-go/domain"
	"github.com/glance-go/glance-go/proxies"
)

// memRepo holds one core image and hands it out as it is.
type memRepo struct {
	img   domain.Image
	saved domain.Meta
}

func (r *memRepo) Get(context.Context, string) (domain.Image, error) { return r.img, nil }
func (r *memRepo) List(context.Context, domain.ListQuery) (domain.Page, error) {
	return domain.Page{Images: []domain.Image{r.img}}, nil
}
func (r *memRepo) Add(_ context.Context, img domain.Image) error { r.saved = img.Meta(); return nil }
func (r *memRepo) Save(_ context.Context, img domain.Image, _ domain.Status) error {
	r.saved = img.Meta()
	return nil
}
func (r *memRepo) Remove(context.Context, domain.Image) error { return nil }

const testRules = `
[^x_member_]
create = member
read = member
update = member
delete = member

[^x_readonly_]
create = admin
read = member
update = admin
delete = admin

[^x_secret_]
create = admin
read = admin
update = admin
delete = admin

[^x_]
create = @
read = @
update = @
delete = @
`

func setup(t *testing.T, props map[string]string, roles ...string) (domain.Repo, domain.Factory, *memRepo, domain.Image) {
	t.Helper()
	r, err := Load(writeConf(t, testRules), FormatRoles, nil)
	if err != nil {
		t.Fatal(err)
	}
	core := domain.NewImage(domain.Meta{ID: "img", Status: domain.StatusActive, Properties: props})
	inner := &memRepo{img: core}
	repo, f := proxies.Stack(inner, domain.CoreFactory{}, Layer(r, &domain.Caller{ProjectID: "p1", Roles: roles}))
	return repo, f, inner, core
}

func props() map[string]string {
	return map[string]string{"x_member_a": "1", "x_readonly_b": "2", "x_secret_c": "3", "x_free": "4", "unmatched": "5"}
}

func TestMetaHidesUnreadable(t *testing.T) {
	cases := []struct {
		roles []string
		want  []string
	}{
		{[]string{"member"}, []string{"x_free", "x_member_a", "x_readonly_b"}},
		{[]string{"admin"}, []string{"x_free", "x_secret_c"}},
		{nil, []string{"x_free"}},
	}
	for _, tc := range cases {
		repo, _, _, _ := setup(t, props(), tc.roles...)
		img, _ := repo.Get(context.Background(), "img")
		got := keys(img.Meta().Properties)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%v sees %v, want %v", tc.roles, got, tc.want)
		}
		p, _ := repo.List(context.Background(), domain.ListQuery{})
		if got := keys(p.Images[0].Meta().Properties); !slices.Equal(got, tc.want) {
			t.Errorf("%v lists %v, want %v", tc.roles, got, tc.want)
		}
	}
}

func keys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }

func TestUpdate(t *testing.T) {
	cases := []struct {
		name    string
		roles   []string
		change  func(p map[string]string)
		wantErr string // "" for success
	}{
		{"member creates its own key", []string{"member"}, func(p map[string]string) { p["x_member_new"] = "n" }, ""},
		{"member creates an admin key", []string{"member"}, func(p map[string]string) { p["x_secret_new"] = "n" },
			"Attribute 'x_secret_new' is reserved."},
		{"member creates an unmatched key", []string{"member"}, func(p map[string]string) { p["other"] = "n" },
			"Attribute 'other' is reserved."},
		{"member updates its own key", []string{"member"}, func(p map[string]string) { p["x_member_a"] = "9" }, ""},
		{"member updates a read-only key", []string{"member"}, func(p map[string]string) { p["x_readonly_b"] = "9" },
			"Attribute 'x_readonly_b' is reserved."},
		{"member deletes a read-only key", []string{"member"}, func(p map[string]string) { delete(p, "x_readonly_b") },
			"Attribute 'x_readonly_b' is reserved."},
		{"member deletes its own key", []string{"member"}, func(p map[string]string) { delete(p, "x_member_a") }, ""},
		{"member sets a read-only key to its value", []string{"member"}, func(p map[string]string) { p["x_readonly_b"] = "2" }, ""},
		{"os_glance keys are open", nil, func(p map[string]string) { p["os_glance_importing_to_stores"] = "a" }, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			repo, _, inner, core := setup(t, props(), tc.roles...)
			img, _ := repo.Get(context.Background(), "img")
			before := core.Meta().Properties
			err := img.Update(func(m *domain.Meta) error { tc.change(m.Properties); return nil })
			if tc.wantErr != "" {
				if !errors.Is(err, domain.ErrForbidden) || err.Error() != tc.wantErr {
					t.Fatalf("got %v, want 403 %q", err, tc.wantErr)
				}
				if !maps.Equal(core.Meta().Properties, before) {
					t.Error("a refused change was applied")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := repo.Save(context.Background(), img, domain.StatusActive); err != nil {
				t.Fatal(err)
			}
			// What the caller could not read is still there, unchanged.
			for k, v := range before {
				if k == "x_member_a" && (tc.name == "member updates its own key" || tc.name == "member deletes its own key") {
					continue
				}
				if inner.saved.Properties[k] != v {
					t.Errorf("property %s: saved %q, was %q", k, inner.saved.Properties[k], v)
				}
			}
		})
	}
}

func TestUnreadableSurviveRename(t *testing.T) {
	repo, _, inner, _ := setup(t, props(), "member")
	img, _ := repo.Get(context.Background(), "img")
	if err := img.Update(func(m *domain.Meta) error { m.Name = domain.Ptr("renamed"); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := repo.Save(context.Background(), img, domain.StatusActive); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(inner.saved.Properties, props()) || *inner.saved.Name != "renamed" {
		t.Errorf("saved %v %v", inner.saved.Properties, inner.saved.Name)
	}
	if _, ok := img.Meta().Properties["x_secret_c"]; ok {
		t.Error("the caller now sees a property it may not read")
	}
}

func TestUnreadableLooksAbsent(t *testing.T) {
	repo, _, _, _ := setup(t, props(), "member")
	img, _ := repo.Get(context.Background(), "img")
	var shown bool
	err := img.Update(func(m *domain.Meta) error {
		_, shown = m.Properties["x_secret_c"]
		return nil
	})
	if err != nil || shown {
		t.Errorf("err %v, unreadable key shown to fn: %v", err, shown)
	}
}

func TestUpdateFnErrorAndNilProperties(t *testing.T) {
	repo, _, _, core := setup(t, props(), "member")
	img, _ := repo.Get(context.Background(), "img")
	boom := domain.Errorf(domain.ErrInvalid, "boom")
	if err := img.Update(func(*domain.Meta) error { return boom }); err != boom {
		t.Errorf("got %v", err)
	}
	// Dropping the whole map deletes only what the caller can see, and only
	// if it may delete each key: x_readonly_b stops it.
	err := img.Update(func(m *domain.Meta) error { m.Properties = nil; return nil })
	if !errors.Is(err, domain.ErrForbidden) {
		t.Errorf("got %v", err)
	}
	if len(core.Meta().Properties) != 5 {
		t.Error("a refused change was applied")
	}
}

func TestNewImage(t *testing.T) {
	cases := []struct {
		roles   []string
		props   map[string]string
		wantErr string
	}{
		{[]string{"member"}, map[string]string{"x_member_a": "1", "x_free": "2"}, ""},
		{[]string{"member"}, map[string]string{"x_member_a": "1", "x_readonly_b": "2"}, "Attribute 'x_readonly_b' is reserved."},
		{[]string{"admin"}, map[string]string{"x_readonly_b": "2", "x_secret_c": "3"}, ""},
		{nil, map[string]string{"zzz": "1"}, "Attribute 'zzz' is reserved."},
	}
	for _, tc := range cases {
		_, f, _, _ := setup(t, nil, tc.roles...)
		img, err := f.NewImage(context.Background(), domain.Meta{Properties: tc.props})
		if tc.wantErr != "" {
			if !errors.Is(err, domain.ErrForbidden) || err.Error() != tc.wantErr {
				t.Errorf("%v %v: got %v, want %q", tc.roles, tc.props, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%v %v: %v", tc.roles, tc.props, err)
		}
		if _, ok := img.(*image); !ok {
			t.Errorf("the new image is not wrapped: %T", img)
		}
	}
}
