package e2e

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestDownloadLarge downloads a multi-MiB image whole and in ranges that
// cross the stores' chunk boundaries, byte for byte.
func TestDownloadLarge(t *testing.T) {
	s := suite.srv
	const size = 8<<20 + 3
	data := randomBytes(size)
	id := s.rawImage(t, tenantA, nil)["id"].(string)
	s.upload(t, tenantA, id, data)
	md := md5.Sum(data)
	sum := hex.EncodeToString(md[:])
	file := "/v2/images/" + id + "/file"

	r := s.do(t, tenantA, http.MethodGet, file, nil).want(t, http.StatusOK)
	if !bytes.Equal(r.Body, data) {
		t.Fatalf("downloaded %d bytes that differ from the %d uploaded", len(r.Body), size)
	}
	wantHeaders(t, r, map[string]string{"Content-Length": strconv.Itoa(size), "Content-MD5": sum, "Content-Type": octet})

	cases := []struct {
		name, value string
		status      int
		from, to    int // inclusive, on 206
		msg         string
	}{
		{name: "across a MiB boundary", value: "bytes=1048570-1048585", status: 206, from: 1048570, to: 1048585},
		{name: "one byte in the middle", value: "bytes=4194304-4194304", status: 206, from: 4194304, to: 4194304},
		{name: "suffix", value: "bytes=-100", status: 206, from: size - 100, to: size - 1},
		{name: "suffix longer than the image", value: "bytes=-99999999", status: 206, from: 0, to: size - 1},
		{name: "open end", value: "bytes=8388600-", status: 206, from: 8388600, to: size - 1},
		{name: "end clamped", value: "bytes=8388000-99999999", status: 206, from: 8388000, to: size - 1},
		{name: "start past the end", value: "bytes=9000000-", status: 416,
			msg: fmt.Sprintf("Invalid start position in Range header. Start position MUST be in the inclusive range [0, %d].", size-1)},
		{name: "not a range", value: "bytes=a-b", status: 416, msg: "Invalid Range header."},
		{name: "several ranges", value: "bytes=0-9,20-29", status: 400,
			msg: "Requests with multiple ranges are not supported in Glance. You may make multiple single-range requests instead."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := s.do(t, tenantA, http.MethodGet, file, nil, hdr("Range", tc.value), acceptJSON)
			if tc.status != http.StatusPartialContent {
				r.wantError(t, tc.status, tc.msg)
				return
			}
			r.want(t, http.StatusPartialContent)
			if want := data[tc.from : tc.to+1]; !bytes.Equal(r.Body, want) {
				t.Errorf("got %d bytes, want the %d bytes %d-%d", len(r.Body), len(want), tc.from, tc.to)
			}
			wantHeaders(t, r, map[string]string{
				"Content-Range":  fmt.Sprintf("bytes %d-%d/%d", tc.from, tc.to, size),
				"Content-Length": strconv.Itoa(tc.to - tc.from + 1),
				"Content-MD5":    sum,
			})
		})
	}
}

// TestOpenStackImageSave saves an image with Debian's openstack client, to
// a file and to standard output, and compares the bytes.
func TestOpenStackImageSave(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: drives the real openstack client")
	}
	na := noauthServer(t)
	clients(t)
	data := randomBytes(5<<20 + 17)
	id := na.rawImage(t, nobody, nil)["id"].(string)
	na.upload(t, nobody, id, data)
	home := t.TempDir()
	osc := cli{t: t, env: cliEnv(home), base: []string{"openstack", "--os-auth-type", "none", "--os-endpoint", na.URL}}

	out := filepath.Join(home, "saved")
	osc.run("image", "save", "--file", out, id)
	if got, err := os.ReadFile(out); err != nil || !bytes.Equal(got, data) {
		t.Errorf("image save --file: %d bytes (%v), want the %d uploaded", len(got), err, len(data))
	}
	if got := osc.run("image", "save", id); got != string(data) {
		t.Errorf("image save to stdout: %d bytes, want the %d uploaded", len(got), len(data))
	}
}

// inspectCorpus reads a disk image of the inspector's test corpus.
func inspectCorpus(t *testing.T, name string) []byte {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	b, err := os.ReadFile(filepath.Join(root, "proxies", "inspect", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestUploadFormatChecks uploads images whose content is unsafe or does not
// match their disk_format: 415, and the image is queued again without
// data. Glance 25.1 (Zed) only computes virtual_size on upload.
func TestUploadFormatChecks(t *testing.T) {
	if suite.legacyGlance {
		t.Skip("Glance 25.1 does not check formats on upload (reference §10.4)")
	}
	s := suite.srv
	cases := []struct {
		name, file, disk string
		status           int
		msg              string
		virtualSize      float64
	}{
		{"qcow2 with a backing file", "qcow2-backing.qcow2", "qcow2", 415, "Image failed safety checks", 0},
		{"raw data labelled qcow2", "raw.img", "qcow2", 415, "Image disk_format qcow2 does not match stream data raw", 0},
		{"vmdk whose extent has a path", "vmdk-path-extent.vmdk", "vmdk", 415, "Image failed safety checks", 0},
		{"qcow2", "qcow2-v3.qcow2", "qcow2", 204, "", 4194304},
		{"vmdk", "vmdk-sparse.vmdk", "vmdk", 204, "", 4194304},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := inspectCorpus(t, tc.file)
			id := s.rawImage(t, tenantA, map[string]any{"disk_format": tc.disk})["id"].(string)
			r := s.do(t, tenantA, http.MethodPut, "/v2/images/"+id+"/file", data, hdr("Content-Type", octet), acceptJSON)
			if tc.status != http.StatusNoContent {
				r.wantError(t, tc.status, tc.msg)
				checkFields(t, s.show(t, tenantA, id), map[string]any{"status": "queued", "size": nil, "checksum": nil,
					"virtual_size": nil})
				s.do(t, tenantA, http.MethodGet, "/v2/images/"+id+"/file", nil).want(t, http.StatusNoContent)
				return
			}
			r.want(t, http.StatusNoContent)
			checkFields(t, s.show(t, tenantA, id), map[string]any{"status": "active", "size": float64(len(data)),
				"virtual_size": tc.virtualSize})
		})
	}
}
