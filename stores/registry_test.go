package stores_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/glance-go/glance-go/stores"
)

func TestOptions(t *testing.T) {
	o := &stores.Options{
		Section:  "fast",
		Values:   map[string]string{"s": "text", "i": " 42 ", "b": "On", "empty": "", "d": "http:10.0.0.1:3128, https : p:1", "extra": "x"},
		Multi:    map[string][]string{"m": {"/a:1", "/b"}},
		Defaults: map[string]string{"def": "from defaults"},
	}
	if got := o.String("s", "x"); got != "text" {
		t.Errorf("String = %q", got)
	}
	if got := o.String("def", "x"); got != "from defaults" {
		t.Errorf("String(def) = %q", got)
	}
	if got := o.String("unset", "fallback"); got != "fallback" {
		t.Errorf("String(unset) = %q", got)
	}
	if got := o.Int("i", 0); got != 42 {
		t.Errorf("Int = %d", got)
	}
	if got := o.Int("empty", 7); got != 7 {
		t.Errorf("Int(empty) = %d", got)
	}
	if got := o.Bool("b", false); !got {
		t.Error("Bool(On) = false")
	}
	if got := o.Dict("d"); len(got) != 2 || got["http"] != "10.0.0.1:3128" || got["https"] != "p:1" {
		t.Errorf("Dict = %q", got)
	}
	if got := o.Strings("m"); !slices.Equal(got, []string{"/a:1", "/b"}) {
		t.Errorf("Strings = %q", got)
	}
	if got := o.Strings("s"); !slices.Equal(got, []string{"text"}) {
		t.Errorf("Strings(single) = %q", got)
	}
	if !o.Has("s") || !o.Has("m") || o.Has("def") || o.Has("unset") {
		t.Error("Has is wrong")
	}
	if o.Err() != nil {
		t.Fatalf("Err = %v", o.Err())
	}
	if got := o.Unused(); !slices.Equal(got, []string{"extra"}) {
		t.Errorf("Unused = %q", got)
	}
	// The first bad value is the one reported.
	o.Int("s", 0)
	o.Bool("s", false)
	if err := o.Err(); err == nil || err.Error() != `[fast] s = "text": not an integer` {
		t.Errorf("Err = %v", err)
	}
}

func TestOpenUnknownType(t *testing.T) {
	_, err := stores.Open("x", "tape", nil)
	if err == nil || !strings.Contains(err.Error(), `store type "tape" is not available in this build`) {
		t.Errorf("Open(tape) = %v", err)
	}
}
