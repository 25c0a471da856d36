package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/glance-go/glance-go/domain"
)

func TestParseINI(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string]map[string]string
		wantErr string
	}{
		{
			name: "equals and colon",
			in:   "[DEFAULT]\na = 1\nb: 2\nc=x:y\nd: u=v\n",
			want: map[string]map[string]string{"DEFAULT": {"a": "1", "b": "2", "c": "x:y", "d": "u=v"}},
		},
		{
			name: "comments and inline hash",
			in:   "# top\n[DEFAULT]\n; semi\na = pa#ss ; not a comment\n\n  # indented comment between options\nb=\n",
			want: map[string]map[string]string{"DEFAULT": {"a": "pa#ss ; not a comment", "b": ""}},
		},
		{
			name: "quotes stripped once",
			in:   "[DEFAULT]\na = \"quoted value\"\nb = 'x'\nc = \"mis'\nd = \"\"x\"\"\n",
			want: map[string]map[string]string{"DEFAULT": {"a": "quoted value", "b": "x", "c": "\"mis'", "d": "\"x\""}},
		},
		{
			name: "continuation lines until blank line",
			in:   "[DEFAULT]\na = first\n  second\n\tthird\n\nb = 2\n",
			want: map[string]map[string]string{"DEFAULT": {"a": "first\nsecond\nthird", "b": "2"}},
		},
		{
			name: "last assignment in a file wins",
			in:   "[DEFAULT]\na = 1\na = 2\n[DEFAULT]\na = 3\n",
			want: map[string]map[string]string{"DEFAULT": {"a": "3"}},
		},
		{
			name: "section names lower-cased except DEFAULT; dashes are underscores",
			in:   "[Database]\nmax-pool-size = 3\n[default]\nx = 1\n[GLANCE_STORE]\ny = 2\n",
			want: map[string]map[string]string{"database": {"max_pool_size": "3"}, "default": {"x": "1"}, "glance_store": {"y": "2"}},
		},
		{
			name: "BOM and CRLF",
			in:   "\ufeff[DEFAULT]\r\na = 1\r\n",
			want: map[string]map[string]string{"DEFAULT": {"a": "1"}},
		},
		{name: "no separator", in: "[DEFAULT]\njunk\n", wantErr: "t.conf:2: no ':' or '=' found"},
		{
			name: "indented line after an option continues it, as in oslo.config",
			in:   "[DEFAULT]\na = 1\n  # more\n",
			want: map[string]map[string]string{"DEFAULT": {"a": "1\n# more"}},
		},
		{name: "empty key", in: "[DEFAULT]\n= 1\n", wantErr: "option name cannot be empty"},
		{name: "option before section", in: "a = 1\n", wantErr: "t.conf:1: option set before any [section]"},
		{name: "unterminated section", in: "[DEFAULT\n", wantErr: "invalid section"},
		{name: "empty section", in: "[]\n", wantErr: "empty section name"},
		{name: "continuation without option", in: "[DEFAULT]\n  stray\n", wantErr: "unexpected continuation line"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := parseINIBytes("t.conf", []byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				if !errors.Is(err, domain.ErrInvalid) {
					t.Errorf("err = %v, want a domain.ErrInvalid", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]map[string]string{}
			for s, kv := range f.sections {
				got[s] = map[string]string{}
				for k, e := range kv {
					got[s][k] = e.value
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestParseBool(t *testing.T) {
	tests := []struct {
		in      string
		want    bool
		wantErr bool
	}{
		{"true", true, false}, {"TRUE", true, false}, {"Yes", true, false}, {"on", true, false}, {"1", true, false},
		{" True ", true, false},
		{"false", false, false}, {"False", false, false}, {"NO", false, false}, {"Off", false, false}, {"0", false, false},
		{"2", false, true}, {"y", false, true}, {"enabled", false, true}, {"", false, true},
	}
	for _, tc := range tests {
		got, err := parseBool(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("parseBool(%q) = %v, %v; want %v, err %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestParseList(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{"a,b", []string{"a", "b"}, false},
		{"[a,b]", []string{"a", "b"}, false},
		{" [ a , b ,c ] ", []string{"a", "b", "c"}, false},
		{"[glance-direct,web-download,copy-image]", []string{"glance-direct", "web-download", "copy-image"}, false},
		{"a,b,", []string{"a", "b"}, false},
		{"'a', \"b\"", []string{"a", "b"}, false},
		{"single", []string{"single"}, false},
		{"", []string{}, false},
		{"[]", []string{}, false},
		{"[a,b", nil, true},
		{"a,b]", nil, true},
	}
	for _, tc := range tests {
		got, err := parseList(tc.in)
		if (err != nil) != tc.wantErr || (!tc.wantErr && !reflect.DeepEqual(got, tc.want)) {
			t.Errorf("parseList(%q) = %q, %v; want %q, err %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestParseDict(t *testing.T) {
	tests := []struct {
		in      string
		want    map[string]string
		wantErr string
	}{
		{"fast:rbd,cheap:file", map[string]string{"fast": "rbd", "cheap": "file"}, ""},
		{" fast : rbd , cheap:file ", map[string]string{"fast": "rbd", "cheap": "file"}, ""},
		{"k:v:w", map[string]string{"k": "v:w"}, ""},
		{"k:", map[string]string{"k": ""}, ""},
		{"", map[string]string{}, ""},
		{"fast", nil, "not a name:value pair"},
		{":rbd", nil, "empty name"},
		{"a:1,a:2", nil, "duplicate name"},
	}
	for _, tc := range tests {
		got, err := parseDict(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("parseDict(%q) err = %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseDict(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestInterpolate(t *testing.T) {
	vars := map[string]string{"state_path": "/var/lib/glance", "database.connection": "sqlite://", "a": "A", "A_b1": "mixed"}
	lookup := func(name string) (string, error) {
		v, ok := vars[name]
		if !ok {
			return "", errors.New("no " + name)
		}
		return v, nil
	}
	tests := []struct {
		in, want string
		wantErr  string
	}{
		{"$state_path/images", "/var/lib/glance/images", ""},
		{"${state_path}images", "/var/lib/glanceimages", ""},
		{"$database.connection", "sqlite://", ""},
		{"x$a-y", "xA-y", ""},
		{"$A_b1", "mixed", ""},
		{"$$state_path", "$state_path", ""},
		{`\$state_path`, "$state_path", ""},
		{"cost $5 and $ alone and trailing $", "cost $5 and $ alone and trailing $", ""},
		{"${unclosed", "${unclosed", ""},
		{"${}", "${}", ""},
		{"no dollars", "no dollars", ""},
		{"$nope", "", "no nope"},
		{"${nope}", "", "no nope"},
	}
	for _, tc := range tests {
		got, err := interpolate(tc.in, lookup)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("interpolate(%q) err = %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("interpolate(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}
