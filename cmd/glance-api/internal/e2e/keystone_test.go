package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// keystone is the development Keystone of scripts/keystone-dev.sh, as its
// "env" command describes it.
type keystone struct {
	URL        string // identity endpoint, .../v3
	Password   string // every user's
	Expiration time.Duration

	Admin, AdminProject     string
	Service, ServiceProject string
	MemberA, ProjectA       string
	MemberB, ProjectB       string
	Reader                  string // reader on ProjectA
}

// keystoneOf returns the Keystone the tests may use, skipping t (failing it
// under GLANCE_TEST_STRICT) when there is none.
func keystoneOf(t *testing.T) *keystone {
	t.Helper()
	if testing.Short() {
		t.Skip("slow: drives a real Keystone")
	}
	if suite.bin == "" {
		t.Skip("needs our own binary: starts servers of the keystone flavor")
	}
	env := func(k string) string { return os.Getenv("GLANCE_TEST_KEYSTONE_" + k) }
	ks := &keystone{
		URL: strings.TrimRight(env("URL"), "/"), Password: env("PASSWORD"),
		Admin: env("ADMIN_USER"), AdminProject: env("ADMIN_PROJECT"),
		Service: env("SERVICE_USER"), ServiceProject: env("SERVICE_PROJECT"),
		MemberA: env("MEMBER_A"), ProjectA: env("PROJECT_A"),
		MemberB: env("MEMBER_B"), ProjectB: env("PROJECT_B"),
		Reader: env("READER"),
	}
	if ks.URL == "" {
		strictSkip(t, "no Keystone: run scripts/keystone-dev.sh start and eval \"$(scripts/keystone-dev.sh env)\"")
	}
	secs, err := strconv.Atoi(env("TOKEN_EXPIRATION"))
	if err != nil {
		t.Fatalf("GLANCE_TEST_KEYSTONE_TOKEN_EXPIRATION=%q: %v", env("TOKEN_EXPIRATION"), err)
	}
	ks.Expiration = time.Duration(secs) * time.Second
	resp, err := httpClient.Get(ks.URL)
	if err != nil {
		strictSkip(t, fmt.Sprintf("Keystone %s does not answer (%v): run scripts/keystone-dev.sh start", ks.URL, err))
	}
	resp.Body.Close()
	return ks
}

// issued is a token Keystone issued.
type issued struct {
	ID        string
	ProjectID string
	Expires   time.Time
}

// token logs user in with a token scoped to project.
func (ks *keystone) token(t testing.TB, user, project string) issued {
	t.Helper()
	body := map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"password"}, "password": map[string]any{
			"user": map[string]any{"name": user, "domain": map[string]any{"id": "default"}, "password": ks.Password}}},
		"scope": map[string]any{"project": map[string]any{"name": project, "domain": map[string]any{"id": "default"}}},
	}}
	r := ks.call(t, "", http.MethodPost, "/auth/tokens", body, nil)
	if r.Status != http.StatusCreated {
		t.Fatalf("Keystone login of %s in %s: %d %s", user, project, r.Status, clip(r.Body))
	}
	var out struct {
		Token struct {
			ExpiresAt time.Time `json:"expires_at"`
			Project   struct {
				ID string `json:"id"`
			} `json:"project"`
		} `json:"token"`
	}
	if err := json.Unmarshal(r.Body, &out); err != nil {
		t.Fatal(err)
	}
	return issued{ID: r.Header.Get("X-Subject-Token"), ProjectID: out.Token.Project.ID, Expires: out.Token.ExpiresAt}
}

// call sends one request to Keystone's API with token (if any).
func (ks *keystone) call(t testing.TB, token, method, path string, body any, header map[string]string) *reply {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, ks.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("Keystone %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return &reply{Method: method, Path: path, Status: resp.StatusCode, Header: resp.Header, Body: data}
}

// revoke revokes token in Keystone (DELETE /v3/auth/tokens).
func (ks *keystone) revoke(t testing.TB, token string) {
	t.Helper()
	admin := ks.token(t, ks.Admin, ks.AdminProject)
	if r := ks.call(t, admin.ID, http.MethodDelete, "/auth/tokens", nil, map[string]string{"X-Subject-Token": token}); r.Status != http.StatusNoContent {
		t.Fatalf("revoking a token: %d %s", r.Status, clip(r.Body))
	}
}

// registerImageEndpoint makes url the image service's public endpoint in
// Keystone's catalog, as an operator does for Glance, until t ends.
func (ks *keystone) registerImageEndpoint(t *testing.T, url string) {
	t.Helper()
	admin := ks.token(t, ks.Admin, ks.AdminProject).ID
	var services struct {
		Services []struct {
			ID string `json:"id"`
		} `json:"services"`
	}
	r := ks.call(t, admin, http.MethodGet, "/services?type=image", nil, nil)
	if err := json.Unmarshal(r.Body, &services); err != nil || r.Status != http.StatusOK {
		t.Fatalf("listing image services: %d %s", r.Status, clip(r.Body))
	}
	serviceID := ""
	if len(services.Services) > 0 {
		serviceID = services.Services[0].ID
	} else {
		r = ks.call(t, admin, http.MethodPost, "/services", map[string]any{"service": map[string]any{
			"type": "image", "name": "glance", "description": "OpenStack Image"}}, nil)
		var created struct {
			Service struct {
				ID string `json:"id"`
			} `json:"service"`
		}
		if err := json.Unmarshal(r.Body, &created); err != nil || r.Status != http.StatusCreated {
			t.Fatalf("creating the image service: %d %s", r.Status, clip(r.Body))
		}
		serviceID = created.Service.ID
	}
	// Endpoints left by an earlier run would shadow ours.
	var endpoints struct {
		Endpoints []struct {
			ID string `json:"id"`
		} `json:"endpoints"`
	}
	r = ks.call(t, admin, http.MethodGet, "/endpoints?service_id="+serviceID, nil, nil)
	if err := json.Unmarshal(r.Body, &endpoints); err != nil {
		t.Fatalf("listing image endpoints: %d %s", r.Status, clip(r.Body))
	}
	for _, e := range endpoints.Endpoints {
		ks.call(t, admin, http.MethodDelete, "/endpoints/"+e.ID, nil, nil)
	}
	for _, iface := range []string{"public", "internal"} {
		r = ks.call(t, admin, http.MethodPost, "/endpoints", map[string]any{"endpoint": map[string]any{
			"service_id": serviceID, "interface": iface, "url": url, "region_id": "RegionOne"}}, nil)
		var created struct {
			Endpoint struct {
				ID string `json:"id"`
			} `json:"endpoint"`
		}
		if err := json.Unmarshal(r.Body, &created); err != nil || r.Status != http.StatusCreated {
			t.Fatalf("creating the image endpoint: %d %s", r.Status, clip(r.Body))
		}
		id := created.Endpoint.ID
		t.Cleanup(func() {
			admin := ks.token(t, ks.Admin, ks.AdminProject).ID
			ks.call(t, admin, http.MethodDelete, "/endpoints/"+id, nil, nil)
		})
	}
}

// keystoneServer starts our binary with flavor = keystone against ks;
// extra is appended to its [keystone_authtoken] section.
func keystoneServer(t *testing.T, ks *keystone, extra string) *server {
	t.Helper()
	p := startKeystoneConf(t, ks, extra, "")
	return &server{URL: p.url, Trusted: true}
}

// startKeystoneConf starts our binary with flavor = keystone against ks,
// on a database and image directory of its own: authtoken is appended to
// its [keystone_authtoken] section and sections after that.
func startKeystoneConf(t *testing.T, ks *keystone, authtoken, sections string) *process {
	t.Helper()
	dir := t.TempDir()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return startConf(t, dir, keystoneConf(ks, port, dir, authtoken)+sections, port)
}

// keystoneConf is the glance-api.conf of a keystone flavor server on port,
// keeping its data under dir, whose [keystone_authtoken] section logs in
// as ks's service user and ends with authtoken.
func keystoneConf(ks *keystone, port int, dir, authtoken string) string {
	root := strings.TrimSuffix(ks.URL, "/v3")
	return fmt.Sprintf(`[DEFAULT]
bind_host = 127.0.0.1
bind_port = %d

[database]
connection = sqlite:///%s

[glance_store]
filesystem_store_datadir = %s

[paste_deploy]
flavor = keystone

[keystone_authtoken]
www_authenticate_uri = %s
auth_url = %s
auth_type = password
username = %s
password = %s
project_name = %s
user_domain_name = Default
project_domain_name = Default
interface = public
memcached_servers = 127.0.0.1:11211
%s
`, port, filepath.Join(dir, "g.sqlite"), filepath.Join(dir, "images"), root, root,
		ks.Service, ks.Password, ks.ServiceProject, authtoken)
}

// as is a request option that sends a Keystone token.
func as(tok issued) opt { return hdr("X-Auth-Token", tok.ID) }

// wantKeystone401 checks auth_token's refusal: its JSON body and the
// WWW-Authenticate header naming www_authenticate_uri.
func wantKeystone401(t *testing.T, ks *keystone, r *reply) {
	t.Helper()
	r.want(t, http.StatusUnauthorized)
	if got, want := r.Header.Get("WWW-Authenticate"), `Keystone uri="`+strings.TrimSuffix(ks.URL, "/v3")+`"`; got != want {
		t.Errorf("%s %s: WWW-Authenticate %q, want %q", r.Method, r.Path, got, want)
	}
	var body struct {
		Error struct {
			Code    int    `json:"code"`
			Title   string `json:"title"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil || body.Error.Code != 401 || body.Error.Title != "Unauthorized" ||
		body.Error.Message != "The request you have made requires authentication." {
		t.Errorf("%s %s: 401 body %s (%v)", r.Method, r.Path, clip(r.Body), err)
	}
}

func TestKeystone(t *testing.T) {
	ks := keystoneOf(t)
	srv := keystoneServer(t, ks, "")
	// Tokens live only seconds: each subtest logs in afresh.
	tokenA := func(t *testing.T) issued { return ks.token(t, ks.MemberA, ks.ProjectA) }
	tokenB := func(t *testing.T) issued { return ks.token(t, ks.MemberB, ks.ProjectB) }

	t.Run("versions stay open", func(t *testing.T) {
		srv.do(t, nobody, http.MethodGet, "/versions", nil).want(t, http.StatusOK)
		srv.do(t, nobody, http.MethodGet, "/", nil).want(t, http.StatusMultipleChoices)
	})

	t.Run("no token", func(t *testing.T) {
		wantKeystone401(t, ks, srv.do(t, nobody, http.MethodGet, "/v2/images", nil))
		// The trusted flavor's headers are no token at all.
		wantKeystone401(t, ks, srv.do(t, tenantA, http.MethodGet, "/v2/images", nil))
	})

	t.Run("bad token", func(t *testing.T) {
		memberA := tokenA(t)
		wantKeystone401(t, ks, srv.do(t, nobody, http.MethodGet, "/v2/images", nil, hdr("X-Auth-Token", "not-a-token")))
		wantKeystone401(t, ks, srv.do(t, nobody, http.MethodGet, "/v2/images", nil, hdr("X-Auth-Token", memberA.ID+"x")))
	})

	t.Run("identity comes from the token", func(t *testing.T) {
		memberA := tokenA(t)
		memberB := tokenB(t)
		img := srv.do(t, nobody, http.MethodPost, "/v2/images", map[string]any{"name": uniq("ks"), "disk_format": "raw",
			"container_format": "bare"}, as(memberA)).want(t, http.StatusCreated).object(t)
		id := img["id"].(string)
		t.Cleanup(func() {
			srv.do(t, nobody, http.MethodDelete, "/v2/images/"+id, nil, as(ks.token(t, ks.Admin, ks.AdminProject)))
		})
		if img["owner"] != memberA.ProjectID {
			t.Errorf("owner %v, want the token's project %s", img["owner"], memberA.ProjectID)
		}
		// Headers a client adds to claim another identity are ignored.
		spoof := []opt{as(memberA), hdr("X-Identity-Status", "Confirmed"), hdr("X-Roles", "admin"),
			hdr("X-Project-Id", memberB.ProjectID), hdr("X-Tenant-Id", memberB.ProjectID), hdr("X-User-Id", "someone"),
			hdr("X-Service-Roles", "admin,service"), hdr("X-Is-Admin-Project", "True")}
		srv.do(t, nobody, http.MethodPost, "/v2/images", map[string]any{"name": uniq("ks"), "visibility": "public"},
			spoof...).want(t, http.StatusForbidden)
		spoofed := srv.do(t, nobody, http.MethodPost, "/v2/images", map[string]any{"name": uniq("ks")}, spoof...).
			want(t, http.StatusCreated).object(t)
		sid := spoofed["id"].(string)
		t.Cleanup(func() {
			srv.do(t, nobody, http.MethodDelete, "/v2/images/"+sid, nil, as(ks.token(t, ks.Admin, ks.AdminProject)))
		})
		if spoofed["owner"] != memberA.ProjectID {
			t.Errorf("with spoofed headers: owner %v, want %s", spoofed["owner"], memberA.ProjectID)
		}
		// Project B's member does not see project A's image.
		srv.do(t, nobody, http.MethodGet, "/v2/images/"+id, nil, as(memberB)).want(t, http.StatusNotFound)
	})

	t.Run("a reader cannot upload", func(t *testing.T) {
		memberA := tokenA(t)
		reader := ks.token(t, ks.Reader, ks.ProjectA)
		srv.do(t, nobody, http.MethodPost, "/v2/images", map[string]any{"name": uniq("ks")}, as(reader)).want(t, http.StatusForbidden)
		img := srv.do(t, nobody, http.MethodPost, "/v2/images", map[string]any{"name": uniq("ks"), "disk_format": "raw",
			"container_format": "bare"}, as(memberA)).want(t, http.StatusCreated).object(t)
		id := img["id"].(string)
		t.Cleanup(func() {
			srv.do(t, nobody, http.MethodDelete, "/v2/images/"+id, nil, as(ks.token(t, ks.Admin, ks.AdminProject)))
		})
		srv.do(t, nobody, http.MethodGet, "/v2/images/"+id, nil, as(reader)).want(t, http.StatusOK)
		srv.do(t, nobody, http.MethodPut, "/v2/images/"+id+"/file", []byte("data"), as(reader),
			hdr("Content-Type", "application/octet-stream")).want(t, http.StatusForbidden)
	})

	t.Run("an admin sees every project's images", func(t *testing.T) {
		memberA := tokenA(t)
		memberB := tokenB(t)
		var mine []string
		for _, tok := range []issued{memberA, memberB} {
			img := srv.do(t, nobody, http.MethodPost, "/v2/images", map[string]any{"name": uniq("ks"), "visibility": "private"},
				as(tok)).want(t, http.StatusCreated).object(t)
			id := img["id"].(string)
			mine = append(mine, id)
			t.Cleanup(func() {
				srv.do(t, nobody, http.MethodDelete, "/v2/images/"+id, nil, as(ks.token(t, ks.Admin, ks.AdminProject)))
			})
		}
		admin := ks.token(t, ks.Admin, ks.AdminProject)
		all := ids(t, srv.do(t, nobody, http.MethodGet, "/v2/images?limit=1000", nil, as(admin)).want(t, http.StatusOK).object(t))
		for _, id := range mine {
			if !slices.Contains(all, id) {
				t.Errorf("the admin's list lacks %s: %v", id, all)
			}
		}
		b := ids(t, srv.do(t, nobody, http.MethodGet, "/v2/images?limit=1000", nil, as(memberB)).want(t, http.StatusOK).object(t))
		if slices.Contains(b, mine[0]) || !slices.Contains(b, mine[1]) {
			t.Errorf("project B's list %v: want %s and not %s", b, mine[1], mine[0])
		}
	})

	t.Run("service token", func(t *testing.T) {
		memberA := tokenA(t)
		svc := ks.token(t, ks.Service, ks.ServiceProject)
		srv.do(t, nobody, http.MethodGet, "/v2/images", nil, as(memberA), hdr("X-Service-Token", svc.ID)).want(t, http.StatusOK)
		wantKeystone401(t, ks, srv.do(t, nobody, http.MethodGet, "/v2/images", nil, as(memberA), hdr("X-Service-Token", "bogus")))
	})

	t.Run("a revoked token", func(t *testing.T) {
		// Never shown to the server before it is revoked, so not cached.
		tok := ks.token(t, ks.MemberA, ks.ProjectA)
		ks.revoke(t, tok.ID)
		wantKeystone401(t, ks, srv.do(t, nobody, http.MethodGet, "/v2/images", nil, as(tok)))

		// A token validated before it is revoked is trusted from the
		// cache until token_cache_time ends, as with auth_token; without
		// the cache the revocation counts at once.
		cached := ks.token(t, ks.MemberA, ks.ProjectA)
		srv.do(t, nobody, http.MethodGet, "/v2/images", nil, as(cached)).want(t, http.StatusOK)
		ks.revoke(t, cached.ID)
		srv.do(t, nobody, http.MethodGet, "/v2/images", nil, as(cached)).want(t, http.StatusOK)

		uncached := keystoneServer(t, ks, "token_cache_time = -1")
		tok = ks.token(t, ks.MemberA, ks.ProjectA)
		uncached.do(t, nobody, http.MethodGet, "/v2/images", nil, as(tok)).want(t, http.StatusOK)
		ks.revoke(t, tok.ID)
		wantKeystone401(t, ks, uncached.do(t, nobody, http.MethodGet, "/v2/images", nil, as(tok)))
	})

	t.Run("Keystone out of reach", func(t *testing.T) {
		memberA := tokenA(t)
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		down := *ks
		down.URL = fmt.Sprintf("http://127.0.0.1:%d/v3", port) // nothing listens there
		s := keystoneServer(t, &down, "http_request_max_retries = 0")
		r := s.do(t, nobody, http.MethodGet, "/v2/images", nil, as(memberA)).want(t, http.StatusServiceUnavailable)
		if !strings.Contains(string(r.Body), "The Keystone service is temporarily unavailable.") {
			t.Errorf("503 body: %s", clip(r.Body))
		}
		if r.Header.Get("WWW-Authenticate") != "" {
			t.Errorf("503 with WWW-Authenticate %q", r.Header.Get("WWW-Authenticate"))
		}
	})

	t.Run("expiry", func(t *testing.T) {
		t.Parallel()
		used := ks.token(t, ks.MemberA, ks.ProjectA)
		unused := ks.token(t, ks.MemberA, ks.ProjectA)
		if left := time.Until(used.Expires); left > ks.Expiration+5*time.Second || left <= 0 {
			t.Fatalf("the token expires in %v: want Keystone's [token] expiration = %v", left, ks.Expiration)
		}
		srv.do(t, nobody, http.MethodGet, "/v2/images", nil, as(used)).want(t, http.StatusOK)
		// Past expires_at: the cached token and the never-seen one alike.
		time.Sleep(time.Until(unused.Expires) + 1500*time.Millisecond)
		wantKeystone401(t, ks, srv.do(t, nobody, http.MethodGet, "/v2/images", nil, as(used)))
		wantKeystone401(t, ks, srv.do(t, nobody, http.MethodGet, "/v2/images", nil, as(unused)))
	})

	t.Run("openstack CLI", func(t *testing.T) {
		t.Parallel()
		keystoneCLI(t, ks, srv)
	})
}

// osCLI runs Debian's openstack client as one Keystone user.
type osCLI struct {
	t    *testing.T
	env  []string
	base []string
}

func newOSCLI(t *testing.T, ks *keystone, user, project string) osCLI {
	return osCLI{t: t, env: cliEnv(t.TempDir()), base: []string{"/usr/bin/openstack",
		"--os-auth-url", ks.URL, "--os-identity-api-version", "3",
		"--os-username", user, "--os-password", ks.Password, "--os-project-name", project,
		"--os-user-domain-name", "Default", "--os-project-domain-name", "Default",
		"--os-region-name", "RegionOne", "--os-interface", "public", "--os-image-api-version", "2"}}
}

// try runs the client and returns its output and error.
func (c osCLI) try(args ...string) (string, string, error) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	argv := append(slices.Clone(c.base), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = c.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

func (c osCLI) run(args ...string) string {
	c.t.Helper()
	out, errOut, err := c.try(args...)
	if err != nil {
		c.t.Fatalf("openstack %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

func (c osCLI) json(v any, args ...string) {
	c.t.Helper()
	out := c.run(append(args, "-f", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		c.t.Fatalf("openstack %s: output is not JSON: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// keystoneCLI drives the openstack client with password authentication
// against srv, registered as the image endpoint of Keystone's catalog.
func keystoneCLI(t *testing.T, ks *keystone, srv *server) {
	if _, err := os.Stat("/usr/bin/openstack"); err != nil {
		strictSkip(t, "Debian's openstack client is missing: install python3-openstackclient (scripts/install-clients.sh)")
	}
	ks.registerImageEndpoint(t, srv.URL)
	dir := t.TempDir()
	data := randomBytes(300 << 10)
	src := filepath.Join(dir, "image.raw")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	a := newOSCLI(t, ks, ks.MemberA, ks.ProjectA)
	b := newOSCLI(t, ks, ks.MemberB, ks.ProjectB)
	reader := newOSCLI(t, ks, ks.Reader, ks.ProjectA)
	projectA := ks.token(t, ks.MemberA, ks.ProjectA).ProjectID
	projectB := ks.token(t, ks.MemberB, ks.ProjectB).ProjectID

	var img struct {
		ID     string `json:"id"`
		Name   string `json:"name"`
		Owner  string `json:"owner"`
		Status string `json:"status"`
		Size   int64  `json:"size"`
	}
	name := uniq("ks-cli")
	a.json(&img, "image", "create", "--disk-format", "raw", "--container-format", "bare", "--file", src, name)
	if img.ID == "" || img.Name != name {
		t.Fatalf("image create gave %+v", img)
	}
	id := img.ID
	t.Cleanup(func() {
		srv.do(t, nobody, http.MethodDelete, "/v2/images/"+id, nil, as(ks.token(t, ks.Admin, ks.AdminProject)))
	})
	a.json(&img, "image", "show", id)
	if img.Status != "active" || img.Size != int64(len(data)) || img.Owner != projectA {
		t.Errorf("image show gave %+v; want active, %d bytes, owner %s", img, len(data), projectA)
	}
	out := filepath.Join(dir, "a.out")
	a.run("image", "save", "--file", out, id)
	if got, err := os.ReadFile(out); err != nil || !bytes.Equal(got, data) {
		t.Errorf("image save: %d bytes (%v), want the %d uploaded", len(got), err, len(data))
	}

	// Project B cannot see it until it is shared and accepted.
	if _, errOut, err := b.try("image", "show", id); err == nil {
		t.Errorf("project B sees project A's image before it is shared")
	} else if !strings.Contains(errOut, "No Image found") && !strings.Contains(errOut, "404") {
		t.Errorf("project B's image show: %s", errOut)
	}
	var m struct {
		MemberID string `json:"member_id"`
		Status   string `json:"status"`
	}
	a.json(&m, "image", "add", "project", id, projectB)
	if m.MemberID != projectB || m.Status != "pending" {
		t.Errorf("image add project gave %+v", m)
	}
	// --accept takes the member from B's own token.
	b.run("image", "set", "--accept", id)
	var ms []struct {
		MemberID string `json:"Member ID"`
		Status   string `json:"Status"`
	}
	a.json(&ms, "image", "member", "list", id)
	if len(ms) != 1 || ms[0].MemberID != projectB || ms[0].Status != "accepted" {
		t.Errorf("image member list gave %+v, want %s accepted", ms, projectB)
	}
	var rows []struct {
		ID string `json:"ID"`
	}
	b.json(&rows, "image", "list")
	if !slices.ContainsFunc(rows, func(r struct {
		ID string `json:"ID"`
	}) bool {
		return r.ID == id
	}) {
		t.Errorf("project B's image list lacks the accepted image: %+v", rows)
	}
	out = filepath.Join(dir, "b.out")
	b.run("image", "save", "--file", out, id)
	if got, err := os.ReadFile(out); err != nil || !bytes.Equal(got, data) {
		t.Errorf("image save by the member project: %d bytes (%v), want the %d uploaded", len(got), err, len(data))
	}
	// A member project may not delete the owner's image.
	if _, errOut, err := b.try("image", "delete", id); err == nil {
		t.Errorf("project B deleted project A's image")
	} else if !strings.Contains(errOut, "403") {
		t.Errorf("project B's image delete failed, but not with 403: %s", errOut)
	}

	// The reader may look but not upload.
	if _, errOut, err := reader.try("image", "create", "--disk-format", "raw", "--container-format", "bare",
		"--file", src, uniq("ks-reader")); err == nil {
		t.Errorf("a reader created an image")
	} else if !strings.Contains(errOut, "403") {
		t.Errorf("the reader's image create failed, but not with 403: %s", errOut)
	}
	reader.json(&img, "image", "show", id)

	a.run("image", "delete", id)
	srv.do(t, nobody, http.MethodGet, "/v2/images/"+id, nil, as(ks.token(t, ks.MemberA, ks.ProjectA))).want(t, http.StatusNotFound)
}

// TestKeystoneConfigRefused checks that a [keystone_authtoken] our server
// cannot log in with stops it at start, saying why.
func TestKeystoneConfigRefused(t *testing.T) {
	if suite.bin == "" {
		t.Skip("needs our own binary")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "glance-api.conf")
	text := fmt.Sprintf(`[DEFAULT]
bind_host = 127.0.0.1
bind_port = 9
[database]
connection = sqlite:///%s
[paste_deploy]
flavor = keystone+cachemanagement
[keystone_authtoken]
auth_url = http://127.0.0.1:5000
auth_type = v3applicationcredential
username = glance
password = x
project_name = service
`, filepath.Join(dir, "g.sqlite"))
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, suite.bin, "--config-file", conf).CombinedOutput()
	if err == nil {
		t.Fatalf("the server started with auth_type = v3applicationcredential:\n%s", out)
	}
	if want := `[keystone_authtoken] auth_type = "v3applicationcredential": not supported`; !strings.Contains(string(out), want) {
		t.Errorf("start-up error:\n%s\nwant it to contain %s", out, want)
	}
}
