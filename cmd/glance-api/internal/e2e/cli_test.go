package e2e

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/glance-go/glance-go/domain"
)

// cliEnv is the environment of the command-line clients: Debian's Python
// first on PATH, a private HOME (glanceclient caches schemas under
// ~/.glanceclient) and no OS_* settings from the caller's shell.
func cliEnv(home string) []string {
	env := []string{"HOME=" + home, "PATH=/usr/bin:/bin:" + os.Getenv("PATH"), "LC_ALL=C.UTF-8"}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "HOME" || k == "PATH" || k == "LC_ALL" || strings.HasPrefix(k, "OS_") || strings.HasPrefix(k, "PYTHON") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// clients makes sure openstack and glance are installed, running
// scripts/install-clients.sh when one is missing.
func clients(t *testing.T) {
	t.Helper()
	missing := func() bool {
		for _, c := range []string{"/usr/bin/openstack", "/usr/bin/glance"} {
			if _, err := os.Stat(c); err != nil {
				return true
			}
		}
		return false
	}
	if !missing() {
		return
	}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	script := filepath.Join(filepath.Dir(strings.TrimSpace(string(out))), "scripts", "install-clients.sh")
	if out, err := exec.Command("sh", script).CombinedOutput(); err != nil || missing() {
		t.Fatalf("the openstack and glance clients are missing and %s could not install them (%v):\n%s\n"+
			"install Debian's python3-openstackclient and python3-glanceclient", script, err, out)
	}
}

// cli runs a command-line client with stdin on /dev/null (or closed, with
// closedStdin) and returns its standard output; a failure fails t.
type cli struct {
	t    *testing.T
	env  []string
	base []string // the client and its connection options
}

func (c cli) run(args ...string) string {
	c.t.Helper()
	return c.exec(false, args...)
}

// runClosed runs with stdin closed: glance image-create otherwise uploads
// whatever stdin holds, even /dev/null's nothing.
func (c cli) runClosed(args ...string) string {
	c.t.Helper()
	return c.exec(true, args...)
}

func (c cli) exec(closedStdin bool, args ...string) string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	argv := append(slices.Clone(c.base), args...)
	var cmd *exec.Cmd
	if closedStdin {
		cmd = exec.CommandContext(ctx, "/bin/sh", append([]string{"-c", `exec "$@" <&-`, "sh"}, argv...)...)
	} else {
		cmd = exec.CommandContext(ctx, argv[0], argv[1:]...)
	}
	cmd.Env = c.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		c.t.Fatalf("%s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(argv, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// json runs the client with -f json and decodes the output into v.
func (c cli) json(v any, args ...string) {
	c.t.Helper()
	out := c.run(append(args, "-f", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		c.t.Fatalf("%s %s: output is not JSON: %v\n%s", c.base[0], strings.Join(args, " "), err, out)
	}
}

// table parses the two-column "Property | Value" table glance prints.
func table(out string) map[string]string {
	m := map[string]string{}
	last := ""
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "|") {
			continue
		}
		cols := strings.Split(line, "|")
		if len(cols) < 4 {
			continue
		}
		k, v := strings.TrimSpace(cols[1]), strings.TrimSpace(cols[2])
		if k == "" && last != "" {
			m[last] += v // a wrapped value
			continue
		}
		m[k], last = v, k
	}
	return m
}

func TestOpenStackCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: drives the real openstack and glance clients")
	}
	na := noauthServer(t)
	clients(t)
	dir := t.TempDir()
	data := randomBytes(256 << 10)
	md := md5.Sum(data)
	sum := hex.EncodeToString(md[:])
	src := filepath.Join(dir, "image.raw")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	project := domain.NewUUID() // openstack looks a project up in Keystone unless it is a uuid

	// Each client gets its own HOME.
	t.Run("openstack", func(t *testing.T) {
		home := t.TempDir()
		env := cliEnv(home)
		osc := cli{t: t, env: env, base: []string{"openstack", "--os-auth-type", "none", "--os-endpoint", na.URL}}
		name, tag := uniq("osc"), uniq("osc-tag")
		var img struct {
			ID         string         `json:"id"`
			Name       string         `json:"name"`
			Status     string         `json:"status"`
			Size       int64          `json:"size"`
			Checksum   string         `json:"checksum"`
			Visibility string         `json:"visibility"`
			Tags       []string       `json:"tags"`
			Properties map[string]any `json:"properties"`
		}
		osc.json(&img, "image", "create", "--disk-format", "raw", "--container-format", "bare", "--file", src,
			"--property", "k1=v1", "--tag", tag, name)
		if img.ID == "" || img.Name != name || !slices.Contains(img.Tags, tag) || img.Properties["k1"] != "v1" ||
			img.Visibility != "shared" {
			t.Fatalf("image create gave %+v", img)
		}
		na.cleanup(t, img.ID)

		osc.json(&img, "image", "show", img.ID)
		if img.Status != "active" || img.Size != int64(len(data)) || img.Checksum != sum {
			t.Errorf("image show gave status %s, size %d, checksum %s; want active, %d, %s",
				img.Status, img.Size, img.Checksum, len(data), sum)
		}

		var rows []struct {
			ID   string `json:"ID"`
			Name string `json:"Name"`
		}
		osc.json(&rows, "image", "list", "--tag", tag)
		if len(rows) != 1 || rows[0].ID != img.ID || rows[0].Name != name {
			t.Errorf("image list --tag gave %+v, want only %s", rows, img.ID)
		}

		renamed := name + "-renamed"
		osc.run("image", "set", "--property", "k2=v2", "--name", renamed, img.ID)
		osc.run("image", "unset", "--property", "k1", img.ID)
		img.Properties = nil
		osc.json(&img, "image", "show", img.ID)
		if img.Name != renamed || img.Properties["k2"] != "v2" {
			t.Errorf("after image set: name %q, properties %v", img.Name, img.Properties)
		}
		if _, ok := img.Properties["k1"]; ok {
			t.Errorf("after image unset --property k1: properties %v", img.Properties)
		}

		out := filepath.Join(home, "osc.out")
		osc.run("image", "save", "--file", out, img.ID)
		if got, err := os.ReadFile(out); err != nil || !bytes.Equal(got, data) {
			t.Errorf("image save: %d bytes (%v), want the %d uploaded", len(got), err, len(data))
		}

		var m struct {
			ImageID  string `json:"image_id"`
			MemberID string `json:"member_id"`
			Status   string `json:"status"`
		}
		osc.json(&m, "image", "add", "project", img.ID, project)
		if m.ImageID != img.ID || m.MemberID != project || m.Status != "pending" {
			t.Errorf("image add project gave %+v", m)
		}
		// openstack image set --accept needs the caller's own project from
		// Keystone; glance member-update names the member explicitly.
		glance := cli{t: t, env: env, base: glanceBase(na)}
		glance.run("member-update", img.ID, project, "accepted")
		var ms []struct {
			MemberID string `json:"Member ID"`
			Status   string `json:"Status"`
		}
		osc.json(&ms, "image", "member", "list", img.ID)
		if len(ms) != 1 || ms[0].MemberID != project || ms[0].Status != "accepted" {
			t.Errorf("image member list gave %+v, want %s accepted", ms, project)
		}

		osc.run("image", "set", "--deactivate", img.ID)
		osc.json(&img, "image", "show", img.ID)
		if img.Status != "deactivated" {
			t.Errorf("after --deactivate: status %s", img.Status)
		}
		osc.run("image", "set", "--activate", img.ID)
		osc.json(&img, "image", "show", img.ID)
		if img.Status != "active" {
			t.Errorf("after --activate: status %s", img.Status)
		}

		osc.run("image", "delete", img.ID)
		na.do(t, nobody, http.MethodGet, "/v2/images/"+img.ID, nil).want(t, http.StatusNotFound)
	})

	t.Run("glance", func(t *testing.T) {
		home := t.TempDir()
		env := cliEnv(home)
		glance := cli{t: t, env: env, base: glanceBase(na)}
		name, marker := uniq("glance"), uniq("marker")
		img := table(glance.runClosed("image-create", "--name", name, "--disk-format", "raw", "--container-format", "bare",
			"--property", "e2e_marker="+marker))
		id := img["id"]
		if id == "" || img["name"] != name || img["status"] != "queued" || img["e2e_marker"] != marker ||
			img["visibility"] != "shared" {
			t.Fatalf("image-create gave %v", img)
		}
		na.cleanup(t, id)

		glance.run("image-upload", "--file", src, id)
		checkFields(t, na.show(t, nobody, id), map[string]any{"status": "active", "size": float64(len(data)), "checksum": sum})
		out := filepath.Join(home, "glance.out")
		glance.run("image-download", "--file", out, id)
		if got, err := os.ReadFile(out); err != nil || !bytes.Equal(got, data) {
			t.Errorf("image-download: %d bytes (%v), want the %d uploaded", len(got), err, len(data))
		}

		if got := glance.run("image-list", "--property-filter", "e2e_marker="+marker); !strings.Contains(got, id) {
			t.Errorf("image-list --property-filter does not show %s:\n%s", id, got)
		}
		img = table(glance.run("image-update", "--property", "color=blue", "--name", name+"-renamed", id))
		if img["color"] != "blue" || img["name"] != name+"-renamed" {
			t.Errorf("image-update gave %v", img)
		}

		glance.run("image-tag-update", id, "t1")
		checkTags(t, na.show(t, nobody, id), "t1")
		glance.run("image-tag-delete", id, "t1")
		checkTags(t, na.show(t, nobody, id))

		if got := glance.run("member-create", id, project); !strings.Contains(got, project) || !strings.Contains(got, "pending") {
			t.Errorf("member-create output:\n%s", got)
		}
		glance.run("member-update", id, project, "accepted")
		checkFields(t, na.do(t, nobody, http.MethodGet, "/v2/images/"+id+"/members/"+project, nil).want(t, http.StatusOK).object(t),
			map[string]any{"status": "accepted"})
		if got := glance.run("member-list", "--image-id", id); !strings.Contains(got, project) || !strings.Contains(got, "accepted") {
			t.Errorf("member-list output:\n%s", got)
		}
		glance.run("member-delete", id, project)
		na.do(t, nobody, http.MethodGet, "/v2/images/"+id+"/members/"+project, nil).want(t, http.StatusNotFound)

		glance.run("image-deactivate", id)
		checkFields(t, na.show(t, nobody, id), map[string]any{"status": "deactivated"})
		glance.run("image-reactivate", id)
		checkFields(t, na.show(t, nobody, id), map[string]any{"status": "active"})

		glance.run("image-delete", id)
		na.do(t, nobody, http.MethodGet, "/v2/images/"+id, nil).want(t, http.StatusNotFound)
	})
}

// glanceBase is the glance client and the options that reach a server
// without Keystone. Any --os-auth-url (never contacted) keeps glanceclient
// 4.1's schema cache per endpoint, which avoids its "conflicting option
// string: --stores" failure on the second call.
func glanceBase(s *server) []string {
	return []string{"glance", "--os-image-url", s.URL, "--os-auth-token", "x", "--os-auth-url", "http://127.0.0.1:9/unused"}
}
