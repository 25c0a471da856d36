package gateway_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/glance-go/glance-go/db/dbtest"
	"github.com/glance-go/glance-go/domain"
	"github.com/glance-go/glance-go/gateway"
	"github.com/glance-go/glance-go/proxies"
	"github.com/glance-go/glance-go/proxies/location"
	"github.com/glance-go/glance-go/proxies/notifier"
	"github.com/glance-go/glance-go/proxies/policy"
	"github.com/glance-go/glance-go/proxies/propprotect"
	"github.com/glance-go/glance-go/proxies/proxytest"
	"github.com/glance-go/glance-go/proxies/quota"
	"github.com/glance-go/glance-go/stores"
	"github.com/glance-go/glance-go/stores/file"
)

// trace records which layer a call is about to enter, in arrival order.
type trace struct {
	mu    sync.Mutex
	calls []string
}

func (t *trace) hit(layer, op string) {
	t.mu.Lock()
	t.calls = append(t.calls, op+">"+layer)
	t.mu.Unlock()
}

func (t *trace) take() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.calls
	t.calls = nil
	return c
}

// tracer is a ring placed just outside layer name: every call that crosses
// it is about to enter that layer.
func tracer(t *trace, name string) proxies.Layer {
	wrap := func(img domain.Image) domain.Image {
		return &tracedImage{Image: proxies.Image{Next: img}, t: t, name: name}
	}
	return proxies.Layer{
		Name: "trace:" + name,
		Repo: func(next domain.Repo) domain.Repo {
			return &tracedRepo{Repo: proxies.Repo{Next: next, Wrap: wrap}, t: t, name: name}
		},
		Factory: func(next domain.Factory) domain.Factory {
			return &tracedFactory{Factory: proxies.Factory{Next: next, Wrap: wrap}, t: t, name: name}
		},
		Members: func(_ domain.Image, next domain.MemberRepo) domain.MemberRepo {
			return &tracedMembers{Members: proxies.Members{Next: next}, t: t, name: name}
		},
	}
}

type tracedRepo struct {
	proxies.Repo
	t    *trace
	name string
}

func (r *tracedRepo) Get(ctx context.Context, id string) (domain.Image, error) {
	r.t.hit(r.name, "Get")
	return r.Repo.Get(ctx, id)
}
func (r *tracedRepo) List(ctx context.Context, q domain.ListQuery) (domain.Page, error) {
	r.t.hit(r.name, "List")
	return r.Repo.List(ctx, q)
}
func (r *tracedRepo) Add(ctx context.Context, img domain.Image) error {
	r.t.hit(r.name, "Add")
	return r.Repo.Add(ctx, img)
}
func (r *tracedRepo) Save(ctx context.Context, img domain.Image, from domain.Status) error {
	r.t.hit(r.name, "Save")
	return r.Repo.Save(ctx, img, from)
}
func (r *tracedRepo) Remove(ctx context.Context, img domain.Image) error {
	r.t.hit(r.name, "Remove")
	return r.Repo.Remove(ctx, img)
}

type tracedFactory struct {
	proxies.Factory
	t    *trace
	name string
}

func (f *tracedFactory) NewImage(ctx context.Context, m domain.Meta) (domain.Image, error) {
	f.t.hit(f.name, "NewImage")
	return f.Factory.NewImage(ctx, m)
}

type tracedImage struct {
	proxies.Image
	t    *trace
	name string
}

func (i *tracedImage) Update(fn func(*domain.Meta) error) error {
	i.t.hit(i.name, "Update")
	return i.Image.Update(fn)
}
func (i *tracedImage) SetData(ctx context.Context, r io.Reader, in domain.DataIn) error {
	i.t.hit(i.name, "SetData")
	return i.Image.SetData(ctx, r, in)
}
func (i *tracedImage) Data(ctx context.Context, off, n int64) (io.ReadCloser, error) {
	i.t.hit(i.name, "Data")
	return i.Image.Data(ctx, off, n)
}
func (i *tracedImage) Deactivate(ctx context.Context) error {
	i.t.hit(i.name, "Deactivate")
	return i.Image.Deactivate(ctx)
}
func (i *tracedImage) Delete(ctx context.Context) error {
	i.t.hit(i.name, "Delete")
	return i.Image.Delete(ctx)
}

type tracedMembers struct {
	proxies.Members
	t    *trace
	name string
}

func (m *tracedMembers) Add(ctx context.Context, mb domain.Member) error {
	m.t.hit(m.name, "MemberAdd")
	return m.Members.Add(ctx, mb)
}
func (m *tracedMembers) List(ctx context.Context) ([]domain.Member, error) {
	m.t.hit(m.name, "MemberList")
	return m.Members.List(ctx)
}

// coreOnly fails the test when anything but a core image reaches the database.
type coreOnly struct {
	gateway.Database
	t testing.TB
}

func (d coreOnly) Images(c *domain.Caller) domain.Repo {
	return coreRepo{Repo: d.Database.Images(c), t: d.t}
}

type coreRepo struct {
	domain.Repo
	t testing.TB
}

func (r coreRepo) check(op string, img domain.Image) {
	if img.Unwrap() != nil {
		r.t.Errorf("%s reached the database with a wrapped image (%T)", op, img)
	}
}
func (r coreRepo) Add(ctx context.Context, img domain.Image) error {
	r.check("Add", img)
	return r.Repo.Add(ctx, img)
}
func (r coreRepo) Save(ctx context.Context, img domain.Image, from domain.Status) error {
	r.check("Save", img)
	return r.Repo.Save(ctx, img, from)
}
func (r coreRepo) Remove(ctx context.Context, img domain.Image) error {
	r.check("Remove", img)
	return r.Repo.Remove(ctx, img)
}

// The documented order, innermost first (docs/architecture.md, gateway.go).
var documented = []string{"location", "quota", "policy", "notifier", "propprotect", "authz"}

func newGateway(t *testing.T, sink notifier.Sink, d gateway.Database) *gateway.Gateway {
	t.Helper()
	enf, err := policy.NewDefault()
	if err != nil {
		t.Fatal(err)
	}
	rulesFile := filepath.Join(t.TempDir(), "protections.conf")
	rules := "[^x_.*]\ncreate = admin,member\nread = admin,member\nupdate = admin,member\ndelete = admin,member\n\n[.*]\ncreate = admin\nread = admin\nupdate = admin\ndelete = admin\n"
	if err := os.WriteFile(rulesFile, []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	pp, err := propprotect.Load(rulesFile, propprotect.FormatRoles, nil)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := file.New(file.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return gateway.New(gateway.Config{
		DB:       coreOnly{Database: d, t: t},
		Stores:   stores.NewSet(fs),
		Location: location.Options{HashAlgo: "sha512"},
		Limits:   quota.Limits{Properties: 128, Tags: 128, Members: 128, Locations: 10, SizeCap: 1 << 40},
		Enforcer: enf,
		Sink:     sink,
		Rules:    pp,
	})
}

// TestLayerOrder proves that every call crosses each of the six layers
// exactly once, outermost (authorization) first, and that the database only
// ever receives core images.
func TestLayerOrder(t *testing.T) {
	sink := &proxytest.Sink{}
	d := dbtest.OpenSQLite(t)
	g := newGateway(t, sink, d)
	c := &domain.Caller{ProjectID: "p1", UserID: "u1", Roles: []string{"admin", "member", "reader"}, IsAdmin: true}

	// Build the chain as Images does, with a tracer just outside each layer.
	tr := &trace{}
	var layers []proxies.Layer
	inner := coreOnly{Database: d, t: t}.Images(c)
	gl := g.Layers(c, inner)
	var names []string
	for _, l := range gl {
		names = append(names, l.Name)
		layers = append(layers, l, tracer(tr, l.Name))
	}
	if !slices.Equal(names, documented) {
		t.Fatalf("layers = %v, want %v", names, documented)
	}
	repo, factory := proxies.Stack(inner, domain.CoreFactory{}, layers...)

	// Outermost first: the order in which a call meets the layers.
	outward := slices.Clone(documented)
	slices.Reverse(outward)
	want := func(op string) []string {
		var w []string
		for _, l := range outward {
			w = append(w, op+">"+l)
		}
		return w
	}
	ctx := context.Background()
	check := func(op string) {
		t.Helper()
		// Only the call's own crossings: a layer may make further calls
		// inwards (quota counts members before an Add).
		var got []string
		for _, h := range tr.take() {
			if strings.HasPrefix(h, op+">") {
				got = append(got, h)
			}
		}
		if !slices.Equal(got, want(op)) {
			t.Errorf("%s crossed %v, want %v", op, got, want(op))
		}
	}

	img, err := factory.NewImage(ctx, domain.Meta{Name: domain.Ptr("order"), DiskFormat: domain.Ptr("raw"),
		ContainerFormat: domain.Ptr("bare"), Properties: map[string]string{"x_a": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	check("NewImage")
	if err := repo.Add(ctx, img); err != nil {
		t.Fatal(err)
	}
	check("Add")
	id := img.Meta().ID

	got, err := repo.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	check("Get")
	if _, err := repo.List(ctx, domain.ListQuery{Limit: 10, MemberStatus: "accepted"}); err != nil {
		t.Fatal(err)
	}
	check("List")
	if err := got.Update(func(m *domain.Meta) error { m.Properties["x_b"] = "2"; return nil }); err != nil {
		t.Fatal(err)
	}
	check("Update")
	if err := repo.Save(ctx, got, domain.StatusQueued); err != nil {
		t.Fatal(err)
	}
	check("Save")
	if err := got.SetData(ctx, strings.NewReader("0123456789"), domain.DataIn{Size: 10}); err != nil {
		t.Fatal(err)
	}
	check("SetData")
	rc, err := got.Data(ctx, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	check("Data")
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, rc); err != nil || rc.Close() != nil || buf.String() != "0123456789" {
		t.Fatalf("read back %q, %v", buf.String(), err)
	}
	if err := got.Deactivate(ctx); err != nil {
		t.Fatal(err)
	}
	check("Deactivate")

	shared, err := repo.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	tr.take()
	var mlayers []proxies.Layer
	for _, l := range gl {
		mlayers = append(mlayers, l, tracer(tr, l.Name))
	}
	members := proxies.StackMembers(shared, d.Members(c, id), mlayers...)
	if err := members.Add(ctx, domain.NewMember(id, "p2")); err != nil {
		t.Fatal(err)
	}
	check("MemberAdd")
	if ms, err := members.List(ctx); err != nil || len(ms) != 1 {
		t.Fatalf("members = %v, %v", ms, err)
	}
	check("MemberList")

	del, err := repo.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	tr.take()
	if err := del.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	check("Delete")
	if err := repo.Remove(ctx, del); err != nil {
		t.Fatal(err)
	}
	check("Remove")

	// The notifier, one ring among six, saw the life cycle once per call.
	var types []string
	for _, ev := range sink.Events() {
		types = append(types, ev.EventType)
	}
	wantTypes := []string{"image.create", "image.update", "image.update", "image.prepare", "image.upload", "image.activate",
		"image.update", "image.send", "image.member.create", "image.delete"}
	if !slices.Equal(types, wantTypes) {
		t.Errorf("events = %v, want %v", types, wantTypes)
	}
}

// TestMemberLayerOrder does the same for an image's member repository.
func TestMemberLayerOrder(t *testing.T) {
	g := newGateway(t, &proxytest.Sink{}, dbtest.OpenSQLite(t))
	c := &domain.Caller{ProjectID: "p1", UserID: "u1", Roles: []string{"member", "reader"}}
	repo, factory := g.Images(c)
	ctx := context.Background()
	img, err := factory.NewImage(ctx, domain.Meta{Name: domain.Ptr("shared")})
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.Add(ctx, img); err != nil {
		t.Fatal(err)
	}
	img, err = repo.Get(ctx, img.Meta().ID)
	if err != nil {
		t.Fatal(err)
	}
	// Members of the real gateway: the member-quota, policy, notifier and
	// authorization rings accept the owner's share.
	if err := g.Members(c, img).Add(ctx, domain.NewMember(img.Meta().ID, "p2")); err != nil {
		t.Fatal(err)
	}
	ms, err := g.Members(c, img).List(ctx)
	if err != nil || len(ms) != 1 || ms[0].MemberID != "p2" {
		t.Fatalf("members = %v, %v", ms, err)
	}
}

// TestPeekShowsWhatMetaShows reads images through the whole onion with
// domain.Peek, which skips the copy of Meta where layers allow it, and
// wants exactly what Meta shows: property protection, which filters Meta,
// is never bypassed.
func TestPeekShowsWhatMetaShows(t *testing.T) {
	d := dbtest.OpenSQLite(t)
	g := newGateway(t, &proxytest.Sink{}, d)
	adm := &domain.Caller{ProjectID: "p1", UserID: "u1", Roles: []string{"admin"}, IsAdmin: true}
	member := &domain.Caller{ProjectID: "p1", UserID: "u2", Roles: []string{"member", "reader"}}
	ctx := context.Background()
	repo, factory := g.Images(adm)
	img, err := factory.NewImage(ctx, domain.Meta{Name: domain.Ptr("p"), Owner: domain.Ptr("p1"),
		Properties: map[string]string{"x_open": "1", "secret": "2"}, Tags: []string{"t"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.Add(ctx, img); err != nil {
		t.Fatal(err)
	}
	id := img.Meta().ID
	for _, c := range []*domain.Caller{adm, member} {
		repo, _ := g.Images(c)
		got, err := repo.Get(ctx, id)
		if err != nil {
			t.Fatalf("%v: %v", c.Roles, err)
		}
		peeked, meta := domain.Peek(got), got.Meta()
		if !reflect.DeepEqual(*peeked, meta) {
			t.Errorf("%v: Peek shows\n%+v\nMeta shows\n%+v", c.Roles, *peeked, meta)
		}
		if _, ok := peeked.Properties["secret"]; ok == (c == member) {
			t.Errorf("%v: properties %v", c.Roles, peeked.Properties)
		}
	}
}
