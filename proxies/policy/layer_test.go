package policy

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/glance-go/glance-go/domain"
	"github.com/glance-go/glance-go/proxies"
)

func meta(id, owner string, vis domain.Visibility, member string) domain.Meta {
	return domain.Meta{ID: id, Owner: domain.Ptr(owner), Visibility: vis, Status: domain.StatusActive,
		Member: member, Properties: map[string]string{}}
}

// chain returns the policy layer over a fake repo holding images, as
// caller c sees it.
func chain(t *testing.T, c *domain.Caller, images ...domain.Meta) (domain.Repo, domain.Factory, *fakeRepo, proxies.Layer) {
	t.Helper()
	e, err := NewDefault()
	if err != nil {
		t.Fatal(err)
	}
	inner := &fakeRepo{images: images}
	l := Layer(e, c)
	r, f := proxies.Stack(inner, domain.CoreFactory{}, l)
	return r, f, inner, l
}

func wantErr(t *testing.T, err error, kind error, msg string) {
	t.Helper()
	if kind == nil {
		if err != nil {
			t.Fatalf("unexpected error %v", err)
		}
		return
	}
	if !errors.Is(err, kind) {
		t.Fatalf("error %v, want kind %v", err, kind)
	}
	if msg != "" && err.Error() != msg {
		t.Fatalf("message %q, want %q", err.Error(), msg)
	}
}

func TestLayerGet(t *testing.T) {
	private := meta("img", "p1", domain.VisibilityPrivate, "")
	cases := []struct {
		name    string
		caller  string
		wantErr error
	}{
		{"owner", "owner", nil},
		{"reader of the project", "reader", nil},
		{"admin", "admin", nil},
		{"other project", "other", domain.ErrNotFound},
		{"no roles", "noroles", domain.ErrNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, _, _, _ := chain(t, personas[tc.caller], private)
			img, err := r.Get(context.Background(), "img")
			msg := ""
			if tc.wantErr != nil {
				msg = "No image found with ID img"
			}
			wantErr(t, err, tc.wantErr, msg)
			if err == nil && img.Meta().ID != "img" {
				t.Error("wrong image")
			}
		})
	}
}

func TestLayerList(t *testing.T) {
	images := []domain.Meta{
		meta("mine", "p1", domain.VisibilityPrivate, ""),
		meta("theirs", "p2", domain.VisibilityPrivate, ""),
		meta("public", "p2", domain.VisibilityPublic, ""),
	}
	cases := []struct {
		caller  string
		wantIDs string
		wantErr error
	}{
		{"owner", "mine,public", nil},
		{"admin", "mine,theirs,public", nil},
		{"noroles", "", domain.ErrForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.caller, func(t *testing.T) {
			r, _, inner, _ := chain(t, personas[tc.caller], images...)
			inner.full = true
			p, err := r.List(context.Background(), domain.ListQuery{Limit: 3})
			if tc.wantErr != nil {
				wantErr(t, err, tc.wantErr, "You are not authorized to complete get_images action.")
				return
			}
			wantErr(t, err, nil, "")
			var ids []string
			for _, img := range p.Images {
				ids = append(ids, img.Meta().ID)
			}
			if got := strings.Join(ids, ","); got != tc.wantIDs {
				t.Errorf("listed %s, want %s", got, tc.wantIDs)
			}
			if !p.Full {
				t.Error("Full must stay as the inner page said")
			}
		})
	}
}

func TestLayerImageCalls(t *testing.T) {
	ctx := context.Background()
	calls := map[string]func(domain.Image) error{
		"Delete":     func(i domain.Image) error { return i.Delete(ctx) },
		"SetData":    func(i domain.Image) error { return i.SetData(ctx, strings.NewReader("x"), domain.DataIn{Size: 1}) },
		"Data":       func(i domain.Image) error { _, err := i.Data(ctx, 0, -1); return err },
		"Deactivate": func(i domain.Image) error { return i.Deactivate(ctx) },
		"Reactivate": func(i domain.Image) error { return i.Reactivate(ctx) },
	}
	action := map[string]string{"Delete": "delete_image", "SetData": "upload_image", "Data": "download_image",
		"Deactivate": "deactivate", "Reactivate": "reactivate"}
	cases := []struct {
		name    string
		caller  string
		vis     domain.Visibility
		member  string
		call    string
		wantErr error
	}{
		{"owner deletes", "owner", domain.VisibilityPrivate, "", "Delete", nil},
		{"reader deletes", "reader", domain.VisibilityPrivate, "", "Delete", domain.ErrForbidden},
		{"other deletes a public image", "other", domain.VisibilityPublic, "", "Delete", domain.ErrForbidden},
		{"other deletes a private image", "other", domain.VisibilityPrivate, "", "Delete", domain.ErrNotFound},
		{"owner uploads", "owner", domain.VisibilityPrivate, "", "SetData", nil},
		{"reader uploads", "reader", domain.VisibilityPrivate, "", "SetData", domain.ErrForbidden},
		{"reader downloads", "reader", domain.VisibilityPrivate, "", "Data", domain.ErrForbidden},
		{"member of a share downloads", "sharedm", domain.VisibilityShared, "p3", "Data", nil},
		{"other downloads public", "other", domain.VisibilityPublic, "", "Data", nil},
		{"no roles downloads public", "noroles", domain.VisibilityPublic, "", "Data", domain.ErrNotFound},
		{"owner deactivates", "owner", domain.VisibilityPrivate, "", "Deactivate", nil},
		{"member of a share deactivates", "sharedm", domain.VisibilityShared, "p3", "Deactivate", domain.ErrForbidden},
		{"admin reactivates", "admin", domain.VisibilityPrivate, "", "Reactivate", nil},
		{"reader reactivates", "reader", domain.VisibilityPrivate, "", "Reactivate", domain.ErrForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := meta("img", "p1", tc.vis, tc.member)
			e, err := NewDefault()
			if err != nil {
				t.Fatal(err)
			}
			core := &fakeImage{Image: domain.NewImage(m)}
			if tc.call == "Reactivate" {
				core.Image = domain.NewImage(func() domain.Meta { m.Status = domain.StatusDeactivated; return m }())
			}
			img := wrapWith(Layer(e, personas[tc.caller]), core)
			err = calls[tc.call](img)
			msg := ""
			switch tc.wantErr {
			case domain.ErrForbidden:
				msg = "You are not authorized to complete " + action[tc.call] + " action."
			case domain.ErrNotFound:
				msg = "No image found with ID img"
			}
			wantErr(t, err, tc.wantErr, msg)
			reached := len(core.calls) > 0 || core.Meta().Status != m.Status
			if reached != (tc.wantErr == nil) {
				t.Errorf("inner image reached: %v", reached)
			}
		})
	}
}

// wrapWith wraps img as the layer's repo wraps the images it hands out.
func wrapWith(l proxies.Layer, img domain.Image) domain.Image {
	return l.Repo(oneImage{img}).(*repo).Wrap(img)
}

type oneImage struct{ img domain.Image }

func (o oneImage) Get(context.Context, string) (domain.Image, error) { return o.img, nil }
func (o oneImage) List(context.Context, domain.ListQuery) (domain.Page, error) {
	return domain.Page{Images: []domain.Image{o.img}}, nil
}
func (o oneImage) Add(context.Context, domain.Image) error                 { return nil }
func (o oneImage) Save(context.Context, domain.Image, domain.Status) error { return nil }
func (o oneImage) Remove(context.Context, domain.Image) error              { return nil }

func TestLayerUpdate(t *testing.T) {
	cases := []struct {
		name    string
		caller  string
		vis     domain.Visibility
		change  func(*domain.Meta)
		wantErr error
		wantMsg string
	}{
		{"owner renames", "owner", domain.VisibilityPrivate, func(m *domain.Meta) { m.Name = domain.Ptr("n") }, nil, ""},
		{"reader renames", "reader", domain.VisibilityPrivate, func(m *domain.Meta) { m.Name = domain.Ptr("n") },
			domain.ErrForbidden, "You are not authorized to complete modify_image action."},
		{"other renames a private image", "other", domain.VisibilityPrivate, func(m *domain.Meta) { m.Name = domain.Ptr("n") },
			domain.ErrNotFound, "No image found with ID img"},
		{"other renames a public image", "other", domain.VisibilityPublic, func(m *domain.Meta) { m.Name = domain.Ptr("n") },
			domain.ErrForbidden, "You are not authorized to complete modify_image action."},
		{"owner publicizes", "owner", domain.VisibilityPrivate, func(m *domain.Meta) { m.Visibility = domain.VisibilityPublic },
			domain.ErrForbidden, "You are not authorized to complete publicize_image action."},
		{"admin publicizes", "admin", domain.VisibilityPrivate, func(m *domain.Meta) { m.Visibility = domain.VisibilityPublic }, nil, ""},
		{"owner communitizes", "owner", domain.VisibilityPrivate, func(m *domain.Meta) { m.Visibility = domain.VisibilityCommunity }, nil, ""},
		{"reader communitizes", "reader", domain.VisibilityPrivate, func(m *domain.Meta) { m.Visibility = domain.VisibilityCommunity },
			domain.ErrForbidden, "You are not authorized to complete communitize_image action."},
		{"owner shares", "owner", domain.VisibilityPrivate, func(m *domain.Meta) { m.Visibility = domain.VisibilityShared }, nil, ""},
		{"owner adds a location", "owner", domain.VisibilityPrivate, func(m *domain.Meta) {
			m.Locations = append(m.Locations, domain.Location{URL: "file:///b"})
		}, nil, ""},
		{"owner removes a location", "owner", domain.VisibilityPrivate, func(m *domain.Meta) { m.Locations = nil },
			domain.ErrForbidden, "You are not authorized to complete delete_image_location action."},
		{"admin removes a location", "admin", domain.VisibilityPrivate, func(m *domain.Meta) { m.Locations = nil }, nil, ""},
		{"reader adds a location", "reader", domain.VisibilityPrivate, func(m *domain.Meta) {
			m.Locations = append(m.Locations, domain.Location{URL: "file:///b"})
		}, domain.ErrForbidden, "You are not authorized to complete set_image_location action."},
		{"reader changes nothing", "reader", domain.VisibilityPrivate, func(*domain.Meta) {},
			domain.ErrForbidden, "You are not authorized to complete modify_image action."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := meta("img", "p1", tc.vis, "")
			m.Locations = []domain.Location{{URL: "file:///a", Status: "active"}}
			r, _, _, _ := chain(t, personas["admin"], m)
			e, _ := NewDefault()
			core, _ := r.(*repo).Next.Get(context.Background(), "img")
			img := wrapWith(Layer(e, personas[tc.caller]), core)
			before := core.Meta()
			err := img.Update(func(m *domain.Meta) error { tc.change(m); return nil })
			wantErr(t, err, tc.wantErr, tc.wantMsg)
			after := core.Meta()
			changed := after.Visibility != before.Visibility || after.Name != nil || len(after.Locations) != len(before.Locations)
			if tc.wantErr != nil && changed {
				t.Error("a refused change was applied")
			}
		})
	}
	t.Run("fn error passes through", func(t *testing.T) {
		e, _ := NewDefault()
		img := wrapWith(Layer(e, personas["reader"]), domain.NewImage(meta("img", "p1", domain.VisibilityPrivate, "")))
		boom := domain.Errorf(domain.ErrInvalid, "boom")
		if err := img.Update(func(*domain.Meta) error { return boom }); err != boom {
			t.Errorf("got %v", err)
		}
	})
}

func TestLayerFactory(t *testing.T) {
	cases := []struct {
		name    string
		caller  string
		owner   *string
		vis     domain.Visibility
		wantErr error
		wantMsg string
	}{
		{"member in its project", "owner", domain.Ptr("p1"), "", nil, ""},
		{"member, owner left out", "owner", nil, domain.VisibilityShared, nil, ""},
		{"reader", "reader", domain.Ptr("p1"), "", domain.ErrForbidden, "You are not authorized to complete add_image action."},
		{"member for another project", "owner", domain.Ptr("p9"), "", domain.ErrForbidden,
			"You are not permitted to create images owned by 'p9'"},
		{"admin for another project", "admin", domain.Ptr("p9"), domain.VisibilityPublic, nil, ""},
		{"member, public", "owner", domain.Ptr("p1"), domain.VisibilityPublic, domain.ErrForbidden,
			"You are not authorized to complete publicize_image action."},
		{"member, community", "owner", domain.Ptr("p1"), domain.VisibilityCommunity, nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, f, _, _ := chain(t, personas[tc.caller])
			img, err := f.NewImage(context.Background(), domain.Meta{Owner: tc.owner, Visibility: tc.vis})
			wantErr(t, err, tc.wantErr, tc.wantMsg)
			if err == nil {
				if _, ok := img.(*image); !ok {
					t.Errorf("the new image is not wrapped by the policy layer: %T", img)
				}
			}
		})
	}
}

func TestLayerMembers(t *testing.T) {
	ctx := context.Background()
	shared := func(member string) domain.Image {
		return domain.NewImage(meta("img", "p1", domain.VisibilityShared, member))
	}
	mb := domain.NewMember("img", "p3")
	cases := []struct {
		name    string
		caller  string
		member  string // Meta.Member as the database sets it for this caller
		op      string
		wantErr error
		wantMsg string
	}{
		{"owner lists", "owner", "", "List", nil, ""},
		{"reader of the project lists", "reader", "", "List", nil, ""},
		{"member lists", "sharedm", "p3", "List", nil, ""},
		{"no roles lists", "noroles", "", "List", domain.ErrNotFound, "Image img not found."},
		{"other lists", "other", "", "List", domain.ErrForbidden, "You are not authorized to complete get_members action."},
		{"owner gets", "owner", "", "Get", nil, ""},
		{"other gets", "other", "", "Get", domain.ErrNotFound, "p3 not found in the member list of the image img."},
		{"owner adds", "owner", "", "Add", nil, ""},
		{"reader adds", "reader", "", "Add", domain.ErrForbidden, "You are not authorized to complete add_member action."},
		{"member adds", "sharedm", "p3", "Add", domain.ErrForbidden, "You are not authorized to complete add_member action."},
		{"member accepts", "sharedm", "p3", "Save", nil, ""},
		{"owner accepts for the member", "owner", "", "Save", domain.ErrForbidden,
			"You are not authorized to complete modify_member action."},
		{"admin accepts", "admin", "", "Save", nil, ""},
		{"owner removes", "owner", "", "Remove", nil, ""},
		{"member removes itself", "sharedm", "p3", "Remove", domain.ErrForbidden,
			"You are not authorized to complete delete_member action."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, err := NewDefault()
			if err != nil {
				t.Fatal(err)
			}
			inner := &fakeMembers{list: []domain.Member{mb}}
			ms := proxies.StackMembers(shared(tc.member), inner, Layer(e, personas[tc.caller]))
			switch tc.op {
			case "List":
				var got []domain.Member
				got, err = ms.List(ctx)
				if err == nil && len(got) != 1 {
					t.Errorf("listed %d members", len(got))
				}
			case "Get":
				_, err = ms.Get(ctx, "p3")
			case "Add":
				err = ms.Add(ctx, domain.NewMember("img", "p4"))
			case "Save":
				err = ms.Save(ctx, mb)
			case "Remove":
				err = ms.Remove(ctx, mb)
			}
			wantErr(t, err, tc.wantErr, tc.wantMsg)
			if reached := len(inner.calls) > 0; reached != (tc.wantErr == nil) {
				t.Errorf("inner member repo reached: %v", reached)
			}
		})
	}
}

func TestLayerSaveReachesCore(t *testing.T) {
	ctx := context.Background()
	r, f, inner, _ := chain(t, personas["owner"], meta("img", "p1", domain.VisibilityPrivate, ""))
	img, err := r.Get(ctx, "img")
	if err != nil {
		t.Fatal(err)
	}
	if err := img.Update(func(m *domain.Meta) error { m.Name = domain.Ptr("renamed"); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := r.Save(ctx, img, domain.StatusActive); err != nil {
		t.Fatal(err)
	}
	created, err := f.NewImage(ctx, domain.Meta{Owner: domain.Ptr("p1")})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Add(ctx, created); err != nil {
		t.Fatal(err)
	}
	if len(inner.saved) != 2 || *inner.saved[0].Name != "renamed" || inner.saved[1].ID != created.Meta().ID {
		t.Errorf("the inner repo got %+v", inner.saved)
	}
}
