package e2e

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"html/template"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// browserAuthHeaders are the headers the page sends with every API call:
// the Keystone token alone, as a dashboard in the browser sends it. The
// server takes the identity from Keystone, so nothing else is needed.
func browserAuthHeaders(tok issued) map[string]string {
	return map[string]string{"X-Auth-Token": tok.ID}
}

// browserPage creates an image on the API, uploads data fetched from its
// own origin, reads it back and posts what happened to its origin's
// /result. Every API call carries custom headers, so the browser sends a
// preflight first.
var browserPage = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>glance-go from another origin</title></head>
<body><script>
const api = {{.API}};
const auth = {{.Auth}};
async function run() {
  const r = {stage: "create"};
  try {
    let resp = await fetch(api + "/v2/images", {method: "POST",
      headers: Object.assign({"Content-Type": "application/json"}, auth),
      body: JSON.stringify({name: {{.Name}}, disk_format: "raw", container_format: "bare"})});
    r.createStatus = resp.status;
    r.requestID = resp.headers.get("X-OpenStack-Request-ID");
    const img = await resp.json();
    r.id = img.id;
    r.stage = "data";
    const data = new Uint8Array(await (await fetch("/data.bin")).arrayBuffer());
    r.stage = "upload";
    resp = await fetch(api + "/v2/images/" + img.id + "/file", {method: "PUT",
      headers: Object.assign({"Content-Type": "application/octet-stream"}, auth), body: data});
    r.uploadStatus = resp.status;
    r.stage = "download";
    resp = await fetch(api + "/v2/images/" + img.id + "/file", {headers: auth});
    r.downloadStatus = resp.status;
    const back = new Uint8Array(await resp.arrayBuffer());
    r.same = back.length === data.length && back.every((b, i) => b === data[i]);
    r.stage = "done";
  } catch (e) {
    r.error = String(e);
  }
  await fetch("/result", {method: "POST", body: JSON.stringify(r)});
}
run();
</script></body></html>
`))

// pageResult is what the page reports.
type pageResult struct {
	Stage          string `json:"stage"`
	Error          string `json:"error"`
	ID             string `json:"id"`
	RequestID      string `json:"requestID"`
	CreateStatus   int    `json:"createStatus"`
	UploadStatus   int    `json:"uploadStatus"`
	DownloadStatus int    `json:"downloadStatus"`
	Same           bool   `json:"same"`
}

// originServer serves the page and its data from a loopback port of its
// own, a different origin from the API's, and collects the page's result.
// Its page fields are set before a browser opens it.
type originServer struct {
	URL    string
	result chan pageResult

	api, name string
	auth      map[string]string
	data      []byte
}

func startOrigin(t *testing.T) *originServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &originServer{URL: "http://" + ln.Addr().String(), result: make(chan pageResult, 1)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := browserPage.Execute(w, map[string]any{"API": o.api, "Auth": o.auth, "Name": o.name}); err != nil {
			t.Errorf("page: %v", err)
		}
	})
	mux.HandleFunc("GET /data.bin", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(o.data)
	})
	mux.HandleFunc("POST /result", func(w http.ResponseWriter, r *http.Request) {
		var res pageResult
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &res); err != nil {
			res.Error = "bad result: " + string(b)
		}
		select {
		case o.result <- res:
		default:
		}
	})
	mux.HandleFunc("GET /favicon.ico", http.NotFound)
	hs := &http.Server{Handler: mux}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return o
}

// chromium returns Debian's chromium, or skips the test.
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p
		}
	}
	strictSkip(t, "needs Debian's chromium: run scripts/install-chromium.sh")
	return ""
}

// runPage opens url in headless Chromium and returns what the page
// reported, ending the browser then.
func runPage(t *testing.T, bin string, o *originServer) pageResult {
	t.Helper()
	profile := t.TempDir()
	logPath := filepath.Join(profile, "chromium.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--user-data-dir="+profile, "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--disable-extensions", "--disable-default-apps",
		o.URL+"/")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	select {
	case res := <-o.result:
		return res
	case err := <-exited:
		exited <- err
		t.Fatalf("chromium exited (%v) before the page reported; its output:\n%s", err, tail(logPath))
	case <-ctx.Done():
		t.Fatalf("the page did not report within 90s; chromium's output:\n%s", tail(logPath))
	}
	return pageResult{}
}

// TestBrowserCORS drives the API from a web page in headless Chromium: a
// page from the allowed origin creates an image, uploads its data and
// reads it back through CORS, preflights included, with a token of a
// member of project A that Keystone issued; the same page from an origin
// the server does not allow is refused by the browser. The server is of
// the keystone flavor, with the [cors] defaults but for allowed_origin.
func TestBrowserCORS(t *testing.T) {
	bin := chromium(t)
	ks := keystoneOf(t)
	data := randomBytes(256 << 10)

	allowed := startOrigin(t)
	p := startKeystoneConf(t, ks, "", "\n[cors]\nallowed_origin = "+allowed.URL+"\n")
	srv := &server{URL: p.url, Trusted: true}
	admin := func() opt { return as(ks.token(t, ks.Admin, ks.AdminProject)) }
	name := uniq("browser")
	// Tokens live only seconds: this one is issued just before the page runs.
	tok := ks.token(t, ks.MemberA, ks.ProjectA)
	allowed.api, allowed.name, allowed.auth, allowed.data = p.url, name, browserAuthHeaders(tok), data

	res := runPage(t, bin, allowed)
	if res.ID != "" {
		t.Cleanup(func() { srv.do(t, nobody, http.MethodDelete, "/v2/images/"+res.ID, nil, admin()) })
	}
	if res.Stage != "done" || res.Error != "" || res.CreateStatus != 201 || res.UploadStatus != 204 ||
		res.DownloadStatus != 200 || !res.Same {
		t.Fatalf("the page from the allowed origin: %+v", res)
	}
	if !strings.HasPrefix(res.RequestID, "req-") {
		t.Errorf("the page could not read X-OpenStack-Request-ID (expose_headers): %q", res.RequestID)
	}
	if time.Until(tok.Expires) < 2*time.Second {
		// The page outlived the token's few seconds; a fresh one of the
		// same user checks the same thing.
		t.Logf("the page's token expires at %v: checking with a fresh one", tok.Expires)
		tok = ks.token(t, ks.MemberA, ks.ProjectA)
	}
	img := srv.do(t, nobody, http.MethodGet, "/v2/images/"+res.ID, nil, as(tok)).want(t, http.StatusOK).object(t)
	sum := md5.Sum(data)
	if img["status"] != "active" || img["checksum"] != hex.EncodeToString(sum[:]) || img["owner"] != tok.ProjectID || img["name"] != name {
		t.Errorf("the image the page made: status %v, checksum %v, owner %v (want project %s's id %s), name %v",
			img["status"], img["checksum"], img["owner"], ks.ProjectA, tok.ProjectID, img["name"])
	}

	// Another origin: the preflight gets no CORS headers, the fetch fails
	// and nothing is created.
	otherName := uniq("browser-refused")
	other := startOrigin(t)
	other.api, other.name, other.auth, other.data = p.url, otherName, browserAuthHeaders(ks.token(t, ks.MemberA, ks.ProjectA)), data
	res = runPage(t, bin, other)
	t.Logf("the page from another origin reported: %+v", res)
	if res.Stage != "create" || res.Error == "" || res.ID != "" {
		t.Errorf("the page from another origin: %+v, want its first fetch to fail", res)
	}
	list := srv.do(t, nobody, http.MethodGet, "/v2/images?name="+url.QueryEscape(otherName), nil, admin()).want(t, http.StatusOK).object(t)
	if n := len(ids(t, list)); n != 0 {
		t.Errorf("the refused page created %d images", n)
	}
}
