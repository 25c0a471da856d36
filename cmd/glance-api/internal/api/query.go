package api

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/glance-go/glance-go/domain"
)

// param is one query parameter, in request order.
type param struct{ key, val string }

// params is a query string as webob's MultiDict sees it.
type params []param

// parseParams splits a raw query keeping order and repeats.
func parseParams(raw string) params {
	var out params
	for _, part := range strings.Split(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		out = append(out, param{unescape(k), unescape(v)})
	}
	return out
}

func unescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return strings.ReplaceAll(s, "+", " ")
}

// pop removes and returns the first value of key.
func (p *params) pop(key string) (string, bool) {
	for i, x := range *p {
		if x.key == key {
			*p = append((*p)[:i], (*p)[i+1:]...)
			return x.val, true
		}
	}
	return "", false
}

func (p params) has(key string) bool {
	for _, x := range p {
		if x.key == key {
			return true
		}
	}
	return false
}

// collapse is dict(request.params): each key once, at its first position,
// with its last value.
func (p params) collapse() params {
	var out params
	index := map[string]int{}
	for _, x := range p {
		if i, ok := index[x.key]; ok {
			out[i].val = x.val
			continue
		}
		index[x.key] = len(out)
		out = append(out, x)
	}
	return out
}

// encode is urllib.parse.urlencode.
func (p params) encode() string {
	var b strings.Builder
	for i, x := range p {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(x.key))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(x.val))
	}
	return b.String()
}

var sortKeys = []string{"name", "status", "container_format", "disk_format", "size", "id", "created_at", "updated_at"}

// Filter groups of reference §2.
var (
	opFilterColumns = map[string]bool{"name": true, "id": true, "status": true, "container_format": true, "disk_format": true}
	rangeColumns    = map[string]bool{"size": true, "virtual_size": true, "min_ram": true, "min_disk": true}
	eqColumns       = map[string]bool{"owner": true, "min_ram": true, "min_disk": true, "checksum": true,
		"os_hash_algo": true, "os_hash_value": true, "size": true, "virtual_size": true}
	timeOps = map[string]domain.FilterOp{"gt": domain.OpGt, "gte": domain.OpGte, "lt": domain.OpLt,
		"lte": domain.OpLte, "neq": domain.OpNeq, "eq": domain.OpEq}
)

func badRequest(format string, args ...any) error {
	return explain(http.StatusBadRequest, format, args...)
}

// Bounds of a listing's query string. No client lists with more
// parameters (each filter, tag or sort key is one), nor asks for more
// values in one in: filter; each becomes a condition of the statement.
const (
	maxQueryParams = 100
	maxInValues    = 1000
)

// checkQueryCount refuses a query string of more than maxQueryParams
// parameters before it is parsed.
func checkQueryCount(raw string) error {
	if strings.Count(raw, "&") >= maxQueryParams {
		if len(parseParams(raw)) > maxQueryParams {
			return badRequest("Too many query parameters: at most %d are accepted.", maxQueryParams)
		}
	}
	return nil
}

// parseListQuery validates GET /v2/images parameters in Glance's order.
func (s *server) parseListQuery(raw string) (domain.ListQuery, error) {
	if err := checkQueryCount(raw); err != nil {
		return domain.ListQuery{}, err
	}
	p := parseParams(raw)
	q := domain.ListQuery{Limit: s.opts.LimitDefault, MemberStatus: "accepted"}
	limit, hasLimit := p.pop("limit")
	marker, hasMarker := p.pop("marker")
	if ms, ok := p.pop("member_status"); ok {
		q.MemberStatus = ms
	}
	for {
		t, ok := p.pop("tag")
		if !ok {
			break
		}
		q.Tags = append(q.Tags, strings.TrimSpace(t))
	}
	filters := p.collapse()
	get := func(k string) (string, bool) {
		for _, x := range filters {
			if x.key == k {
				return x.val, true
			}
		}
		return "", false
	}
	if v, _ := get("visibility"); v != "" {
		switch v {
		case "community", "public", "private", "shared", "all":
		default:
			return q, badRequest("Invalid visibility value: %s", v)
		}
		q.Visibility = v
	}
	if v, _ := get("changes-since"); v != "" {
		return q, badRequest(`The "changes-since" filter is no longer available on v2.`)
	}
	switch q.MemberStatus {
	case "pending", "accepted", "rejected", "all":
	default:
		return q, badRequest("Invalid status: %s", q.MemberStatus)
	}
	if hasMarker {
		q.Marker = marker
	}
	if hasLimit {
		n, err := strconv.Atoi(strings.TrimSpace(limit))
		if err != nil {
			return q, badRequest("limit param must be an integer")
		}
		if n < 0 {
			return q, badRequest("limit param must be positive")
		}
		q.Limit = n
	}
	if q.Limit > s.opts.LimitMax {
		q.Limit = s.opts.LimitMax
	}
	var err error
	if q.Sort, err = parseSort(&p); err != nil {
		return q, err
	}

	hidden := "false"
	if v, ok := get("os_hidden"); ok {
		hidden = strings.ToLower(v)
	}
	if hidden != "true" && hidden != "false" {
		return q, badRequest("Invalid value '%s' for 'os_hidden' filter. Valid values are 'true' or 'false'.", hidden)
	}
	q.Hidden = hidden == "true"
	if v, ok := get("protected"); ok {
		if v != "true" && v != "false" {
			return q, badRequest("Invalid value '%s' for 'protected' filter. Valid values are 'true' or 'false'.", v)
		}
		q.Protected = domain.Ptr(v == "true")
	}
	for _, x := range filters {
		switch x.key {
		case "visibility", "changes-since", "os_hidden", "protected", "sort", "sort_key", "sort_dir", "deleted":
			continue
		}
		f, isProp, err := columnFilter(x.key, x.val)
		if err != nil {
			return q, err
		}
		if isProp {
			if q.Properties == nil {
				q.Properties = map[string]string{}
			}
			q.Properties[x.key] = x.val
			continue
		}
		q.Filters = append(q.Filters, f...)
	}
	return q, nil
}

// columnFilter turns one parameter into filters on the images table, or
// reports that it filters an extra property.
func columnFilter(key, val string) ([]domain.Filter, bool, error) {
	if strings.HasSuffix(key, "_min") || strings.HasSuffix(key, "_max") {
		col := key[:len(key)-4]
		if !rangeColumns[col] {
			return nil, true, nil
		}
		n, err := strconv.ParseInt(strings.TrimSpace(val), 10, 64)
		if err != nil {
			return nil, false, badRequest("Unable to filter on a range with a non-numeric value.")
		}
		op := domain.OpGte
		if strings.HasSuffix(key, "_max") {
			op = domain.OpLte
		}
		return []domain.Filter{{Field: col, Op: op, Values: []string{strconv.FormatInt(n, 10)}}}, false, nil
	}
	switch {
	case key == "created_at" || key == "updated_at":
		op, threshold := splitFilterOp(val)
		t, ok := parseISOTime(threshold)
		if !ok {
			return nil, false, badRequest(`Bad "%s" query filter format. Use ISO 8601 DateTime notation.`, key)
		}
		fop, ok := timeOps[op]
		if !ok {
			return nil, false, badRequest("Unable to filter on a unknown operator.")
		}
		return []domain.Filter{{Field: key, Op: fop, Values: []string{t.UTC().Format(time.RFC3339Nano)}}}, false, nil
	case opFilterColumns[key]:
		op, threshold := splitFilterOp(val)
		switch op {
		case "in":
			vals, err := splitQuoted(threshold)
			if err != nil {
				return nil, false, err
			}
			if len(vals) > maxInValues {
				return nil, false, badRequest("Too many values in the \"%s\" filter: at most %d are accepted.", key, maxInValues)
			}
			return []domain.Filter{{Field: key, Op: domain.OpIn, Values: vals}}, false, nil
		case "eq":
			return []domain.Filter{{Field: key, Op: domain.OpEq, Values: []string{threshold}}}, false, nil
		}
		return nil, false, badRequest("Unable to filter by unknown operator '%s'.", op)
	case eqColumns[key]:
		return []domain.Filter{{Field: key, Op: domain.OpEq, Values: []string{val}}}, false, nil
	}
	return nil, true, nil
}

// splitFilterOp splits "op:value"; a whole ISO 8601 time is "eq".
func splitFilterOp(expr string) (string, string) {
	left, right, found := strings.Cut(expr, ":")
	if !found {
		return "eq", left
	}
	if _, ok := parseISOTime(expr); ok {
		return "eq", expr
	}
	return left, right
}

var isoLayouts = []string{
	"2006-01-02T15:04:05.999999999Z07:00", "2006-01-02T15:04:05.999999999Z0700", "2006-01-02T15:04:05.999999999",
	"2006-01-02T15:04Z07:00", "2006-01-02T15:04", "2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999", "2006-01-02T15Z07:00", "2006-01-02T15", "2006-01-02", "2006-01", "2006",
	"20060102T150405Z07:00", "20060102T150405", "20060102",
}

// parseISOTime accepts the ISO 8601 forms clients send; no zone means UTC.
func parseISOTime(s string) (time.Time, bool) {
	for _, l := range isoLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// splitQuoted splits an "in:" list: commas separate values, and a value in
// double quotes may hold commas (api-wg filtering guideline).
func splitQuoted(v string) ([]string, error) {
	open := true
	for i := 0; i < len(v); i++ {
		if v[i] != '"' || (i > 0 && v[i-1] == '\\') {
			continue
		}
		if open {
			if i > 0 && v[i-1] != ',' {
				return nil, badRequest("Invalid filter value %s. There is no comma before opening quotation mark.", v)
			}
		} else if i+1 != len(v) && v[i+1] != ',' {
			return nil, badRequest("Invalid filter value %s. There is no comma after closing quotation mark.", v)
		}
		open = !open
	}
	if !open {
		return nil, badRequest("Invalid filter value %s. The quote is not closed.", v)
	}
	var out []string
	for i := 0; i < len(v); {
		switch v[i] {
		case '"':
			j := i + 1
			for j < len(v) && v[j] != '"' {
				if v[j] == '\\' {
					j++
				}
				j++
			}
			out = append(out, v[i+1:min(j, len(v))])
			i = j + 1
			if i < len(v) && v[i] == ',' {
				i++
			}
		case ',':
			out = append(out, "")
			i++
		default:
			j := strings.IndexByte(v[i:], ',')
			if j < 0 {
				out = append(out, v[i:])
				i = len(v)
			} else {
				out = append(out, v[i:i+j])
				i += j + 1
			}
		}
	}
	return out, nil
}

// parseSort reads sort, or sort_key and sort_dir, into sort keys.
func parseSort(p *params) ([]domain.SortKey, error) {
	var keys, dirs []string
	if sortv, ok := p.pop("sort"); ok {
		if p.has("sort_key") || p.has("sort_dir") {
			return nil, badRequest("Old and new sorting syntax cannot be combined")
		}
		for _, part := range strings.Split(strings.TrimSpace(sortv), ",") {
			k, d, _ := strings.Cut(part, ":")
			if d == "" {
				d = "desc"
			}
			k, d = strings.TrimSpace(k), strings.TrimSpace(d)
			if err := checkSortKey(k); err != nil {
				return nil, err
			}
			if err := checkSortDir(d); err != nil {
				return nil, err
			}
			keys, dirs = append(keys, k), append(dirs, d)
		}
	} else {
		for {
			k, ok := p.pop("sort_key")
			if !ok {
				break
			}
			k = strings.TrimSpace(k)
			if err := checkSortKey(k); err != nil {
				return nil, err
			}
			keys = append(keys, k)
		}
		for {
			d, ok := p.pop("sort_dir")
			if !ok {
				break
			}
			d = strings.TrimSpace(d)
			if err := checkSortDir(d); err != nil {
				return nil, err
			}
			dirs = append(dirs, d)
		}
		if len(dirs) > 1 && len(dirs) != len(keys) {
			return nil, badRequest("Number of sort dirs does not match the number of sort keys")
		}
	}
	if len(keys) == 0 {
		keys = []string{"created_at"}
	}
	if len(dirs) == 0 {
		dirs = []string{"desc"}
	}
	out := make([]domain.SortKey, len(keys))
	for i, k := range keys {
		d := dirs[0]
		if i < len(dirs) {
			d = dirs[i]
		}
		out[i] = domain.SortKey{Key: k, Dir: d}
	}
	return out, nil
}

func checkSortKey(k string) error {
	if !contains(sortKeys, k) {
		return badRequest("Invalid sort key: %s. It must be one of the following: %s.", k, strings.Join(sortKeys, ", "))
	}
	return nil
}

func checkSortDir(d string) error {
	if d != "asc" && d != "desc" {
		return badRequest("Invalid sort direction: %s", d)
	}
	return nil
}

// listLinks returns the first and next hrefs of a listing.
func listLinks(raw string, nextMarker string) (first, next string) {
	p := parseParams(raw).collapse()
	p.pop("marker")
	first = "/v2/images"
	if len(p) > 0 {
		first += "?" + p.encode()
	}
	if nextMarker != "" {
		p = append(p, param{"marker", nextMarker})
		next = "/v2/images?" + p.encode()
	}
	return first, next
}
