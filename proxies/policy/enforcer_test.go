package policy

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	glancego "github.com/glance-go/glance-go"
	"github.com/glance-go/glance-go/domain"
)

// glancePolicies is every policy name of Glance's defaults (reference §5).
var glancePolicies = []string{
	"default", "context_is_admin", "service_api",
	"add_image", "delete_image", "get_image", "get_images", "modify_image", "publicize_image",
	"communitize_image", "download_image", "download_from_store", "upload_image",
	"delete_image_location", "get_image_location", "set_image_location", "add_image_location",
	"fetch_image_location",
	"add_member", "delete_member", "get_member", "get_members", "modify_member",
	"manage_image_cache", "deactivate", "reactivate", "copy_image", "list_cached_nodes",
	"cache_image", "cache_list", "cache_delete", "cache_clean", "cache_prune",
	"get_task", "get_tasks", "add_task", "modify_task", "tasks_api_access",
	"metadef_default", "metadef_admin",
	"get_metadef_namespace", "get_metadef_namespaces", "add_metadef_namespace",
	"modify_metadef_namespace", "delete_metadef_namespace",
	"get_metadef_object", "get_metadef_objects", "add_metadef_object", "modify_metadef_object",
	"delete_metadef_object",
	"get_metadef_property", "get_metadef_properties", "add_metadef_property",
	"modify_metadef_property", "remove_metadef_property",
	"get_metadef_tag", "get_metadef_tags", "add_metadef_tag", "add_metadef_tags",
	"modify_metadef_tag", "delete_metadef_tag", "delete_metadef_tags",
	"list_metadef_resource_types", "get_metadef_resource_type",
	"add_metadef_resource_type_association", "remove_metadef_resource_type_association",
	"stores_info_detail",
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestDefaultPolicyHasEveryGlancePolicy(t *testing.T) {
	e, err := NewDefault()
	if err != nil {
		t.Fatal(err)
	}
	got := e.Actions()
	want := slices.Clone(glancePolicies)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("policy names differ\n got %v\nwant %v", got, want)
	}
}

// Personas of reference §4.7. Roles are as Keystone sends them: a role
// brings the roles it implies (admin → member → reader).
var personas = map[string]*domain.Caller{
	"admin":    {ProjectID: "padmin", Roles: []string{"admin", "member", "reader"}},
	"owner":    {ProjectID: "p1", Roles: []string{"member", "reader"}},
	"reader":   {ProjectID: "p1", Roles: []string{"reader"}},
	"other":    {ProjectID: "p2", Roles: []string{"member", "reader"}},
	"sharedm":  {ProjectID: "p3", Roles: []string{"member", "reader"}},
	"noroles":  {ProjectID: "p1"},
	"service":  {ProjectID: "psvc", Roles: []string{"service"}},
	"noauthad": {IsAdmin: true},
}

var personaOrder = []string{"admin", "owner", "reader", "other", "sharedm", "noroles", "service", "noauthad"}

func TestDefaultPolicyPersonas(t *testing.T) {
	e, err := NewDefault()
	if err != nil {
		t.Fatal(err)
	}
	// The image is owned by p1 and shared with p3. The target differs per
	// caller only in member_id: the caller's project when it is a member.
	target := func(persona string, vis string) Target {
		tg := Target{ProjectID: "p1", Owner: "p1", Visibility: vis}
		if persona == "sharedm" && vis == "shared" {
			tg.MemberID = "p3"
		}
		return tg
	}
	// One letter per persona, in personaOrder: Y allowed, n denied.
	cases := []struct {
		action string
		vis    string // "" → private
		want   string
	}{
		{"context_is_admin", "", "YnnnnnnY"},
		{"get_image", "", "YYYnnnnY"},
		{"get_image", "shared", "YYYYYnnY"}, // 'shared':%(visibility)s lets any reader through
		{"get_image", "public", "YYYYYnnY"},
		{"get_images", "", "YYYnnnnY"},
		{"modify_image", "", "YYnnnnnY"},
		{"modify_image", "shared", "YYnnnnnY"},
		{"delete_image", "", "YYnnnnnY"},
		{"upload_image", "", "YYnnnnnY"},
		{"deactivate", "", "YYnnnnnY"},
		{"reactivate", "", "YYnnnnnY"},
		{"download_image", "", "YYnnnnnY"},
		{"download_image", "shared", "YYnYYnnY"},
		{"download_image", "community", "YYnYYnnY"},
		{"download_from_store", "shared", "YYnYYnnY"},
		{"publicize_image", "", "YnnnnnnY"},
		{"communitize_image", "", "YYnnnnnY"},
		{"add_image", "", "YYnnnnnY"},
		{"copy_image", "", "YnnnnnnY"},
		{"add_member", "shared", "YYnnnnnY"},
		{"delete_member", "shared", "YYnnnnnY"},
		{"get_member", "shared", "YYYnYnnY"},
		{"get_members", "shared", "YYYnYnnY"},
		{"modify_member", "shared", "YnnnYnnY"},
		{"get_image_location", "", "YYYnnnnY"},
		{"set_image_location", "", "YYnnnnnY"},
		{"delete_image_location", "", "YnnnnnnY"},
		{"add_image_location", "", "YYnnnnYn"}, // service_api is role-based only
		{"fetch_image_location", "", "YnnnnnYn"},
		{"stores_info_detail", "", "YnnnnnYY"},
		{"tasks_api_access", "", "YnnnnnnY"},
		{"get_task", "", "YYYYYYYY"},
		{"add_task", "", "YYYYYYYY"},
		{"cache_image", "", "YnnnnnnY"},
		{"cache_list", "", "YnnnnnnY"},
		{"cache_delete", "", "YnnnnnnY"},
		{"cache_clean", "", "YnnnnnnY"},
		{"cache_prune", "", "YnnnnnnY"},
		{"list_cached_nodes", "", "YnnnnnnY"},
		{"manage_image_cache", "", "YnnnnnnY"},
		{"get_metadef_namespace", "", "YYYnnnnY"},
		{"get_metadef_namespace", "public", "YYYYYnnY"},
		{"get_metadef_namespaces", "", "YYYnnnnY"},
		{"add_metadef_namespace", "", "YnnnnnnY"},
		{"delete_metadef_tags", "", "YnnnnnnY"},
		{"get_metadef_tags", "public", "YYYYYnnY"},
		{"no_such_policy", "", "nnnnnnnn"},
	}
	for _, tc := range cases {
		vis := tc.vis
		if vis == "" {
			vis = "private"
		}
		for i, p := range personaOrder {
			want := tc.want[i] == 'Y'
			if got := e.Allowed(personas[p], tc.action, target(p, vis)); got != want {
				t.Errorf("%s on a %s image by %s: got %v, want %v", tc.action, vis, p, got, want)
			}
		}
	}
}

func TestAddImageOwner(t *testing.T) {
	e, err := NewDefault()
	if err != nil {
		t.Fatal(err)
	}
	owner := personas["owner"]
	if !e.Allowed(owner, "add_image", Target{ProjectID: "p1", Owner: "p1"}) {
		t.Error("a member may create images in its own project")
	}
	if e.Allowed(owner, "add_image", Target{ProjectID: "p2", Owner: "p2"}) {
		t.Error("a member may not create images for another project")
	}
	if e.Allowed(&domain.Caller{Roles: []string{"member"}}, "add_image", Target{}) {
		t.Error("an empty project matches no empty owner")
	}
}

func TestCheckAndIsAdmin(t *testing.T) {
	e, err := NewDefault()
	if err != nil {
		t.Fatal(err)
	}
	if !Check(e, []string{"Admin"}, "", "publicize_image", Target{}) {
		t.Error("Check lower-cases roles: Admin is admin")
	}
	if Check(e, []string{"member"}, "p1", "publicize_image", Target{ProjectID: "p1"}) {
		t.Error("publicize_image is admin only")
	}
	if !e.IsAdmin(personas["admin"]) || e.IsAdmin(personas["owner"]) || !e.IsAdmin(personas["noauthad"]) {
		t.Error("IsAdmin does not follow context_is_admin")
	}
}

func writeFiles(t *testing.T, dir, model, policy string) (string, string) {
	t.Helper()
	mp, pp := filepath.Join(dir, "policy.conf"), filepath.Join(dir, "policy.csv")
	if err := os.WriteFile(mp, []byte(model), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pp, []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	return mp, pp
}

func TestNewRefusesBrokenFiles(t *testing.T) {
	model := string(glancego.DefaultPolicyModel)
	cases := []struct {
		name, model, policy, wantErr string
	}{
		{"unbalanced quote", model, "p, get_image, \"hasRole(r.sub, 'reader')\n", "policy.csv:1"},
		{"not a policy line", model, "p, default, \"true\"\ng, alice, admin\n", "policy.csv:2"},
		{"unknown function", model, "p, get_image, \"isReader(r.sub)\"\n", "does not evaluate"},
		{"unknown field", model, "p, get_image, \"r.sub.Tenant == 'x'\"\n", "does not evaluate"},
		{"not a boolean", model, "p, get_image, \"r.sub.ProjectID\"\n", "get_image"},
		{"bad syntax", model, "p, get_image, \"hasRole(r.sub, 'reader') &&\"\n", "does not evaluate"},
		{"undefined rule", model, "p, get_image, \"rule(r.sub, r.obj, 'nope')\"\n", "not defined"},
		{"rule loop", model, "p, a, \"rule(r.sub, r.obj, 'b')\"\np, b, \"rule(r.sub, r.obj, 'a')\"\n", "loop"},
		{"rule by variable", model, "p, a, \"rule(r.sub, r.obj, r.act)\"\n", "rule(r.sub, r.obj, 'name')"},
		{"empty rule", model, "p, a, \"\"\n", "empty"},
		{"three fields", model, "p, a, \"true\", extra\n", "policy.csv:1"},
		{"broken model", "[request_definition]\nr = sub, obj, act\n", "p, a, \"true\"\n", "policy model"},
		{"other request shape", strings.Replace(model, "r = sub, obj, act", "r = sub, act", 1), "p, a, \"true\"\n", "a"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mp, pp := writeFiles(t, t.TempDir(), tc.model, tc.policy)
			_, err := New(mp, pp, quiet())
			if err == nil {
				t.Fatal("New accepted a broken policy")
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q does not mention %q", err, tc.wantErr)
			}
		})
	}
	if _, err := New("/nonexistent/policy.conf", "/nonexistent/policy.csv", quiet()); err == nil {
		t.Error("New accepted missing files")
	}
}

func TestCSVQuoting(t *testing.T) {
	// A quoted rule keeps its commas; an unquoted one is split by them and
	// refused.
	policy := "# a comment\n\np, get_image, \"hasRole(r.sub, 'reader') && r.obj.Visibility in ('public', 'community')\"\n" +
		"  p,  say, \"r.sub.UserID == \"\"quote\"\"\"\n"
	mp, pp := writeFiles(t, t.TempDir(), string(glancego.DefaultPolicyModel), policy)
	e, err := New(mp, pp, quiet())
	if err != nil {
		t.Fatal(err)
	}
	reader := &domain.Caller{ProjectID: "p", Roles: []string{"reader"}}
	if !e.Allowed(reader, "get_image", Target{Visibility: "community"}) || e.Allowed(reader, "get_image", Target{Visibility: "private"}) {
		t.Error("the quoted rule was not read whole")
	}
	if !e.Allowed(&domain.Caller{UserID: "quote"}, "say", Target{}) {
		t.Error("a doubled double quote is one double quote")
	}
	_, pp = writeFiles(t, t.TempDir(), string(glancego.DefaultPolicyModel), "p, get_image, hasRole(r.sub, 'reader')\n")
	if _, err := New(mp, pp, quiet()); err == nil {
		t.Error("an unquoted rule with a comma was accepted")
	}
}

func TestCustomModelGeneralPath(t *testing.T) {
	// A model other than the shipped one is enforced by casbin as written.
	model := strings.Replace(string(glancego.DefaultPolicyModel),
		"m = r.act == p.act && eval(p.rule)", "m = r.act == p.act && eval(p.rule) || r.sub.UserID == 'root'", 1)
	mp, pp := writeFiles(t, t.TempDir(), model, string(glancego.DefaultPolicy))
	e, err := New(mp, pp, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if e.cur.Load().byAct != nil {
		t.Fatal("a custom matcher must not be split by action")
	}
	if !e.Allowed(&domain.Caller{UserID: "root"}, "publicize_image", Target{}) {
		t.Error("the custom matcher was not applied")
	}
	if e.Allowed(personas["owner"], "publicize_image", Target{ProjectID: "p1"}) {
		t.Error("the rules were not applied")
	}
	if !e.Allowed(personas["owner"], "get_image", Target{ProjectID: "p1"}) {
		t.Error("the rules were not applied")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestWatchReloads(t *testing.T) {
	old := pollEvery
	pollEvery = 10 * time.Millisecond
	defer func() { pollEvery = old }()

	dir := t.TempDir()
	open := "p, get_image, \"hasRole(r.sub, 'reader')\"\n"
	mp, pp := writeFiles(t, dir, string(glancego.DefaultPolicyModel), open)
	e, err := New(mp, pp, quiet())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Watch(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	reader := personas["reader"]
	if !e.Allowed(reader, "get_image", Target{}) {
		t.Fatal("the first policy is not in force")
	}
	// Replace the file the way editors do: write a new one and rename it.
	tmp := filepath.Join(dir, ".policy.csv.new")
	os.WriteFile(tmp, []byte("p, get_image, \"hasRole(r.sub, 'admin')\"\n"), 0o644)
	if err := os.Rename(tmp, pp); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new policy", func() bool { return !e.Allowed(reader, "get_image", Target{}) })

	// A broken edit is refused; the last good policy stays.
	os.WriteFile(pp, []byte("p, get_image, \"hasRole(r.sub, 'reader') ||\"\np, get_images, \"true\"\n"), 0o644)
	time.Sleep(100 * time.Millisecond)
	if e.Allowed(reader, "get_image", Target{}) || e.Allowed(reader, "get_images", Target{}) {
		t.Fatal("a broken policy was loaded")
	}
	if !e.Allowed(personas["admin"], "get_image", Target{}) {
		t.Fatal("the last good policy is gone")
	}

	// Fixing it, or editing the model, is picked up again.
	os.WriteFile(pp, []byte(open), 0o644)
	waitFor(t, "the fixed policy", func() bool { return e.Allowed(reader, "get_image", Target{}) })
	os.WriteFile(mp, []byte(strings.Replace(string(glancego.DefaultPolicyModel),
		"eval(p.rule)", "eval(p.rule) && r.sub.UserID != 'banned'", 1)), 0o644)
	banned := &domain.Caller{UserID: "banned", Roles: []string{"reader"}}
	waitFor(t, "the new model", func() bool { return !e.Allowed(banned, "get_image", Target{}) })
}

func TestConcurrentChecksDuringReload(t *testing.T) {
	dir := t.TempDir()
	mp, pp := writeFiles(t, dir, string(glancego.DefaultPolicyModel), string(glancego.DefaultPolicy))
	e, err := New(mp, pp, quiet())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				owner := personas["owner"]
				tg := Target{ProjectID: "p1", Owner: "p1", Visibility: "private", MemberID: string(rune('a' + (i+w)%20))}
				if !e.Allowed(owner, "get_image", tg) || e.Allowed(owner, "publicize_image", tg) {
					t.Error("a decision changed during a reload")
					return
				}
			}
		}()
	}
	for range 5 {
		if err := e.Reload(); err != nil {
			t.Error(err)
		}
	}
	close(stop)
	wg.Wait()
}

func BenchmarkAllowed(b *testing.B) {
	e, err := NewDefault()
	if err != nil {
		b.Fatal(err)
	}
	c := personas["owner"]
	tg := Target{ProjectID: "p2", Owner: "p2", Visibility: "shared"}
	b.Run("cached", func(b *testing.B) {
		for b.Loop() {
			e.Allowed(c, "get_image", tg)
		}
	})
	b.Run("uncached", func(b *testing.B) {
		s := e.cur.Load()
		sub := newSubject(c)
		for b.Loop() {
			if ok, err := s.enforce(&sub, tg, "get_image"); err != nil || !ok {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				e.Allowed(c, "download_image", tg)
			}
		})
	})
}
