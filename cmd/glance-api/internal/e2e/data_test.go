package e2e

import (
	"bytes"
	"crypto/md5"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"testing"
)

const octet = "application/octet-stream"

func TestUploadDownload(t *testing.T) {
	s := suite.srv
	cases := []struct {
		name string
		size int
		body func([]byte) any
	}{
		{"sized", 300 << 10, func(b []byte) any { return b }},
		{"chunked", 300 << 10, func(b []byte) any { return chunked{bytes.NewReader(b)} }},
		{"one byte", 1, func(b []byte) any { return b }},
		{"empty", 0, func(b []byte) any { return b }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := randomBytes(tc.size)
			id := s.rawImage(t, tenantA, nil)["id"].(string)
			file := "/v2/images/" + id + "/file"

			r := s.do(t, tenantA, http.MethodGet, file, nil).want(t, http.StatusNoContent)
			if len(r.Body) != 0 {
				t.Errorf("download before upload: %d bytes, want none", len(r.Body))
			}

			r = s.do(t, tenantA, http.MethodPut, file, tc.body(data), hdr("Content-Type", octet))
			r.want(t, http.StatusNoContent)

			md := md5.Sum(data)
			sha := sha512.Sum512(data)
			img := s.show(t, tenantA, id)
			checkFields(t, img, map[string]any{
				"status": "active", "size": float64(tc.size),
				"checksum": hex.EncodeToString(md[:]), "os_hash_algo": "sha512", "os_hash_value": hex.EncodeToString(sha[:]),
			})
			if tc.size > 0 && img["virtual_size"] != float64(tc.size) {
				t.Errorf("virtual_size = %v, want %d for raw data", img["virtual_size"], tc.size)
			}

			r = s.do(t, tenantA, http.MethodGet, file, nil).want(t, http.StatusOK)
			if !bytes.Equal(r.Body, data) {
				t.Errorf("downloaded %d bytes differ from the %d uploaded", len(r.Body), len(data))
			}
			wantHeaders(t, r, map[string]string{
				"Content-Type":   octet,
				"Content-MD5":    hex.EncodeToString(md[:]),
				"Content-Length": strconv.Itoa(tc.size),
			})

			s.do(t, tenantA, http.MethodPut, file, []byte("again"), hdr("Content-Type", octet), acceptJSON).
				wantError(t, http.StatusConflict, "Image status transition from active to saving is not allowed")
			s.patch(t, tenantA, id, op{Op: "replace", Path: "/disk_format", Value: "qcow2"}).
				want(t, http.StatusForbidden)
		})
	}

	refused := []struct {
		name      string
		noFormats bool // the image has no disk_format and container_format
		ctype     string
		status    int
		msg       string
	}{
		{"json content type", false, "application/json", http.StatusUnsupportedMediaType, ""},
		{"no content type", false, "", http.StatusUnsupportedMediaType, ""},
		{"formats unset", true, octet, http.StatusBadRequest,
			"Properties disk_format, container_format must be set prior to saving data."},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			body := map[string]any{"name": uniq("refused")}
			if !tc.noFormats {
				body["disk_format"], body["container_format"] = "raw", "bare"
			}
			id := s.createImage(t, tenantA, body)["id"].(string)
			s.do(t, tenantA, http.MethodPut, "/v2/images/"+id+"/file", []byte("data"), hdr("Content-Type", tc.ctype), acceptJSON).
				wantError(t, tc.status, tc.msg)
			checkFields(t, s.show(t, tenantA, id), map[string]any{"status": "queued", "size": nil, "checksum": nil})
		})
	}
	t.Run("unknown image", func(t *testing.T) {
		s.do(t, tenantA, http.MethodPut, "/v2/images/00000000-0000-4000-8000-000000000000/file", []byte("x"),
			hdr("Content-Type", octet)).want(t, http.StatusNotFound)
	})
}

// wantHeaders checks response headers by exact value.
func wantHeaders(t testing.TB, r *reply, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got := r.Header.Get(k); got != v {
			t.Errorf("%s %s: header %s = %q, want %q", r.Method, r.Path, k, got, v)
		}
	}
}

func TestRangeDownload(t *testing.T) {
	s := suite.srv
	const size = 1024
	data := randomBytes(size)
	id := s.rawImage(t, tenantA, nil)["id"].(string)
	s.upload(t, tenantA, id, data)
	md := md5.Sum(data)
	sum := hex.EncodeToString(md[:])
	file := "/v2/images/" + id + "/file"

	cases := []struct {
		name, header, value string
		status              int
		from, to            int // the bytes expected on 206, inclusive
		msg                 string
	}{
		{name: "first bytes", header: "Range", value: "bytes=0-9", status: http.StatusPartialContent, from: 0, to: 9},
		{name: "middle", header: "Range", value: "bytes=100-199", status: http.StatusPartialContent, from: 100, to: 199},
		{name: "open-ended", header: "Range", value: "bytes=1020-", status: http.StatusPartialContent, from: 1020, to: 1023},
		{name: "suffix", header: "Range", value: "bytes=-4", status: http.StatusPartialContent, from: 1020, to: 1023},
		{name: "end clamped", header: "Range", value: "bytes=5-5000", status: http.StatusPartialContent, from: 5, to: 1023},
		{name: "last byte", header: "Range", value: "bytes=1023-1023", status: http.StatusPartialContent, from: 1023, to: 1023},
		{name: "legacy Content-Range request header", header: "Content-Range", value: "bytes 0-9/1024",
			status: http.StatusPartialContent, from: 0, to: 9},
		{name: "start beyond the end", header: "Range", value: "bytes=5000-6000", status: http.StatusRequestedRangeNotSatisfiable,
			msg: "Invalid start position in Range header. Start position MUST be in the inclusive range [0, 1023]."},
		{name: "start at the size", header: "Range", value: "bytes=1024-", status: http.StatusRequestedRangeNotSatisfiable},
		{name: "unparsable", header: "Range", value: "bytes=x-y", status: http.StatusRequestedRangeNotSatisfiable,
			msg: "Invalid Range header."},
		{name: "multi-range", header: "Range", value: "bytes=0-1,4-5", status: http.StatusBadRequest,
			msg: "Requests with multiple ranges are not supported in Glance."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := s.do(t, tenantA, http.MethodGet, file, nil, hdr(tc.header, tc.value), acceptJSON)
			if tc.status != http.StatusPartialContent {
				r.wantError(t, tc.status, tc.msg)
				return
			}
			r.want(t, tc.status)
			if want := data[tc.from : tc.to+1]; !bytes.Equal(r.Body, want) {
				t.Errorf("got %d bytes, want bytes %d-%d", len(r.Body), tc.from, tc.to)
			}
			// Content-MD5 is the checksum of the whole image, even on 206.
			wantHeaders(t, r, map[string]string{
				"Content-Range":  fmt.Sprintf("bytes %d-%d/%d", tc.from, tc.to, size),
				"Content-Length": strconv.Itoa(tc.to - tc.from + 1),
				"Content-Type":   octet,
				"Content-MD5":    sum,
			})
		})
	}
}

func TestDeactivateReactivate(t *testing.T) {
	needTrusted(t)
	s := suite.srv
	data := randomBytes(2048)
	id := s.rawImage(t, tenantA, nil)["id"].(string)
	base := "/v2/images/" + id
	s.do(t, tenantA, http.MethodPost, base+"/actions/deactivate", nil, acceptJSON).
		wantError(t, http.StatusForbidden, "Not allowed to deactivate image in status 'queued'")
	s.do(t, tenantA, http.MethodPost, base+"/actions/reactivate", nil, acceptJSON).
		wantError(t, http.StatusForbidden, "Not allowed to reactivate image in status 'queued'")
	s.upload(t, tenantA, id, data)

	steps := []struct {
		name   string
		as     *caller
		method string
		path   string
		body   any
		status int
		msg    string
		after  string // the image's status afterwards
	}{
		{"owner deactivates", tenantA, http.MethodPost, "/actions/deactivate", nil, http.StatusNoContent, "", "deactivated"},
		{"owner may not download", tenantA, http.MethodGet, "/file", nil, http.StatusForbidden,
			"The requested image has been deactivated. Image data download is forbidden.", "deactivated"},
		{"admin downloads", admin, http.MethodGet, "/file", nil, http.StatusOK, "", "deactivated"},
		{"deactivate again is a no-op", admin, http.MethodPost, "/actions/deactivate", nil, http.StatusNoContent, "", "deactivated"},
		{"body refused", tenantA, http.MethodPost, "/actions/reactivate", map[string]any{}, http.StatusBadRequest,
			"A body is not expected with this request.", "deactivated"},
		{"other project", tenantB, http.MethodPost, "/actions/reactivate", nil, http.StatusNotFound, "", "deactivated"},
		{"owner reactivates", tenantA, http.MethodPost, "/actions/reactivate", nil, http.StatusNoContent, "", "active"},
		{"reactivate again is a no-op", tenantA, http.MethodPost, "/actions/reactivate", nil, http.StatusNoContent, "", "active"},
		{"owner downloads", tenantA, http.MethodGet, "/file", nil, http.StatusOK, "", "active"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			r := s.do(t, st.as, st.method, base+st.path, st.body, acceptJSON)
			r.wantError(t, st.status, st.msg)
			if st.method == http.MethodGet && st.status == http.StatusOK && !bytes.Equal(r.Body, data) {
				t.Errorf("downloaded %d bytes differ from the uploaded ones", len(r.Body))
			}
			checkFields(t, s.show(t, admin, id), map[string]any{"status": st.after})
		})
	}
}

// TestReaderPersona checks what a caller holding only the reader role in
// the owning project may do. The newest Glance's secure-RBAC defaults (our
// server) refuse it data access; Zed's legacy defaults let any project
// user download and upload (legacyGlance).
func TestReaderPersona(t *testing.T) {
	needTrusted(t)
	s := suite.srv
	data := randomBytes(100)
	active := s.rawImage(t, tenantA, nil)["id"].(string)
	s.upload(t, tenantA, active, data)
	queued := s.rawImage(t, tenantA, nil)["id"].(string)

	forbidden := http.StatusForbidden
	download, upload := forbidden, forbidden
	if suite.legacyGlance {
		download, upload = http.StatusOK, http.StatusNoContent
	}
	cases := []struct {
		name   string
		method string
		path   string
		body   any
		status int
	}{
		{"show", http.MethodGet, "/v2/images/" + active, nil, http.StatusOK},
		{"list", http.MethodGet, "/v2/images?limit=1", nil, http.StatusOK},
		{"download", http.MethodGet, "/v2/images/" + active + "/file", nil, download},
		{"upload", http.MethodPut, "/v2/images/" + queued + "/file", []byte("x"), upload},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s.do(t, readerA, tc.method, tc.path, tc.body, hdr("Content-Type", octet)).want(t, tc.status)
		})
	}
}
