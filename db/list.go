package db

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/glance-go/glance-go/domain"
)

// columnKind says how a filterable images column compares.
type columnKind int

const (
	kindString columnKind = iota
	kindInt
	kindBool
	kindTime
)

// filterColumns are the images columns a Filter may name.
var filterColumns = map[string]columnKind{
	"id": kindString, "name": kindString, "status": kindString, "disk_format": kindString,
	"container_format": kindString, "checksum": kindString, "owner": kindString, "visibility": kindString,
	"os_hash_algo": kindString, "os_hash_value": kindString,
	"size": kindInt, "virtual_size": kindInt, "min_disk": kindInt, "min_ram": kindInt,
	"protected": kindBool, "os_hidden": kindBool,
	"created_at": kindTime, "updated_at": kindTime,
}

// sortColumns are the sort keys of reference §2 with the expression that
// pagination compares: nullable columns compare as their type's zero, as
// oslo.db's paginate_query does. Datetimes are compared as they are.
var sortColumns = map[string]string{
	"name":             "COALESCE(images.name, '')",
	"status":           "images.status",
	"container_format": "COALESCE(images.container_format, '')",
	"disk_format":      "COALESCE(images.disk_format, '')",
	"size":             "COALESCE(images.size, 0)",
	"id":               "images.id",
	"created_at":       "images.created_at",
	"updated_at":       "images.updated_at",
}

var sqlOps = map[domain.FilterOp]string{
	domain.OpEq: "=", domain.OpNeq: "<>", domain.OpGt: ">", domain.OpGte: ">=", domain.OpLt: "<", domain.OpLte: "<=",
}

// where collects the conditions of a query.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

func (w *where) sql() string { return strings.Join(w.conds, " AND ") }

// filterValue converts a filter value for a column of kind k.
func filterValue(field string, k columnKind, v string) (any, error) {
	switch k {
	case kindInt:
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return nil, domain.Errorf(domain.ErrInvalid, "Unable to filter on a range with a non-numeric value.")
		}
		return n, nil
	case kindBool:
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return nil, domain.Errorf(domain.ErrInvalid, "Invalid value '%s' for '%s' filter.", v, field)
		}
		return boolInt(b), nil
	case kindTime:
		t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(v))
		if err != nil {
			return nil, domain.Errorf(domain.ErrInvalid, "Bad \"%s\" query filter format. Use ISO 8601 DateTime notation.", field)
		}
		return ts(t), nil
	}
	return v, nil
}

// addFilter turns one column filter into a condition.
func (w *where) addFilter(f domain.Filter) error {
	k, ok := filterColumns[f.Field]
	if !ok {
		return domain.Errorf(domain.ErrInvalid, "Unable to filter by unknown column '%s'.", f.Field)
	}
	col := "images." + f.Field
	if f.Op == domain.OpIn {
		if len(f.Values) == 0 {
			w.add("1 = 0")
			return nil
		}
		vals := make([]any, 0, len(f.Values))
		for _, v := range f.Values {
			x, err := filterValue(f.Field, k, v)
			if err != nil {
				return err
			}
			vals = append(vals, x)
		}
		w.add(col+" IN "+placeholders(len(vals)), vals...)
		return nil
	}
	op, ok := sqlOps[f.Op]
	if !ok {
		return domain.Errorf(domain.ErrInvalid, "Unable to filter by unknown operator '%s'.", f.Op)
	}
	if len(f.Values) != 1 {
		return domain.Errorf(domain.ErrInvalid, "Invalid filter value for '%s'.", f.Field)
	}
	x, err := filterValue(f.Field, k, f.Values[0])
	if err != nil {
		return err
	}
	w.add(col+" "+op+" ?", x)
	return nil
}

// List implements domain.Repo (glance/db/sqlalchemy/api.image_get_all).
func (r *ImageRepo) List(ctx context.Context, q domain.ListQuery) (domain.Page, error) {
	if q.Limit == 0 {
		return domain.Page{Images: []domain.Image{}}, nil
	}
	var w where
	w.add("+images.deleted = 0")
	w.add("images.status <> 'killed'")
	w.add("+images.os_hidden = ?", boolInt(q.Hidden))
	if q.Protected != nil {
		w.add("images.protected = ?", boolInt(*q.Protected))
	}
	for _, f := range q.Filters {
		if err := w.addFilter(f); err != nil {
			return domain.Page{}, err
		}
	}
	for _, tag := range q.Tags {
		w.add("EXISTS (SELECT 1 FROM image_tags t WHERE t.image_id = images.id AND +t.deleted = 0 AND t.value = ?)", tag)
	}
	for name, value := range q.Properties {
		w.add("EXISTS (SELECT 1 FROM image_properties p WHERE p.image_id = images.id AND +p.deleted = 0"+
			" AND p.name = ? AND p.value = ?)", name, value)
	}
	union, err := r.addVisibility(&w, q)
	if err != nil {
		return domain.Page{}, err
	}

	keys, dirs, err := sortKeys(q.Sort)
	if err != nil {
		return domain.Page{}, err
	}
	var metas []domain.Meta
	err = r.d.read(ctx, func(ctx context.Context, run runner) (err error) {
		metas, err = r.list(ctx, run, q, &w, union, keys, dirs)
		return err
	})
	if err != nil {
		return domain.Page{}, err
	}
	page := domain.Page{Images: make([]domain.Image, len(metas)), Full: q.Limit > 0 && len(metas) == q.Limit}
	for i, m := range metas {
		page.Images[i] = domain.NewImage(m)
	}
	return page, nil
}

// memberUnion is, on MySQL, the visibility of a listing for a caller with
// a project as two branches: the public and community images and the
// caller's own, then the shared images the caller is a member of. As one
// OR, MySQL can only walk every image along the sort key and test each for
// a membership: a member of a few shared images among many waited for all
// of them. Each branch chooses its own page, and the UNION of both is
// sorted again.
type memberUnion struct {
	own, shared         string
	ownArgs, sharedArgs []any
}

// list runs the listing List built w, union, keys and dirs for.
func (r *ImageRepo) list(ctx context.Context, run runner, q domain.ListQuery, w *where, union *memberUnion, keys, dirs []string) ([]domain.Meta, error) {
	if q.Marker != "" {
		if err := r.addMarker(ctx, run, w, q.Marker, keys, dirs); err != nil {
			return nil, err
		}
	}
	if r.d.dialect == dialectSQLite {
		return r.listSQLite(ctx, run, w, keys, dirs, q.Limit)
	}
	order := make([]string, len(keys))
	for i, k := range keys {
		order[i] = sortColumns[k] + " " + strings.ToUpper(dirs[i])
	}
	orderBy := " ORDER BY " + strings.Join(order, ", ")
	limit, limitArgs := "", []any(nil)
	if q.Limit > 0 {
		// A parameter, not a literal: every limit shares one statement text.
		limit, limitArgs = " LIMIT ?", []any{q.Limit}
	}
	sqlText := "SELECT " + imageColumns + " FROM images WHERE " + w.sql() + orderBy + limit
	args := slices.Concat(w.args, limitArgs)
	if union != nil {
		branch := func(vis string) string {
			return "(SELECT " + imageColumns + " FROM images WHERE " + w.sql() + " AND " + vis + orderBy + limit + ")"
		}
		sqlText = "SELECT " + imageColumns + " FROM (" + branch(union.own) + " UNION ALL " + branch(union.shared) +
			") images" + orderBy + limit
		args = slices.Concat(w.args, union.ownArgs, limitArgs, w.args, union.sharedArgs, limitArgs, limitArgs)
	}
	if r.d.jsonAgg {
		// The page is chosen first, in a derived table of the same name,
		// and its rows come with their children as JSON: for a page of
		// many images, fewer rows than the UNION of queryImages, and no
		// temporary table of TEXT columns.
		sqlText = "SELECT " + imageColumns + ", " + mysqlChildColumns + " FROM (" + sqlText + ") images" + orderBy
		return r.queryImagesJSON(ctx, run, sqlText, args)
	}
	return r.queryImages(ctx, run, sqlText, args)
}

// listSQLite runs a listing on SQLite in one statement. The page is chosen
// on row ids and sort keys alone, which keeps small the rows that the sort
// compares (every image that ties on created_at, for one); the page's ids
// are gathered in order into a JSON array, and only the page's rows are
// then read, with their children, each with its position in the array.
func (r *ImageRepo) listSQLite(ctx context.Context, run runner, w *where, keys, dirs []string, limit int) ([]domain.Meta, error) {
	keyCols := make([]string, len(keys))
	order := make([]string, len(keys))
	byAlias := make([]string, len(keys))
	for i, k := range keys {
		alias := "s" + strconv.Itoa(i)
		dir := " " + strings.ToUpper(dirs[i])
		keyCols[i] = sortColumns[k] + " AS " + alias
		order[i] = sortColumns[k] + dir
		byAlias[i] = alias + dir
	}
	if limit < 0 {
		limit = -1 // SQLite: no limit
	}
	where := w.sql() + " ORDER BY " + strings.Join(order, ", ") + " LIMIT ?"
	c := r.d.cache
	if c != nil && run.tx == nil {
		if metas, ok, err := r.listCached(ctx, run, c, where, append(slices.Clone(w.args), limit)); err != nil || ok {
			return metas, err
		}
	}
	var epoch uint64
	if c != nil {
		epoch = c.begin()
	}
	metas, err := r.listRows(ctx, run, w, where, byAlias, keyCols, limit)
	if err == nil && c != nil && run.tx == nil {
		for i := range metas {
			c.store(epoch, &metas[i])
		}
	}
	return metas, err
}

// listCached answers a listing from the record cache: the page's ids come
// from the database, in order, and their records from the cache. ok is
// false when one of them is not kept.
func (r *ImageRepo) listCached(ctx context.Context, run runner, c *recordCache, where string, args []any) (metas []domain.Meta, ok bool, err error) {
	rows, err := run.query(ctx, "SELECT images.id FROM images WHERE "+where, args...)
	if err != nil {
		return nil, false, opErr("list images", err)
	}
	defer rows.Close()
	var id string
	for rows.Next() {
		if err := rows.Scan(&id); err != nil {
			return nil, false, opErr("list images", err)
		}
		m, hit := c.lookup(id)
		if !hit {
			return nil, false, nil
		}
		r.markMember(&m)
		metas = append(metas, m)
	}
	if err := rows.Err(); err != nil {
		return nil, false, opErr("list images", err)
	}
	return metas, true, opErr("list images", rows.Close())
}

// listRows is listSQLite's statement: where is the page's WHERE clause
// with its ORDER BY and LIMIT.
func (r *ImageRepo) listRows(ctx context.Context, run runner, w *where, where string, byAlias, keyCols []string, limit int) ([]domain.Meta, error) {
	q := "SELECT " + imageColumns + ", " + childColumns("images.id") + ", j.key" +
		" FROM json_each((SELECT json_group_array(rid ORDER BY " + strings.Join(byAlias, ", ") + ")" +
		" FROM (SELECT images.rowid AS rid, " + strings.Join(keyCols, ", ") + " FROM images WHERE " + where +
		"))) j JOIN images ON images.rowid = j.value"
	rows, err := run.query(ctx, q, append(slices.Clone(w.args), limit)...)
	if err != nil {
		return nil, opErr("list images", err)
	}
	defer rows.Close()
	var metas []domain.Meta
	var pos []int
	var props, tags, locs sql.RawBytes
	var p int
	for rows.Next() {
		m, err := scanImage(rows, &props, &tags, &locs, &p)
		if err != nil {
			return nil, opErr("list images", err)
		}
		if err := decodeChildren(&m, props, tags, locs); err != nil {
			return nil, opErr("list images", err)
		}
		r.markMember(&m)
		metas = append(metas, m)
		pos = append(pos, p)
	}
	if err := rows.Err(); err != nil {
		return nil, opErr("list images", err)
	}
	out := make([]domain.Meta, len(metas))
	for i, m := range metas {
		if pos[i] < 0 || pos[i] >= len(out) || out[pos[i]].ID != "" {
			return nil, opErr("list images", fmt.Errorf("page position %d of %d rows", pos[i], len(out)))
		}
		out[pos[i]] = m
	}
	return out, nil
}

// addVisibility adds reference §2's visibility and member_status rules
// (glance/db/sqlalchemy/api._select_images_query and image_get_all).
func (r *ImageRepo) addVisibility(w *where, q domain.ListQuery) (*memberUnion, error) {
	memberStatus := q.MemberStatus
	if memberStatus == "" {
		memberStatus = string(domain.MemberAccepted)
	}
	if memberStatus != "all" && !domain.MemberStatus(memberStatus).Valid() {
		return nil, domain.Errorf(domain.ErrInvalid, "Invalid status: %s", memberStatus)
	}
	var union *memberUnion
	if !r.c.IsAdmin {
		// The union of public and community images, the caller's own, and
		// shared images with a membership row for the caller in the asked
		// status. Glance also lists, to a caller without a project, every
		// shared image that has any member; such a caller cannot read them,
		// so they are left out here.
		if r.c.ProjectID == "" {
			w.add("images.visibility IN ('public', 'community')")
		} else {
			member := "m.image_id = images.id AND +m.deleted = 0 AND m.member = ?"
			margs := []any{r.c.ProjectID, r.c.ProjectID}
			if memberStatus != "all" {
				member += " AND m.status = ?"
				margs = append(margs, memberStatus)
			}
			// On SQLite, "+" keeps the planner from answering the OR with
			// one index per branch and then sorting every visible image:
			// walking the sort key's index stops after one page.
			plus := ""
			if r.d.dialect == dialectSQLite {
				plus = "+"
			}
			if r.d.dialect == dialectMySQL {
				// Two branches of a UNION instead of one OR (see
				// memberUnion).
				union = &memberUnion{
					own: "(images.visibility IN ('public', 'community') OR images.owner = ?)", ownArgs: margs[:1],
					shared: "images.visibility = 'shared' AND (images.owner IS NULL OR images.owner <> ?)" +
						" AND EXISTS (SELECT 1 FROM image_members m WHERE " + member + ")",
					sharedArgs: margs,
				}
			} else {
				w.add("("+plus+"images.visibility IN ('public', 'community') OR "+plus+"images.owner = ? OR"+
					" (images.visibility = 'shared' AND EXISTS (SELECT 1 FROM image_members m WHERE "+member+")))", margs...)
			}
		}
	}
	switch v := q.Visibility; {
	case v == "all":
	case v != "":
		if !domain.Visibility(v).Valid() {
			return nil, domain.Errorf(domain.ErrInvalid, "Invalid visibility value: %s", v)
		}
		w.add("images.visibility = ?", v)
	case r.c.ProjectID == "":
		w.add("images.visibility <> 'community'")
	default:
		w.add("(images.owner = ? OR images.visibility <> 'community')", r.c.ProjectID)
	}
	return union, nil
}

// sortKeys validates the sort keys and appends created_at and id as
// tie-breakers. They take the direction of the given keys when all agree
// (Glance: a single sort_dir), desc otherwise.
func sortKeys(sort []domain.SortKey) (keys, dirs []string, err error) {
	tie := "desc"
	for i, s := range sort {
		if _, ok := sortColumns[s.Key]; !ok {
			return nil, nil, domain.Errorf(domain.ErrInvalid,
				"Invalid sort key: %s. It must be one of the following: name, status, container_format, disk_format, size, id, created_at, updated_at.", s.Key)
		}
		dir := strings.ToLower(s.Dir)
		if dir == "" {
			dir = "desc"
		}
		if dir != "asc" && dir != "desc" {
			return nil, nil, domain.Errorf(domain.ErrInvalid, "Invalid sort direction: %s", s.Dir)
		}
		if i == 0 {
			tie = dir
		} else if dir != tie {
			tie = "desc"
		}
		seen := false
		for _, k := range keys {
			seen = seen || k == s.Key
		}
		if !seen {
			keys = append(keys, s.Key)
			dirs = append(dirs, dir)
		}
	}
	for _, k := range []string{"created_at", "id"} {
		seen := false
		for _, have := range keys {
			seen = seen || have == k
		}
		if !seen {
			keys = append(keys, k)
			dirs = append(dirs, tie)
		}
	}
	return keys, dirs, nil
}

// addMarker adds the keyset condition that starts the page after the
// marker image: (k1 > v1) OR (k1 = v1 AND k2 > v2) OR ..., with < for
// descending keys. The marker must be visible to the caller.
func (r *ImageRepo) addMarker(ctx context.Context, run runner, w *where, marker string, keys, dirs []string) error {
	invalid := domain.Errorf(domain.ErrInvalid, "No image found with ID %s", marker)
	if len(marker) > idMaxLen {
		return invalid
	}
	exprs := make([]string, len(keys))
	for i, k := range keys {
		exprs[i] = sortColumns[k]
	}
	vis, vargs := r.visibleClause()
	rows, err := run.query(ctx, "SELECT "+strings.Join(exprs, ", ")+" FROM images WHERE images.id = ? AND +images.deleted = 0 AND "+vis,
		append([]any{marker}, vargs...)...)
	if err != nil {
		return opErr("list images", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return opErr("list images", err)
		}
		return invalid
	}
	vals := make([]any, len(keys))
	ptrs := make([]any, len(keys))
	for i, k := range keys {
		if k == "created_at" || k == "updated_at" {
			var t dbTime
			ptrs[i] = &t
		} else {
			ptrs[i] = &vals[i]
		}
	}
	if err := rows.Scan(ptrs...); err != nil {
		return opErr("list images", err)
	}
	for i, p := range ptrs {
		if t, ok := p.(*dbTime); ok {
			vals[i] = *t
		} else if b, ok := vals[i].([]byte); ok {
			vals[i] = string(b)
		}
	}
	var ors []string
	var args []any
	for i := range keys {
		var ands []string
		for j := 0; j < i; j++ {
			ands = append(ands, exprs[j]+" = ?")
			args = append(args, vals[j])
		}
		op := ">"
		if dirs[i] == "desc" {
			op = "<"
		}
		ands = append(ands, exprs[i]+" "+op+" ?")
		args = append(args, vals[i])
		ors = append(ors, "("+strings.Join(ands, " AND ")+")")
	}
	w.add("("+strings.Join(ors, " OR ")+")", args...)
	return nil
}
