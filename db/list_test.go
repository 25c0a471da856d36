package db_test

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/glance-go/glance-go/db"
	"github.com/glance-go/glance-go/db/dbtest"
	"github.com/glance-go/glance-go/domain"
)

// ids lists the ids of a page in order.
func ids(p domain.Page) []string {
	out := make([]string, len(p.Images))
	for i, img := range p.Images {
		out[i] = img.Meta().ID
	}
	return out
}

func list(t *testing.T, d *db.DB, c *domain.Caller, q domain.ListQuery) []string {
	t.Helper()
	if q.Limit == 0 {
		q.Limit = 1000
	}
	p, err := d.Images(c).List(ctx, q)
	if err != nil {
		t.Fatalf("list %+v: %v", q, err)
	}
	return ids(p)
}

// sameSet compares got ids with the named images, ignoring order.
func sameSet(t *testing.T, got []string, names map[string]string, want ...string) {
	t.Helper()
	byID := map[string]string{}
	for n, id := range names {
		byID[id] = n
	}
	var gotNames []string
	for _, id := range got {
		n, ok := byID[id]
		if !ok {
			n = "?" + id
		}
		gotNames = append(gotNames, n)
	}
	slices.Sort(gotNames)
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(gotNames, want) {
		t.Fatalf("got %v, want %v", gotNames, want)
	}
}

func TestListVisibilityMatrix(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, d *db.DB) {
		n := map[string]string{
			"A-p1-public":        add(t, d, "p1", domain.VisibilityPublic, nil),
			"B-p1-community":     add(t, d, "p1", domain.VisibilityCommunity, nil),
			"C-p1-private":       add(t, d, "p1", domain.VisibilityPrivate, nil),
			"D-p1-shared-acc":    add(t, d, "p1", domain.VisibilityShared, nil),
			"E-p1-shared-pend":   add(t, d, "p1", domain.VisibilityShared, nil),
			"F-p1-shared-rej":    add(t, d, "p1", domain.VisibilityShared, nil),
			"G-p2-private":       add(t, d, "p2", domain.VisibilityPrivate, nil),
			"H-p2-community":     add(t, d, "p2", domain.VisibilityCommunity, nil),
			"I-p1-shared":        add(t, d, "p1", domain.VisibilityShared, nil),
			"J-noowner-private":  add(t, d, "", domain.VisibilityPrivate, nil),
			"K-p1-private-memb":  add(t, d, "p1", domain.VisibilityPrivate, nil),
			"L-p1-shared-remove": add(t, d, "p1", domain.VisibilityShared, nil),
		}
		share(t, d, n["D-p1-shared-acc"], "p2", domain.MemberAccepted)
		share(t, d, n["E-p1-shared-pend"], "p2", domain.MemberPending)
		share(t, d, n["F-p1-shared-rej"], "p2", domain.MemberRejected)
		share(t, d, n["K-p1-private-memb"], "p2", domain.MemberAccepted)
		share(t, d, n["L-p1-shared-remove"], "p2", domain.MemberAccepted)
		wantKind(t, d.Members(admin, n["L-p1-shared-remove"]).Remove(ctx, domain.Member{MemberID: "p2"}), nil)
		// Never listed: killed and deleted images.
		killed := add(t, d, "p2", domain.VisibilityPublic, nil)
		d.Gorm().Exec("UPDATE images SET status = 'killed' WHERE id = ?", killed)
		gone := add(t, d, "p2", domain.VisibilityPublic, nil)
		wantKind(t, d.Images(admin).Remove(ctx, domain.NewImage(domain.Meta{ID: gone})), nil)

		all := []string{"A-p1-public", "B-p1-community", "C-p1-private", "D-p1-shared-acc", "E-p1-shared-pend",
			"F-p1-shared-rej", "G-p2-private", "H-p2-community", "I-p1-shared", "J-noowner-private",
			"K-p1-private-memb", "L-p1-shared-remove"}
		without := func(drop ...string) []string {
			return slices.DeleteFunc(slices.Clone(all), func(s string) bool { return slices.Contains(drop, s) })
		}
		cases := []struct {
			name   string
			caller *domain.Caller
			vis    string
			ms     string
			want   []string
		}{
			{"member default", p2, "", "", []string{"A-p1-public", "D-p1-shared-acc", "G-p2-private", "H-p2-community"}},
			{"member all", p2, "all", "", []string{"A-p1-public", "B-p1-community", "D-p1-shared-acc", "G-p2-private", "H-p2-community"}},
			{"member community", p2, "community", "", []string{"B-p1-community", "H-p2-community"}},
			{"member shared", p2, "shared", "", []string{"D-p1-shared-acc"}},
			{"member shared pending", p2, "shared", "pending", []string{"E-p1-shared-pend"}},
			{"member shared rejected", p2, "shared", "rejected", []string{"F-p1-shared-rej"}},
			{"member shared all", p2, "shared", "all", []string{"D-p1-shared-acc", "E-p1-shared-pend", "F-p1-shared-rej"}},
			{"member private", p2, "private", "", []string{"G-p2-private"}},
			{"member public", p2, "public", "", []string{"A-p1-public"}},
			{"member status all", p2, "", "all", []string{"A-p1-public", "D-p1-shared-acc", "E-p1-shared-pend",
				"F-p1-shared-rej", "G-p2-private", "H-p2-community"}},
			{"owner default", p1, "", "", without("H-p2-community", "G-p2-private", "J-noowner-private")},
			{"owner shared", p1, "shared", "", []string{"D-p1-shared-acc", "E-p1-shared-pend", "F-p1-shared-rej",
				"I-p1-shared", "L-p1-shared-remove"}},
			{"stranger default", p3, "", "", []string{"A-p1-public"}},
			{"stranger all", p3, "all", "", []string{"A-p1-public", "B-p1-community", "H-p2-community"}},
			{"anonymous default", anon, "", "", []string{"A-p1-public"}},
			{"anonymous community", anon, "community", "", []string{"B-p1-community", "H-p2-community"}},
			{"admin default", admin, "", "", without("B-p1-community", "H-p2-community")},
			{"admin all", admin, "all", "", all},
			{"admin community", admin, "community", "", []string{"B-p1-community", "H-p2-community"}},
			{"admin private", admin, "private", "", []string{"C-p1-private", "G-p2-private", "J-noowner-private", "K-p1-private-memb"}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				got := list(t, d, tc.caller, domain.ListQuery{Visibility: tc.vis, MemberStatus: tc.ms})
				sameSet(t, got, n, tc.want...)
			})
		}
		// Pages of two, each after the last of the one before, give the
		// whole listing in its order: the caller's own images, the public
		// ones and the shared ones come from one sort.
		for _, caller := range []*domain.Caller{p1, p2, p3} {
			whole := list(t, d, caller, domain.ListQuery{MemberStatus: "all", Visibility: "all"})
			var paged []string
			marker := ""
			for range len(whole) + 1 {
				page := list(t, d, caller, domain.ListQuery{MemberStatus: "all", Visibility: "all", Limit: 2, Marker: marker})
				if len(page) == 0 {
					break
				}
				paged = append(paged, page...)
				marker = page[len(page)-1]
			}
			if !slices.Equal(paged, whole) {
				t.Errorf("%s: pages of two %v, the whole listing %v", caller.ProjectID, paged, whole)
			}
		}
	})
}

func TestListFilters(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, d *db.DB) {
		base := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
		mkf := func(name string, size int64, status domain.Status, tags []string, props map[string]string, hidden, protected bool) func(m *domain.Meta) {
			return func(m *domain.Meta) {
				m.Name = domain.Ptr(name)
				m.Size = &size
				m.Status = status
				m.DiskFormat, m.ContainerFormat = domain.Ptr("raw"), domain.Ptr("bare")
				if name == "c,d" {
					m.DiskFormat = domain.Ptr("qcow2")
				}
				m.Tags = tags
				m.Properties = props
				m.Hidden = hidden
				m.Protected = protected
				m.MinRAM = int(size)
				m.Checksum = domain.Ptr("sum-" + name)
			}
		}
		n := map[string]string{
			"a":   addAt(t, d, "p1", domain.VisibilityPublic, base, mkf("a", 10, domain.StatusActive, []string{"x", "y"}, map[string]string{"os_distro": "ubuntu", "arch": "x86"}, false, false)),
			"b":   addAt(t, d, "p1", domain.VisibilityPublic, base.Add(time.Hour), mkf("b", 20, domain.StatusQueued, []string{"x"}, map[string]string{"os_distro": "ubuntu"}, false, true)),
			"c,d": addAt(t, d, "p2", domain.VisibilityPublic, base.Add(2*time.Hour), mkf("c,d", 30, domain.StatusActive, []string{"y"}, map[string]string{"os_distro": "fedora", "arch": "x86"}, false, false)),
			"h":   addAt(t, d, "p1", domain.VisibilityPublic, base.Add(3*time.Hour), mkf("h", 40, domain.StatusActive, []string{"x", "y"}, nil, true, false)),
		}
		at := func(h int) string { return base.Add(time.Duration(h) * time.Hour).Format(time.RFC3339) }
		f := func(field string, op domain.FilterOp, vals ...string) []domain.Filter {
			return []domain.Filter{{Field: field, Op: op, Values: vals}}
		}
		cases := []struct {
			name string
			q    domain.ListQuery
			want []string
		}{
			{"no filter", domain.ListQuery{}, []string{"a", "b", "c,d"}},
			{"hidden only", domain.ListQuery{Hidden: true}, []string{"h"}},
			{"name eq", domain.ListQuery{Filters: f("name", domain.OpEq, "b")}, []string{"b"}},
			{"name in with comma", domain.ListQuery{Filters: f("name", domain.OpIn, "a", "c,d")}, []string{"a", "c,d"}},
			{"status in", domain.ListQuery{Filters: f("status", domain.OpIn, "queued")}, []string{"b"}},
			{"disk_format eq", domain.ListQuery{Filters: f("disk_format", domain.OpEq, "qcow2")}, []string{"c,d"}},
			{"container_format in", domain.ListQuery{Filters: f("container_format", domain.OpIn, "bare", "ovf")}, []string{"a", "b", "c,d"}},
			{"id eq", domain.ListQuery{Filters: f("id", domain.OpEq, n["a"])}, []string{"a"}},
			{"owner eq", domain.ListQuery{Filters: f("owner", domain.OpEq, "p2")}, []string{"c,d"}},
			{"checksum eq", domain.ListQuery{Filters: f("checksum", domain.OpEq, "sum-b")}, []string{"b"}},
			{"min_ram eq", domain.ListQuery{Filters: f("min_ram", domain.OpEq, "30")}, []string{"c,d"}},
			{"size_min", domain.ListQuery{Filters: f("size", domain.OpGte, "20")}, []string{"b", "c,d"}},
			{"size_max", domain.ListQuery{Filters: f("size", domain.OpLte, "20")}, []string{"a", "b"}},
			{"size gt and lt", domain.ListQuery{Filters: append(f("size", domain.OpGt, "10"), domain.Filter{Field: "size", Op: domain.OpLt, Values: []string{"30"}})}, []string{"b"}},
			{"created_at gt", domain.ListQuery{Filters: f("created_at", domain.OpGt, at(0))}, []string{"b", "c,d"}},
			{"created_at gte", domain.ListQuery{Filters: f("created_at", domain.OpGte, at(1))}, []string{"b", "c,d"}},
			{"created_at lt", domain.ListQuery{Filters: f("created_at", domain.OpLt, at(1))}, []string{"a"}},
			{"created_at lte", domain.ListQuery{Filters: f("created_at", domain.OpLte, at(1))}, []string{"a", "b"}},
			{"created_at eq", domain.ListQuery{Filters: f("created_at", domain.OpEq, at(2))}, []string{"c,d"}},
			{"created_at neq", domain.ListQuery{Filters: f("created_at", domain.OpNeq, at(2))}, []string{"a", "b"}},
			{"created_at offset zone", domain.ListQuery{Filters: f("created_at", domain.OpEq, base.Add(time.Hour).In(time.FixedZone("x", 3600)).Format(time.RFC3339))}, []string{"b"}},
			{"updated_at lt", domain.ListQuery{Filters: f("updated_at", domain.OpLt, at(1))}, []string{"a"}},
			{"tag", domain.ListQuery{Tags: []string{"x"}}, []string{"a", "b"}},
			{"tags AND", domain.ListQuery{Tags: []string{"x", "y"}}, []string{"a"}},
			{"tag none", domain.ListQuery{Tags: []string{"zzz"}}, nil},
			{"property", domain.ListQuery{Properties: map[string]string{"os_distro": "ubuntu"}}, []string{"a", "b"}},
			{"properties AND", domain.ListQuery{Properties: map[string]string{"os_distro": "ubuntu", "arch": "x86"}}, []string{"a"}},
			{"property exact", domain.ListQuery{Properties: map[string]string{"os_distro": "ubunt"}}, nil},
			{"protected true", domain.ListQuery{Protected: domain.Ptr(true)}, []string{"b"}},
			{"protected false", domain.ListQuery{Protected: domain.Ptr(false)}, []string{"a", "c,d"}},
			{"combined", domain.ListQuery{Tags: []string{"y"}, Properties: map[string]string{"arch": "x86"}, Filters: f("size", domain.OpGte, "15")}, []string{"c,d"}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				sameSet(t, list(t, d, p3, tc.q), n, tc.want...)
			})
		}

		bad := []struct {
			name string
			q    domain.ListQuery
			msg  string
		}{
			{"non-numeric size", domain.ListQuery{Filters: f("size", domain.OpGte, "big")}, "Unable to filter on a range with a non-numeric value."},
			{"bad time", domain.ListQuery{Filters: f("created_at", domain.OpGt, "yesterday")}, `Bad "created_at" query filter format. Use ISO 8601 DateTime notation.`},
			{"unknown column", domain.ListQuery{Filters: f("deleted", domain.OpEq, "1")}, "Unable to filter by unknown column 'deleted'."},
			{"unknown op", domain.ListQuery{Filters: f("name", "like", "a")}, "Unable to filter by unknown operator 'like'."},
			{"bad sort key", domain.ListQuery{Sort: []domain.SortKey{{Key: "owner", Dir: "asc"}}},
				"Invalid sort key: owner. It must be one of the following: name, status, container_format, disk_format, size, id, created_at, updated_at."},
			{"bad sort dir", domain.ListQuery{Sort: []domain.SortKey{{Key: "name", Dir: "up"}}}, "Invalid sort direction: up"},
			{"bad visibility", domain.ListQuery{Visibility: "bogus"}, "Invalid visibility value: bogus"},
			{"bad member status", domain.ListQuery{MemberStatus: "bogus"}, "Invalid status: bogus"},
		}
		for _, tc := range bad {
			t.Run(tc.name, func(t *testing.T) {
				tc.q.Limit = 10
				_, err := d.Images(p3).List(ctx, tc.q)
				wantMsg(t, err, domain.ErrInvalid, tc.msg)
			})
		}
	})
}

// seedSortable stores images with many ties on every sort key.
func seedSortable(t *testing.T, d *db.DB) []domain.Meta {
	t.Helper()
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	names := []*string{domain.Ptr("alpha"), domain.Ptr("beta"), nil, domain.Ptr("Beta"), domain.Ptr("")}
	statuses := []domain.Status{domain.StatusActive, domain.StatusQueued, domain.StatusDeactivated}
	formats := []*string{domain.Ptr("raw"), nil, domain.Ptr("qcow2")}
	var metas []domain.Meta
	for i := 0; i < 23; i++ {
		img := mk(t, "p1", domain.VisibilityPrivate, func(m *domain.Meta) {
			m.Name = names[i%len(names)]
			m.Status = statuses[i%len(statuses)]
			m.DiskFormat = formats[i%len(formats)]
			m.ContainerFormat = formats[(i+1)%len(formats)]
			if i%4 != 0 {
				m.Size = domain.Ptr(int64(i % 3 * 100))
			}
			m.CreatedAt = base.Add(time.Duration(i/4) * time.Minute) // four images a minute: ties
			m.UpdatedAt = base.Add(time.Duration(i%5) * time.Hour)
		})
		wantKind(t, d.Images(p1).Add(ctx, img), nil)
		metas = append(metas, img.Meta())
	}
	return metas
}

// sortValue is how a key compares: NULL as the zero of its type.
func sortValue(m domain.Meta, key string) any {
	deref := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	switch key {
	case "name":
		return deref(m.Name)
	case "status":
		return string(m.Status)
	case "disk_format":
		return deref(m.DiskFormat)
	case "container_format":
		return deref(m.ContainerFormat)
	case "size":
		if m.Size == nil {
			return int64(0)
		}
		return *m.Size
	case "id":
		return m.ID
	case "created_at":
		return m.CreatedAt.Unix()
	case "updated_at":
		return m.UpdatedAt.Unix()
	}
	panic(key)
}

func compareValues(a, b any, fold bool) int {
	switch x := a.(type) {
	case string:
		y := b.(string)
		if fold {
			if c := cmp.Compare(strings.ToLower(x), strings.ToLower(y)); c != 0 {
				return c
			}
			return 0
		}
		return cmp.Compare(x, y)
	case int64:
		return cmp.Compare(x, b.(int64))
	}
	panic(a)
}

// expectedOrder sorts metas the way the database should for keys/dirs.
func expectedOrder(metas []domain.Meta, keys, dirs []string, fold bool) []string {
	s := slices.Clone(metas)
	slices.SortStableFunc(s, func(a, b domain.Meta) int {
		for i, k := range keys {
			c := compareValues(sortValue(a, k), sortValue(b, k), fold && k != "id")
			if dirs[i] == "desc" {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return 0
	})
	out := make([]string, len(s))
	for i, m := range s {
		out[i] = m.ID
	}
	return out
}

func TestListSortAndPaginate(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, d *db.DB) {
		metas := seedSortable(t, d)
		// MySQL's utf8_general_ci collation compares case-insensitively, as
		// it does under Glance.
		fold := strings.HasSuffix(t.Name(), "/mysql")
		cases := []struct {
			sort       []domain.SortKey
			keys, dirs []string
		}{
			{nil, []string{"created_at", "id"}, []string{"desc", "desc"}},
			{[]domain.SortKey{{Key: "created_at", Dir: "asc"}}, []string{"created_at", "id"}, []string{"asc", "asc"}},
			{[]domain.SortKey{{Key: "name", Dir: "asc"}}, []string{"name", "created_at", "id"}, []string{"asc", "asc", "asc"}},
			{[]domain.SortKey{{Key: "name", Dir: "desc"}}, []string{"name", "created_at", "id"}, []string{"desc", "desc", "desc"}},
			{[]domain.SortKey{{Key: "status", Dir: "asc"}, {Key: "size", Dir: "desc"}}, []string{"status", "size", "created_at", "id"}, []string{"asc", "desc", "desc", "desc"}},
			{[]domain.SortKey{{Key: "size", Dir: "asc"}, {Key: "name", Dir: "asc"}}, []string{"size", "name", "created_at", "id"}, []string{"asc", "asc", "asc", "asc"}},
			{[]domain.SortKey{{Key: "disk_format", Dir: "desc"}}, []string{"disk_format", "created_at", "id"}, []string{"desc", "desc", "desc"}},
			{[]domain.SortKey{{Key: "container_format", Dir: "asc"}}, []string{"container_format", "created_at", "id"}, []string{"asc", "asc", "asc"}},
			{[]domain.SortKey{{Key: "updated_at", Dir: "asc"}}, []string{"updated_at", "created_at", "id"}, []string{"asc", "asc", "asc"}},
			{[]domain.SortKey{{Key: "id", Dir: "asc"}}, []string{"id", "created_at"}, []string{"asc", "asc"}},
		}
		for _, tc := range cases {
			t.Run(fmt.Sprint(tc.keys, tc.dirs), func(t *testing.T) {
				want := expectedOrder(metas, tc.keys, tc.dirs, fold)
				full := list(t, d, p1, domain.ListQuery{Sort: tc.sort})
				if !slices.Equal(full, want) {
					t.Fatalf("order\n got %v\nwant %v", full, want)
				}
				for _, limit := range []int{1, 3, 5, 23} {
					var paged []string
					marker := ""
					for pages := 0; ; pages++ {
						if pages > len(metas)+1 {
							t.Fatalf("limit %d: pagination does not end", limit)
						}
						p, err := d.Images(p1).List(ctx, domain.ListQuery{Sort: tc.sort, Limit: limit, Marker: marker})
						wantKind(t, err, nil)
						got := ids(p)
						if p.Full != (len(got) == limit) {
							t.Fatalf("limit %d: Full=%v with %d rows", limit, p.Full, len(got))
						}
						paged = append(paged, got...)
						if !p.Full {
							break
						}
						marker = got[len(got)-1]
					}
					if !slices.Equal(paged, want) {
						t.Fatalf("limit %d: pages\n got %v\nwant %v", limit, paged, want)
					}
				}
			})
		}
	})
}

func TestListMarkerAndLimit(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, d *db.DB) {
		mine := add(t, d, "p1", domain.VisibilityPrivate, nil)
		other := add(t, d, "p2", domain.VisibilityPrivate, nil)
		pending := add(t, d, "p2", domain.VisibilityShared, nil)
		share(t, d, pending, "p1", domain.MemberPending)
		gone := add(t, d, "p1", domain.VisibilityPrivate, nil)
		wantKind(t, d.Images(p1).Remove(ctx, domain.NewImage(get(t, d, p1, gone))), nil)

		for _, m := range []string{other, gone, "nope", strings.Repeat("z", 40)} {
			_, err := d.Images(p1).List(ctx, domain.ListQuery{Limit: 10, Marker: m})
			wantMsg(t, err, domain.ErrInvalid, "No image found with ID "+m)
		}
		// A marker need only be visible, not listed: a pending share works.
		p, err := d.Images(p1).List(ctx, domain.ListQuery{Limit: 10, Marker: pending})
		wantKind(t, err, nil)
		_ = p
		// The admin may page from anything.
		_, err = d.Images(admin).List(ctx, domain.ListQuery{Limit: 10, Marker: other})
		wantKind(t, err, nil)

		p, err = d.Images(p1).List(ctx, domain.ListQuery{Limit: 0})
		wantKind(t, err, nil)
		if len(p.Images) != 0 || p.Full {
			t.Fatalf("limit 0: %d images, full=%v", len(p.Images), p.Full)
		}
		p, err = d.Images(p1).List(ctx, domain.ListQuery{Limit: 1})
		wantKind(t, err, nil)
		if !slices.Equal(ids(p), []string{mine}) || !p.Full {
			t.Fatalf("limit 1: %v full=%v", ids(p), p.Full)
		}
		p, err = d.Images(p1).List(ctx, domain.ListQuery{Limit: 1, Marker: mine})
		wantKind(t, err, nil)
		if len(p.Images) != 0 || p.Full {
			t.Fatalf("after the last: %v full=%v", ids(p), p.Full)
		}
	})
}

func TestListLoadsChildren(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, d *db.DB) {
		a := add(t, d, "p1", domain.VisibilityShared, func(m *domain.Meta) {
			m.Tags = []string{"t2", "t1"}
			m.Properties = map[string]string{"k": "a"}
			m.Locations = []domain.Location{{URL: "file:///a", Status: "active", Metadata: map[string]any{"store": "s"}}}
		})
		b := add(t, d, "p1", domain.VisibilityPublic, func(m *domain.Meta) { m.Properties = map[string]string{"k": "b"} })
		p, err := d.Images(p2).List(ctx, domain.ListQuery{Limit: 10, Visibility: "all", MemberStatus: "all"})
		wantKind(t, err, nil)
		if len(p.Images) != 1 || p.Images[0].Meta().ID != b {
			t.Fatalf("p2 sees %v", ids(p))
		}
		share(t, d, a, "p2", domain.MemberAccepted)
		p, err = d.Images(p2).List(ctx, domain.ListQuery{Limit: 10})
		wantKind(t, err, nil)
		byID := map[string]domain.Meta{}
		for _, img := range p.Images {
			byID[img.Meta().ID] = img.Meta()
		}
		ma, mb := byID[a], byID[b]
		if !slices.Equal(ma.Tags, []string{"t1", "t2"}) || ma.Properties["k"] != "a" || len(ma.Locations) != 1 ||
			ma.Locations[0].Metadata["store"] != "s" || ma.Member != "p2" {
			t.Fatalf("image a: %+v", ma)
		}
		if len(mb.Tags) != 0 || mb.Properties["k"] != "b" || len(mb.Locations) != 0 || mb.Member != "" {
			t.Fatalf("image b: %+v", mb)
		}
	})
}
