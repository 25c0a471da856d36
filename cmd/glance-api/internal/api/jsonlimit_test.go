package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestReadJSONBounds: a body nested past maxJSONDepth, or with more than
// maxJSONValues values, is a 400 naming the bound; a wide object within
// them keeps its order and its last value of a repeated key.
func TestReadJSONBounds(t *testing.T) {
	read := func(body string) (any, error) {
		r := httptest.NewRequest(http.MethodPost, "/v2/images", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		return readJSON(r)
	}
	for name, tc := range map[string]struct {
		body string
		want string
	}{
		"deep arrays":  {strings.Repeat("[", 4<<20), "nests deeper than 32 levels"},
		"deep objects": {strings.Repeat(`{"a":`, 100) + "1" + strings.Repeat("}", 100), "nests deeper than 32 levels"},
		"many values":  {"[" + strings.Repeat("0,", maxJSONValues) + "0]", "more than 100000 values"},
	} {
		_, err := read(tc.body)
		var he *httpError
		if !errors.As(err, &he) || he.status != http.StatusBadRequest || !strings.Contains(he.explanation, tc.want) {
			t.Errorf("%s: %v, want a 400 saying %q", name, err, tc.want)
		}
	}
	var b strings.Builder
	b.WriteString("{")
	for i := range 20000 {
		fmt.Fprintf(&b, `"k%d": %d, `, i, i)
	}
	b.WriteString(`"k5": "last"}`)
	v, err := read(b.String())
	if err != nil {
		t.Fatal(err)
	}
	o := v.(object)
	if len(o) != 20000 || o[0].key != "k0" || o[19999].key != "k19999" {
		t.Fatalf("%d keys, first %q, last %q", len(o), o[0].key, o[len(o)-1].key)
	}
	if got, _ := o.get("k5"); got != "last" {
		t.Errorf("k5 = %v, want the later value", got)
	}
}
