package db

import (
	"encoding/json"
	"maps"
	"slices"
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
