package db

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
)

func TestDecodeStringMap(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		wantErr  bool
	}{
		{"empty", `{}`, false},
		{"plain", `{"a":"1","b":"two words"}`, false},
		{"spaces", ` { "a" : "1" , "b":"" } `, false},
		{"escapes", `{"q\"uote":"back\\slash\/ \b\f\n\r\t"}`, false},
		{"unicode", `{"k":"\u00e9t\u00C9 \ud83d\ude00 raw é"}`, false},
		{"lone surrogate", `{"k":"\ud83d x"}`, false},
		{"number value falls back and fails", `{"k":1}`, true},
		{"truncated", `{"k":"v"`, true},
		{"trailing", `{"k":"v"} x`, true},
		{"bad escape", `{"k":"\q"}`, true},
		{"not an object", `["k"]`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string]string{}
			err := decodeStringMap([]byte(tc.in), got)
			want := map[string]string{}
			wantErr := json.Unmarshal([]byte(tc.in), &want)
			if (err != nil) != tc.wantErr || (wantErr != nil) != tc.wantErr {
				t.Fatalf("error %v, encoding/json %v, want error: %v", err, wantErr, tc.wantErr)
			}
			if err == nil && !maps.Equal(got, want) {
				t.Fatalf("got %q, encoding/json %q", got, want)
			}
		})
	}
}

func TestDecodeStrings(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		wantErr  bool
	}{
		{"empty", `[]`, false},
		{"two", `["tag-a","tag b"]`, false},
		{"escapes", `["a\"b","c\\d","\u2603"]`, false},
		{"not strings", `[1,2]`, true},
		{"unterminated", `["a",`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeStrings([]byte(tc.in))
			var want []string
			wantErr := json.Unmarshal([]byte(tc.in), &want)
			if (err != nil) != tc.wantErr || (wantErr != nil) != tc.wantErr {
				t.Fatalf("error %v, encoding/json %v, want error: %v", err, wantErr, tc.wantErr)
			}
			if err == nil && !slices.Equal(got, want) {
				t.Fatalf("got %q, encoding/json %q", got, want)
			}
		})
	}
}

func TestDecodeImageRow(t *testing.T) {
	good := `["id-1","n\"ame",12,"active","2024-01-02 03:04:05.123456",null,null,"raw","bare",null,"p1",0,1,1,-5,"shared",0,null,null]`
	m, err := decodeImageRow([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != "id-1" || *m.Name != `n"ame` || *m.Size != 12 || m.Status != "active" || m.MinRAM != 1 || !m.Protected ||
		*m.VirtualSize != -5 || m.Hidden || m.Checksum != nil || *m.Owner != "p1" ||
		m.CreatedAt.Format("2006-01-02 15:04:05.000000") != "2024-01-02 03:04:05.123456" || !m.UpdatedAt.Equal(m.CreatedAt) ||
		m.DeletedAt != nil || m.Properties == nil || m.Tags == nil {
		t.Fatalf("decoded %+v", m)
	}
	for name, in := range map[string]string{
		"short":          `["id-1"]`,
		"long":           good[:len(good)-1] + `,null]`,
		"not an array":   `{}`,
		"bad boolean":    strings.Replace(good, `0,1,1,-5`, `0,1,2,-5`, 1),
		"bad integer":    strings.Replace(good, `,12,`, `,"x",`, 1),
		"fraction":       strings.Replace(good, `,12,`, `,1.5,`, 1),
		"bad time":       strings.Replace(good, `"2024-01-02 03:04:05.123456"`, `"yesterday"`, 1),
		"number as time": strings.Replace(good, `"2024-01-02 03:04:05.123456"`, `1`, 1),
		"bare word":      strings.Replace(good, `null`, `nul`, 1),
	} {
		if _, err := decodeImageRow([]byte(in)); err == nil {
			t.Errorf("%s: %s decoded", name, in)
		}
	}
}
