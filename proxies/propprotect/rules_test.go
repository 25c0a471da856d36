package propprotect

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glance-go/glance-go/domain"
)

func writeConf(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "protections.conf")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func caller(roles ...string) *domain.Caller {
	return &domain.Caller{ProjectID: "p1", Roles: roles}
}

func TestRolesSample(t *testing.T) {
	r, err := Load("../../etc/property-protections-roles.conf.sample", FormatRoles, nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		roles []string
		prop  string
		op    string
		want  bool
	}{
		{[]string{"member"}, "x_foo", OpCreate, true},
		{[]string{"Member"}, "x_foo", OpRead, true}, // roles compare without case
		{[]string{"_member_"}, "x_foo", OpDelete, true},
		{[]string{"reader"}, "x_foo", OpRead, false},
		{[]string{"member"}, "foo", OpRead, false}, // falls to [.*]
		{[]string{"admin"}, "foo", OpUpdate, true},
		{[]string{"member"}, "a_x_foo", OpRead, false}, // ^ anchors
		{nil, "os_glance_importing_to_stores", OpUpdate, true},
		{nil, "os_glance_x", OpDelete, true},
		{[]string{"member"}, "x_foo", "frobnicate", false},
	}
	for _, tc := range cases {
		if got := r.Allowed(caller(tc.roles...), tc.prop, tc.op); got != tc.want {
			t.Errorf("%v %s %s: got %v, want %v", tc.roles, tc.op, tc.prop, got, tc.want)
		}
	}
	// Service roles count as roles.
	svc := &domain.Caller{Roles: []string{"reader"}, ServiceRoles: []string{"admin"}}
	if !r.Allowed(svc, "foo", OpRead) {
		t.Error("service roles are ignored")
	}
}

func TestPoliciesSample(t *testing.T) {
	var asked []string
	policy := func(c *domain.Caller, rule string) bool {
		asked = append(asked, rule)
		return rule == "default" || (rule == "context_is_admin" && c.HasRole("admin"))
	}
	r, err := Load("../../etc/property-protections-policies.conf.sample", FormatPolicies, policy)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		roles []string
		prop  string
		want  bool
	}{
		{[]string{"member"}, "x_a", true},
		{[]string{"member"}, "a", false},
		{[]string{"admin"}, "a", true},
		{nil, "os_glance_a", true},
	}
	for _, tc := range cases {
		if got := r.Allowed(caller(tc.roles...), tc.prop, OpRead); got != tc.want {
			t.Errorf("%v read %s: got %v, want %v", tc.roles, tc.prop, got, tc.want)
		}
	}
	if strings.Join(asked, ",") != "default,context_is_admin,context_is_admin" {
		t.Errorf("policies asked: %v", asked)
	}
}

// TestGlanceFiles loads the protection files Glance ships and tests with,
// read from its source tree when that is on this machine.
func TestGlanceFiles(t *testing.T) {
	repo := "/work/.mirror/openstack+glance/repo"
	if _, err := os.Stat(repo); err != nil {
		t.Skip("Glance's source is not on this machine")
	}
	policy := func(*domain.Caller, string) bool { return true }
	for _, f := range []struct{ path, format string }{
		{"etc/property-protections-roles.conf.sample", FormatRoles},
		{"etc/property-protections-policies.conf.sample", FormatPolicies},
		{"glance/tests/etc/property-protections.conf", FormatRoles},
		{"glance/tests/etc/property-protections-policies.conf", FormatPolicies},
	} {
		t.Run(f.path, func(t *testing.T) {
			out, err := exec.Command("git", "-C", repo, "show", "HEAD:"+f.path).Output()
			if err != nil {
				t.Skipf("git show: %v", err)
			}
			if _, err := Load(writeConf(t, string(out)), f.format, policy); err != nil {
				t.Fatal(err)
			}
		})
	}
	out, err := exec.Command("git", "-C", repo, "show", "HEAD:glance/tests/etc/property-protections.conf").Output()
	if err != nil {
		t.Skip(err)
	}
	r, err := Load(writeConf(t, string(out)), FormatRoles, nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		roles    []string
		prop, op string
		want     bool
	}{
		{[]string{"spl_role"}, "spl_read_only_prop", OpRead, true},
		{[]string{"spl_role"}, "spl_read_only_prop", OpUpdate, false},
		{[]string{"member"}, "x_none_read", OpCreate, true},
		{[]string{"admin"}, "x_none_read", OpRead, false},
		{nil, "x_all_permitted_1", OpDelete, true},
		{[]string{"admin"}, "x_none_permitted_1", OpRead, false},
		{[]string{"member"}, "x_case_insensitive", OpCreate, true},
	}
	for _, tc := range cases {
		if got := r.Allowed(caller(tc.roles...), tc.prop, tc.op); got != tc.want {
			t.Errorf("%v %s %s: got %v, want %v", tc.roles, tc.op, tc.prop, got, tc.want)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	full := "create = @\nread = @\nupdate = @\ndelete = @\n"
	cases := []struct {
		name, text, format, wantErr string
	}{
		{"missing op", "[a]\ncreate = @\nread = @\nupdate = @\n", FormatRoles, `has no "delete"`},
		{"@ and !", "[a]\ncreate = @,!\nread = @\nupdate = @\ndelete = @\n", FormatRoles, "mutually exclusive"},
		{"bad regex", "[a(]\n" + full, FormatRoles, "does not compile"},
		{"lookahead", "[^(?!os_).*]\n" + full, FormatRoles, "lookahead"},
		{"lookbehind", "[(?<=x)y]\n" + full, FormatRoles, "lookbehind"},
		{"backreference", "[(a)\\1]\n" + full, FormatRoles, "backreference"},
		{"verbose flag", "[(?x) a]\n" + full, FormatRoles, "flag"},
		{"open bound", "[a{,3}]\n" + full, FormatRoles, "{,n}"},
		{"two policies", "[a]\ncreate = p1,p2\nread = @\nupdate = @\ndelete = @\n", FormatPolicies, "only one policy"},
		{"duplicate section", "[a]\n" + full + "[a]\n" + full, FormatRoles, "given twice"},
		{"duplicate key", "[a]\ncreate = @\n" + full, FormatRoles, "given twice"},
		{"key outside a section", "create = @\n", FormatRoles, "before any"},
		{"not a key", "[a]\njunk\n", FormatRoles, "want key = value"},
		{"bad format", "[a]\n" + full, "acl", "invalid rule format"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(writeConf(t, tc.text), tc.format, func(*domain.Caller, string) bool { return true })
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("got %v, want an error about %q", err, tc.wantErr)
			}
		})
	}
	if _, err := Load("/nonexistent.conf", FormatRoles, nil); err == nil {
		t.Error("a missing file was accepted")
	}
	if _, err := Load(writeConf(t, "[a]\n"+full), FormatPolicies, nil); err == nil {
		t.Error("the policies format without an enforcer was accepted")
	}
}

func TestINIDetails(t *testing.T) {
	text := "; a comment\n[DEFAULT]\nread = @\n\n[^x_]\nCreate: admin,\n  member\nupdate =\ndelete = !\n" +
		"[os_glance_secret]\ncreate = !\nread = !\nupdate = !\ndelete = !\n[[a-z]+_tag]\n" +
		"create = @\nread = @\nupdate = @\ndelete = @\n"
	r, err := Load(writeConf(t, text), FormatRoles, nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		roles    []string
		prop, op string
		want     bool
	}{
		{nil, "x_a", OpRead, true},                  // from [DEFAULT]
		{[]string{"member"}, "x_a", OpCreate, true}, // continuation line, ":" separator, upper-case key
		{[]string{"admin"}, "x_a", OpUpdate, false}, // empty: no one
		{[]string{"admin"}, "x_a", OpDelete, false}, // !
		{nil, "os_glance_secret", OpRead, true},     // user os_glance sections are dropped
		{nil, "color_tag", OpCreate, true},          // ] inside a section name
		{[]string{"admin"}, "other", OpRead, false}, // no section: no one
	}
	for _, tc := range cases {
		if got := r.Allowed(caller(tc.roles...), tc.prop, tc.op); got != tc.want {
			t.Errorf("%v %s %s: got %v, want %v", tc.roles, tc.op, tc.prop, got, tc.want)
		}
	}
}
