package authz_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/glance-go/glance-go/domain"
	"github.com/glance-go/glance-go/proxies"
	"github.com/glance-go/glance-go/proxies/authz"
	"github.com/glance-go/glance-go/proxies/location"
	"github.com/glance-go/glance-go/proxies/proxytest"
)

const (
	shared  = "aaaaaaaa-0000-4000-8000-000000000001" // shared, owner p1, member p2, active
	private = "aaaaaaaa-0000-4000-8000-000000000002" // private, owner p1, queued
	deact   = "aaaaaaaa-0000-4000-8000-000000000003" // public, owner p1, deactivated, with data
	orphan  = "aaaaaaaa-0000-4000-8000-000000000004" // public, no owner, active
)

var (
	admin    = &domain.Caller{ProjectID: "adm", UserID: "ua", Roles: []string{"admin"}, IsAdmin: true}
	owner    = &domain.Caller{ProjectID: "p1", UserID: "u1", Roles: []string{"member"}}
	other    = &domain.Caller{ProjectID: "p2", UserID: "u2", Roles: []string{"member"}}
	readOnly = &domain.Caller{ProjectID: "p1", UserID: "u1", ReadOnly: true}
)

func meta(id string, vis domain.Visibility, st domain.Status, own *string) domain.Meta {
	now := time.Now().UTC().Truncate(time.Second)
	return domain.Meta{ID: id, Status: st, Visibility: vis, Owner: own, CreatedAt: now, UpdatedAt: now,
		DiskFormat: domain.Ptr("raw"), ContainerFormat: domain.Ptr("bare"), Properties: map[string]string{}}
}

type fixture struct {
	db      *proxytest.DB
	drv     *proxytest.Driver
	repo    domain.Repo
	factory domain.Factory
	layers  []proxies.Layer
	c       *domain.Caller
}

func newFixture(t *testing.T, c *domain.Caller) *fixture {
	t.Helper()
	f := &fixture{db: proxytest.NewDB(), drv: proxytest.NewDriver(), c: c}
	f.db.Put(meta(shared, domain.VisibilityShared, domain.StatusActive, domain.Ptr("p1")))
	f.db.Put(meta(private, domain.VisibilityPrivate, domain.StatusQueued, domain.Ptr("p1")))
	d := meta(deact, domain.VisibilityPublic, domain.StatusDeactivated, domain.Ptr("p1"))
	d.Size = domain.Ptr(int64(10))
	d.Locations = []domain.Location{{URL: f.drv.URL(deact), Status: "active"}}
	f.db.Put(d)
	f.db.Put(meta(orphan, domain.VisibilityPublic, domain.StatusActive, nil))
	f.db.PutMember(domain.NewMember(shared, "p2"))
	if _, err := f.drv.Put(context.Background(), deact, proxytest.NewReader(10, nil), 10); err != nil {
		t.Fatal(err)
	}
	inner := f.db.Repo(nil) // the fake db applies no mutation checks for a nil caller
	f.layers = []proxies.Layer{
		location.Layer(proxytest.Stores{D: f.drv}, inner, location.Options{}),
		authz.Layer(c),
	}
	f.repo, f.factory = proxies.Stack(f.db.Repo(c), domain.CoreFactory{}, f.layers...)
	return f
}

func (f *fixture) image(ctx context.Context, id string) (domain.Image, error) {
	return f.repo.Get(ctx, id)
}

func (f *fixture) members(ctx context.Context, id string) (domain.MemberRepo, error) {
	img, err := f.repo.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return proxies.StackMembers(img, f.db.Members(f.c, id), f.layers...), nil
}

type op func(ctx context.Context, f *fixture) error

func update(id string, fn func(*domain.Meta)) op {
	return func(ctx context.Context, f *fixture) error {
		img, err := f.image(ctx, id)
		if err != nil {
			return err
		}
		if err := img.Update(func(m *domain.Meta) error { fn(m); return nil }); err != nil {
			return err
		}
		return f.repo.Save(ctx, img, "")
	}
}

func rename(id string) op { return update(id, func(m *domain.Meta) { m.Name = domain.Ptr("x") }) }

func imageOp(id string, call func(context.Context, domain.Image) error) op {
	return func(ctx context.Context, f *fixture) error {
		img, err := f.image(ctx, id)
		if err != nil {
			return err
		}
		return call(ctx, img)
	}
}

var (
	setData = imageOp(private, func(ctx context.Context, i domain.Image) error {
		return i.SetData(ctx, proxytest.NewReader(5, nil), domain.DataIn{Size: 5})
	})
	deactivate = imageOp(shared, func(ctx context.Context, i domain.Image) error { return i.Deactivate(ctx) })
	reactivate = imageOp(deact, func(ctx context.Context, i domain.Image) error { return i.Reactivate(ctx) })
	download   = imageOp(deact, func(ctx context.Context, i domain.Image) error {
		rc, err := i.Data(ctx, 0, -1)
		if err != nil {
			return err
		}
		defer rc.Close()
		_, err = io.Copy(io.Discard, rc)
		return err
	})
	deleteImg = func(id string) op {
		return func(ctx context.Context, f *fixture) error {
			img, err := f.image(ctx, id)
			if err != nil {
				return err
			}
			if err := img.Delete(ctx); err != nil {
				return err
			}
			return f.repo.Remove(ctx, img)
		}
	}
	create = func(own *string) op {
		return func(ctx context.Context, f *fixture) error {
			img, err := f.factory.NewImage(ctx, domain.Meta{Owner: own})
			if err != nil {
				return err
			}
			return f.repo.Add(ctx, img)
		}
	}
	memberOp = func(id string, call func(context.Context, domain.MemberRepo) error) op {
		return func(ctx context.Context, f *fixture) error {
			mr, err := f.members(ctx, id)
			if err != nil {
				return err
			}
			return call(ctx, mr)
		}
	}
	addMember = func(id string) op {
		return memberOp(id, func(ctx context.Context, mr domain.MemberRepo) error {
			return mr.Add(ctx, domain.NewMember(id, "p3"))
		})
	}
	acceptP2 = memberOp(shared, func(ctx context.Context, mr domain.MemberRepo) error {
		m := domain.NewMember(shared, "p2")
		m.Status = domain.MemberAccepted
		return mr.Save(ctx, m)
	})
	removeP2 = memberOp(shared, func(ctx context.Context, mr domain.MemberRepo) error {
		return mr.Remove(ctx, domain.NewMember(shared, "p2"))
	})
	listMembers = func(id string) op {
		return memberOp(id, func(ctx context.Context, mr domain.MemberRepo) error {
			_, err := mr.List(ctx)
			return err
		})
	}
)

const (
	notOwner  = "You do not own this image"
	readOnlyM = "Read-only access"
)

func TestMatrix(t *testing.T) {
	tests := []struct {
		name    string
		caller  *domain.Caller
		op      op
		wantErr error
		wantMsg string
	}{
		{"owner renames", owner, rename(shared), nil, ""},
		{"admin renames", admin, rename(shared), nil, ""},
		{"member renames", other, rename(shared), domain.ErrForbidden, notOwner},
		{"read-only owner renames", readOnly, rename(shared), domain.ErrForbidden, readOnlyM},
		{"owner renames ownerless", owner, rename(orphan), domain.ErrForbidden, notOwner},
		{"admin renames ownerless", admin, rename(orphan), nil, ""},

		{"owner changes owner", owner, update(shared, func(m *domain.Meta) { m.Owner = domain.Ptr("p9") }),
			domain.ErrForbidden, "Owner can't be updated by non admin."},
		{"owner clears owner", owner, update(shared, func(m *domain.Meta) { m.Owner = nil }),
			domain.ErrForbidden, "Owner can't be updated by non admin."},
		{"admin changes owner", admin, update(shared, func(m *domain.Meta) { m.Owner = domain.Ptr("p9") }), nil, ""},

		{"owner uploads", owner, setData, nil, ""},
		{"read-only uploads", readOnly, setData, domain.ErrForbidden, readOnlyM},
		{"admin uploads", admin, setData, nil, ""},

		{"owner deactivates", owner, deactivate, nil, ""},
		{"member deactivates", other, deactivate, domain.ErrForbidden, notOwner},
		{"owner reactivates", owner, reactivate, nil, ""},
		{"other reactivates public", other, reactivate, domain.ErrForbidden, notOwner},

		{"owner downloads deactivated", owner, download, domain.ErrForbidden,
			"The requested image has been deactivated. Image data download is forbidden."},
		{"other downloads deactivated", other, download, domain.ErrForbidden,
			"The requested image has been deactivated. Image data download is forbidden."},
		{"admin downloads deactivated", admin, download, nil, ""},

		{"owner deletes", owner, deleteImg(private), nil, ""},
		{"member deletes", other, deleteImg(shared), domain.ErrForbidden, notOwner},
		{"read-only deletes", readOnly, deleteImg(private), domain.ErrForbidden, readOnlyM},
		{"admin deletes ownerless", admin, deleteImg(orphan), nil, ""},
		{"other deletes ownerless", other, deleteImg(orphan), domain.ErrForbidden, notOwner},

		{"create for own project", owner, create(nil), nil, ""},
		{"create naming own project", owner, create(domain.Ptr("p1")), nil, ""},
		{"create for another project", owner, create(domain.Ptr("p9")), domain.ErrForbidden,
			"You are not permitted to create images owned by 'p9'."},
		{"admin creates for another project", admin, create(domain.Ptr("p9")), nil, ""},
		{"read-only creates", readOnly, create(nil), domain.ErrForbidden, readOnlyM},

		{"owner adds member", owner, addMember(shared), nil, ""},
		{"admin adds member", admin, addMember(shared), nil, ""},
		{"member adds member", other, addMember(shared), domain.ErrForbidden,
			"Not allowed to create members for image " + shared + "."},
		{"owner adds member to private", owner, addMember(private), domain.ErrForbidden,
			"Not allowed to create members for image " + private + "."},
		{"read-only adds member", readOnly, addMember(shared), domain.ErrForbidden, readOnlyM},

		{"member accepts", other, acceptP2, nil, ""},
		{"admin accepts for member", admin, acceptP2, nil, ""},
		{"owner accepts for member", owner, acceptP2, domain.ErrForbidden,
			"Not allowed to update members for image " + shared + "."},

		{"owner removes member", owner, removeP2, nil, ""},
		{"member removes itself", other, removeP2, domain.ErrForbidden,
			"Not allowed to delete members for image " + shared + "."},

		{"owner lists members", owner, listMembers(shared), nil, ""},
		{"member lists members", other, listMembers(shared), nil, ""},
		{"owner lists members of private", owner, listMembers(private), domain.ErrForbidden,
			"Not allowed to list members for image " + private + ": Only shared images have members."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.caller)
			err := tc.op(context.Background(), f)
			if tc.wantErr == nil && err != nil {
				t.Fatalf("error = %v, want success", err)
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error = %v, want %v", err, tc.wantErr)
			}
			if tc.wantMsg != "" && err.Error() != tc.wantMsg {
				t.Errorf("message = %q, want %q", err.Error(), tc.wantMsg)
			}
		})
	}
}

// TestRefusalLeavesImageUntouched checks that a refused change is not
// applied to the image the caller holds.
func TestRefusalLeavesImageUntouched(t *testing.T) {
	f := newFixture(t, owner)
	ctx := context.Background()
	img, err := f.image(ctx, shared)
	if err != nil {
		t.Fatal(err)
	}
	err = img.Update(func(m *domain.Meta) error {
		m.Name = domain.Ptr("changed")
		m.Owner = domain.Ptr("p9")
		return nil
	})
	if !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("Update = %v, want ErrForbidden", err)
	}
	if m := img.Meta(); m.Name != nil || *m.Owner != "p1" {
		t.Errorf("refused change applied: name %v owner %v", m.Name, *m.Owner)
	}
}

func TestCreateDefaultsOwner(t *testing.T) {
	tests := []struct {
		name   string
		caller *domain.Caller
		want   *string
	}{
		{"project caller", owner, domain.Ptr("p1")},
		{"admin without project", &domain.Caller{IsAdmin: true}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.caller)
			img, err := f.factory.NewImage(context.Background(), domain.Meta{})
			if err != nil {
				t.Fatal(err)
			}
			got := img.Meta().Owner
			if (got == nil) != (tc.want == nil) || (got != nil && *got != *tc.want) {
				t.Errorf("owner = %v, want %v", got, tc.want)
			}
		})
	}
}
