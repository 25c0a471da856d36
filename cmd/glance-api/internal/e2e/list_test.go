package e2e

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

func TestListImages(t *testing.T) {
	s := suite.srv
	tag := uniq("list")
	names := []string{tag + "-a", tag + "-b", tag + "-c"}
	var id []string
	for i, n := range names {
		body := map[string]any{"name": n, "disk_format": "raw", "container_format": "bare", "tags": []string{tag}}
		if i == 0 {
			body["e2e_prop"] = tag
		}
		id = append(id, s.createImage(t, tenantA, body)["id"].(string))
	}
	s.upload(t, tenantA, id[1], []byte("abc"))
	hidden := s.rawImage(t, tenantA, map[string]any{"tags": []string{tag}, "os_hidden": true})["id"].(string)

	q := "/v2/images?tag=" + url.QueryEscape(tag) + "&"
	cases := []struct {
		name    string
		query   string
		want    []string
		ordered bool
	}{
		{"tag", "", id, false},
		{"sort_key asc", "sort_key=name&sort_dir=asc", id, true},
		{"sort_key desc by default", "sort_key=name", []string{id[2], id[1], id[0]}, true},
		{"sort new syntax", "sort=name:desc", []string{id[2], id[1], id[0]}, true},
		{"sort new syntax, two keys", "sort=status:asc,name:asc", []string{id[1], id[0], id[2]}, true},
		{"name", "name=" + url.QueryEscape(names[1]), id[1:2], false},
		{"name eq", "name=eq:" + url.QueryEscape(names[1]), id[1:2], false},
		{"name in", "name=in:" + url.QueryEscape(names[0]+","+names[2]), []string{id[0], id[2]}, false},
		{"extra property", "e2e_prop=" + url.QueryEscape(tag), id[:1], false},
		{"status", "status=active", id[1:2], false},
		{"size range", "size_min=3&size_max=3", id[1:2], false},
		{"size above", "size_min=4", nil, false},
		{"two tags, one absent", "tag=nope", nil, false},
		{"visibility shared", "visibility=shared", id, false},
		{"visibility private", "visibility=private", nil, false},
		{"os_hidden", "os_hidden=true", []string{hidden}, false},
		{"os_hidden false", "os_hidden=false", id, false},
		{"limit", "limit=2&sort_key=name&sort_dir=asc", id[:2], true},
		{"limit 0", "limit=0", nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			list := s.do(t, tenantA, http.MethodGet, q+tc.query, nil).want(t, http.StatusOK).object(t)
			got := ids(t, list)
			want := slices.Clone(tc.want)
			if !tc.ordered {
				slices.Sort(got)
				slices.Sort(want)
			}
			if !slices.Equal(got, want) {
				t.Errorf("ids %v, want %v", got, want)
			}
			if list["schema"] != "/v2/schemas/images" {
				t.Errorf("schema = %v", list["schema"])
			}
		})
	}

	t.Run("pagination links", func(t *testing.T) {
		path := q + "limit=1&sort_key=name&sort_dir=asc"
		var seen []string
		for page := 0; ; page++ {
			if page > len(id) {
				t.Fatalf("more than %d pages: %v", len(id)+1, seen)
			}
			list := s.do(t, tenantA, http.MethodGet, path, nil).want(t, http.StatusOK).object(t)
			got := ids(t, list)
			seen = append(seen, got...)
			first, _ := list["first"].(string)
			fq := parseLink(t, first)
			if fq.Get("marker") != "" || fq.Get("limit") != "1" || fq.Get("tag") != tag || fq.Get("sort_key") != "name" {
				t.Errorf("first = %q", first)
			}
			next, hasNext := list["next"].(string)
			// Glance offers a next link whenever the page is full, so
			// the walk ends with one empty page.
			if full := len(got) == 1; full != hasNext {
				t.Fatalf("page %d with %d images: next = %q", page, len(got), next)
			}
			if !hasNext {
				break
			}
			nq := parseLink(t, next)
			if nq.Get("marker") != got[0] || nq.Get("limit") != "1" || nq.Get("tag") != tag || nq.Get("sort_dir") != "asc" {
				t.Errorf("next = %q, want the query with marker=%s", next, got[0])
			}
			path = next
		}
		if !slices.Equal(seen, id) {
			t.Errorf("pages gave %v, want %v", seen, id)
		}
	})
	t.Run("first link without query", func(t *testing.T) {
		list := s.do(t, tenantC, http.MethodGet, "/v2/images", nil).want(t, http.StatusOK).object(t)
		if list["first"] != "/v2/images" {
			t.Errorf("first = %v, want /v2/images", list["first"])
		}
	})

	bad := []struct{ name, query, msg string }{
		{"limit not integer", "limit=abc", "limit param must be an integer"},
		{"limit negative", "limit=-1", "limit param must be positive"},
		{"unknown marker", "marker=" + url.QueryEscape(tag), "No image found with ID " + tag},
		{"unknown sort key", "sort_key=bogus", "Invalid sort key: bogus."},
		{"unknown sort dir", "sort_dir=up", "Invalid sort direction: up"},
		{"both sort syntaxes", "sort=name:asc&sort_key=name", "Old and new sorting syntax cannot be combined"},
		{"unknown visibility", "visibility=bogus", "Invalid visibility value: bogus"},
		{"unknown member_status", "member_status=bogus", "Invalid status: bogus"},
		{"unknown os_hidden", "os_hidden=maybe", "Invalid value 'maybe' for 'os_hidden' filter."},
		{"unknown operator", "name=xx:yy", "Unable to filter by unknown operator 'xx'."},
		{"size not a number", "size_min=abc", "Unable to filter on a range with a non-numeric value."},
		{"bad time", "created_at=yesterday", `Bad "created_at" query filter format.`},
		{"changes-since", "changes-since=2020-01-01T00:00:00Z", `The "changes-since" filter is no longer available on v2.`},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			s.do(t, tenantA, http.MethodGet, "/v2/images?"+tc.query, nil, acceptJSON).
				wantError(t, http.StatusBadRequest, tc.msg)
		})
	}
}

// parseLink checks that a list link is a relative /v2/images URL and
// returns its query.
func parseLink(t testing.TB, link string) url.Values {
	t.Helper()
	if !strings.HasPrefix(link, "/v2/images") {
		t.Fatalf("link %q is not a relative /v2/images URL", link)
	}
	u, err := url.Parse(link)
	if err != nil {
		t.Fatalf("link %q: %v", link, err)
	}
	return u.Query()
}
