package main

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// TestPlainServersServeTheFile checks that both plain servers of the
// yardstick send the whole file, byte for byte.
func TestPlainServersServeTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	want, err := io.ReadAll(NewStream(3, 3<<20+7)) // more than the copy's buffer
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, want, 0o644); err != nil {
		t.Fatal(err)
	}
	url, stop, err := startFileServer(path)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	for _, u := range []string{url, url + copySuffix} {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(want)) || !bytes.Equal(got, want) {
			t.Errorf("%s: status %d, Content-Length %d, %d bytes (%v); want the file's %d bytes",
				u, resp.StatusCode, resp.ContentLength, len(got), err, len(want))
		}
	}
}

// TestRateList prints rates as the progress lines show them.
func TestRateList(t *testing.T) {
	if got, want := rateList([]float64{1.4, 2500.6, 3}), "1 2501 3"; got != want {
		t.Errorf("rateList = %q, want %q", got, want)
	}
}
