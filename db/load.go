package db

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/glance-go/glance-go/domain"
)

// Get implements domain.Repo.
func (r *ImageRepo) Get(ctx context.Context, id string) (domain.Image, error) {
	if id == "" || len(id) > idMaxLen {
		return nil, notFound(id)
	}
	if c := r.d.cache; c != nil {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if m, ok := c.lookup(id); ok && r.sees(&m) {
			r.markMember(&m)
			return domain.NewImage(m), nil
		}
		epoch := c.begin()
		m, err := r.read(ctx, id)
		if err != nil {
			return nil, err
		}
		c.store(epoch, &m)
		return domain.NewImage(m), nil
	}
	m, err := r.read(ctx, id)
	if err != nil {
		return nil, err
	}
	return domain.NewImage(m), nil
}

// read loads the image id as the caller sees it from the database.
func (r *ImageRepo) read(ctx context.Context, id string) (m domain.Meta, err error) {
	err = r.d.read(ctx, func(ctx context.Context, run runner) error {
		m, err = r.get(ctx, run, id)
		return err
	})
	return m, err
}

// sees reports whether the caller may see the live image m without asking
// the database: visibleClause in Go, except for a shared image the caller
// does not own, whose membership only the database knows (false then).
func (r *ImageRepo) sees(m *domain.Meta) bool {
	switch {
	case r.c.IsAdmin, m.Owner == nil,
		m.Visibility == domain.VisibilityPublic, m.Visibility == domain.VisibilityCommunity:
		return true
	}
	return r.c.Owns(m.Owner)
}

// get loads one visible, non-deleted image with its children: one
// statement on SQLite, two on MySQL (the image, then its children).
func (r *ImageRepo) get(ctx context.Context, run runner, id string) (domain.Meta, error) {
	vis, vargs := r.visibility()
	args := append([]any{id}, vargs...)
	if r.d.dialect == dialectSQLite {
		m, err := r.getSQLite(ctx, run, id, getQueries[dialectSQLite][vis], args)
		if isJSONBlob(err) {
			// A column holds a BLOB, which SQLite's JSON cannot: read the
			// columns one by one, as a listing does.
			m, err = r.getSQLiteColumns(ctx, run, id, getColumnQueries[vis], args)
		}
		return m, err
	}
	return r.getMySQL(ctx, run, id, getQueries[dialectMySQL][vis], append(args, id, id, id))
}

// getMySQL runs q, a statement of getQueries for MySQL: the image row as
// a JSON array, then its children, in one statement, so that they are
// read in one snapshot. Two statements saw, now and then, the row of an
// image before a concurrent delete and its children after it.
func (r *ImageRepo) getMySQL(ctx context.Context, run runner, id, q string, args []any) (domain.Meta, error) {
	rows, err := run.query(ctx, q, args...)
	if err != nil {
		return domain.Meta{}, opErr("get image", err)
	}
	defer rows.Close()
	var (
		m     domain.Meta
		found bool
		kids  []childRow
	)
	for rows.Next() {
		var c childRow
		if err := rows.Scan(&c.kind, &c.a, &c.b, &c.status, &c.id); err != nil {
			return domain.Meta{}, opErr("get image", err)
		}
		if c.kind == imageRowKind {
			if m, err = decodeImageRow([]byte(c.a.String)); err != nil {
				return domain.Meta{}, opErr("get image", err)
			}
			found = true
			continue
		}
		kids = append(kids, c)
	}
	if err := rows.Err(); err != nil {
		return domain.Meta{}, opErr("get image", err)
	}
	if !found {
		return domain.Meta{}, notFound(id)
	}
	for _, c := range kids {
		if err := c.fill(&m); err != nil {
			return domain.Meta{}, opErr("get image", err)
		}
	}
	sortChildren(&m)
	r.markMember(&m)
	return m, nil
}

// imageRowKind tags the image row among the child rows of a MySQL get.
const imageRowKind = 9

// childRow is one row of imageChildRows: kind 0 a property (a name, b
// value), 1 a tag (a), 2 a location (a url, b meta_data, status, id).
type childRow struct {
	kind         int
	a, b, status sql.NullString
	id           sql.NullInt64
}

func (c *childRow) fill(m *domain.Meta) error {
	switch c.kind {
	case 0:
		m.Properties[c.a.String] = c.b.String
	case 1:
		m.Tags = append(m.Tags, c.a.String)
	case 2:
		m.Locations = append(m.Locations, domain.Location{ID: c.id.Int64, URL: c.a.String, Metadata: decodeMeta(c.b), Status: c.status.String})
	default:
		return fmt.Errorf("a child row of kind %d", c.kind)
	}
	return nil
}

// sortChildren puts tags and locations in the order the API shows.
func sortChildren(m *domain.Meta) {
	slices.Sort(m.Tags)
	m.Tags = slices.Compact(m.Tags)
	slices.SortFunc(m.Locations, func(a, b domain.Location) int { return cmp.Compare(a.ID, b.ID) })
}

// getQueries are get's statements by dialect and form of the visibility
// clause, built once: the image row as a JSON array with its children, on
// SQLite in columns, on MySQL in rows (getMySQL).
var getQueries = func() (q [2][len(visClauses)]string) {
	for k, vis := range visClauses {
		where := " FROM images WHERE images.id = ? AND +images.deleted = 0 AND " + vis
		q[dialectSQLite][k] = "SELECT json_array(" + imageColumns + "), " + childColumns("images.id") + where
		q[dialectMySQL][k] = "SELECT " + strconv.Itoa(imageRowKind) + ", JSON_ARRAY(" + imageColumns + "), NULL, NULL, NULL" +
			where + " UNION ALL " + fmt.Sprintf(imageChildRows, "= ?")
	}
	return q
}()

// getColumnQueries are the SQLite get statements with the image row as
// columns, for rows that json_array cannot render.
var getColumnQueries = func() (q [len(visClauses)]string) {
	for k, vis := range visClauses {
		q[k] = "SELECT " + imageColumns + ", " + childColumns("images.id") +
			" FROM images WHERE images.id = ? AND +images.deleted = 0 AND " + vis
	}
	return q
}()

// isJSONBlob reports whether err is SQLite refusing a BLOB in JSON.
func isJSONBlob(err error) bool {
	return err != nil && strings.Contains(err.Error(), "JSON cannot hold BLOB values")
}

// getSQLiteColumns runs q, which selects one image as imageColumns
// followed by the three columns of childColumns.
func (r *ImageRepo) getSQLiteColumns(ctx context.Context, run runner, id, q string, args []any) (domain.Meta, error) {
	rows, err := run.query(ctx, q, args...)
	if err != nil {
		return domain.Meta{}, opErr("get image", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return domain.Meta{}, opErr("get image", err)
		}
		return domain.Meta{}, notFound(id)
	}
	var props, tags, locs sql.RawBytes
	m, err := scanImage(rows, &props, &tags, &locs)
	if err == nil {
		err = decodeChildren(&m, props, tags, locs)
	}
	if err != nil {
		return domain.Meta{}, opErr("get image", err)
	}
	r.markMember(&m)
	return m, opErr("get image", rows.Close())
}

// getSQLite runs q, which selects one image as a JSON array of
// imageColumns followed by the three columns of childColumns. Four columns
// instead of twenty-two save the driver most of its work per column.
func (r *ImageRepo) getSQLite(ctx context.Context, run runner, id, q string, args []any) (domain.Meta, error) {
	// The driver starts a goroutine for every statement whose context can
	// end, to interrupt it then; for this read of one row by its key that
	// costs more than the read, and the thread hand-offs it brings add to
	// every show. The statement, and its wait for a pooled connection, run
	// to their end once begun; an ended ctx is refused before.
	if err := ctx.Err(); err != nil {
		return domain.Meta{}, err
	}
	rows, err := run.query(context.WithoutCancel(ctx), q, args...)
	if err != nil {
		return domain.Meta{}, opErr("get image", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return domain.Meta{}, opErr("get image", err)
		}
		return domain.Meta{}, notFound(id)
	}
	var img, props, tags, locs sql.RawBytes
	if err := rows.Scan(&img, &props, &tags, &locs); err != nil {
		return domain.Meta{}, opErr("get image", err)
	}
	m, err := decodeImageRow(img)
	if err == nil {
		err = decodeChildren(&m, props, tags, locs)
	}
	if err != nil {
		return domain.Meta{}, opErr("get image", err)
	}
	r.markMember(&m)
	return m, opErr("get image", rows.Close())
}

// childColumns returns three SQLite expressions that aggregate, as JSON
// text, the live properties (an object), tags (an array) and locations (an
// array of [id, url, meta_data, status]) of the image whose id is idExpr.
// Loading them with the image row saves a statement per table.
func childColumns(idExpr string) string {
	return "(SELECT json_group_object(p.name, COALESCE(p.value, '')) FROM image_properties p" +
		" WHERE p.image_id = " + idExpr + " AND +p.deleted = 0), " +
		"(SELECT json_group_array(t.value) FROM image_tags t WHERE t.image_id = " + idExpr + " AND +t.deleted = 0), " +
		"(SELECT json_group_array(json_array(l.id, l.value, l.meta_data, l.status)) FROM image_locations l" +
		" WHERE l.image_id = " + idExpr + " AND +l.deleted = 0)"
}

// decodeChildren fills m from the three columns of childColumns.
func decodeChildren(m *domain.Meta, props, tags, locs []byte) error {
	if len(props) > 2 {
		if err := decodeStringMap(props, m.Properties); err != nil {
			return err
		}
	}
	if len(tags) > 2 {
		var err error
		if m.Tags, err = decodeStrings(tags); err != nil {
			return err
		}
		slices.Sort(m.Tags)
		m.Tags = slices.Compact(m.Tags)
	}
	if len(locs) > 2 {
		var rows [][4]any
		if err := json.Unmarshal(locs, &rows); err != nil {
			return err
		}
		for _, row := range rows {
			id, _ := row[0].(float64)
			url, _ := row[1].(string)
			status, _ := row[3].(string)
			meta := sql.NullString{}
			meta.String, meta.Valid = row[2].(string)
			m.Locations = append(m.Locations, domain.Location{ID: int64(id), URL: url, Metadata: decodeMeta(meta), Status: status})
		}
		slices.SortFunc(m.Locations, func(a, b domain.Location) int { return cmp.Compare(a.ID, b.ID) })
	}
	return nil
}

// queryImages runs a SELECT of imageColumns (MySQL's get and list) and
// loads the images' children.
func (r *ImageRepo) queryImages(ctx context.Context, run runner, q string, args []any) ([]domain.Meta, error) {
	rows, err := run.query(ctx, q, args...)
	if err != nil {
		return nil, opErr("get image", err)
	}
	defer rows.Close()
	var out []domain.Meta
	for rows.Next() {
		m, err := scanImage(rows)
		if err != nil {
			return nil, opErr("get image", err)
		}
		r.markMember(&m)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, opErr("get image", err)
	}
	if err := rows.Close(); err != nil {
		return nil, opErr("get image", err)
	}
	if err := r.loadChildren(ctx, run, out); err != nil {
		return nil, err
	}
	return out, nil
}

// mysqlChildColumns are childColumns for MySQL and MariaDB: the same JSON
// documents, built with their aggregate functions, for the row of images
// the statement reads.
const mysqlChildColumns = "(SELECT JSON_OBJECTAGG(p.name, COALESCE(p.value, '')) FROM image_properties p" +
	" WHERE p.image_id = images.id AND p.deleted = 0), " +
	"(SELECT JSON_ARRAYAGG(t.value) FROM image_tags t WHERE t.image_id = images.id AND t.deleted = 0), " +
	"(SELECT JSON_ARRAYAGG(JSON_ARRAY(l.id, l.value, l.meta_data, l.status)) FROM image_locations l" +
	" WHERE l.image_id = images.id AND l.deleted = 0)"

// queryImagesJSON runs a MySQL SELECT of imageColumns followed by
// mysqlChildColumns.
func (r *ImageRepo) queryImagesJSON(ctx context.Context, run runner, q string, args []any) ([]domain.Meta, error) {
	rows, err := run.query(ctx, q, args...)
	if err != nil {
		return nil, opErr("get image", err)
	}
	defer rows.Close()
	var out []domain.Meta
	var props, tags, locs []byte
	for rows.Next() {
		m, err := scanImage(rows, &props, &tags, &locs)
		if err == nil {
			err = decodeChildren(&m, props, tags, locs)
		}
		if err != nil {
			return nil, opErr("get image", err)
		}
		r.markMember(&m)
		out = append(out, m)
	}
	return out, opErr("get image", rows.Err())
}

// childBatch bounds the ids of one IN list.
const childBatch = 500

// loadChildren fills the properties, tags and locations of metas: on SQLite
// in one statement whatever their number, on MySQL with one query per
// table and batch of ids, never one per image.
func (r *ImageRepo) loadChildren(ctx context.Context, run runner, metas []domain.Meta) error {
	if len(metas) == 0 {
		return nil
	}
	index := make(map[string]int, len(metas))
	for i := range metas {
		index[metas[i].ID] = i
	}
	if r.d.dialect == dialectSQLite {
		return r.loadChildrenSQLite(ctx, run, metas, index)
	}
	for start := 0; start < len(metas); start += childBatch {
		end := min(start+childBatch, len(metas))
		ids := make([]string, 0, end-start)
		for _, m := range metas[start:end] {
			ids = append(ids, m.ID)
		}
		if err := loadChildRows(ctx, run, ids, metas, index); err != nil {
			return err
		}
	}
	for i := range metas {
		sortChildren(&metas[i])
	}
	return nil
}

// imageChildRows reads the live properties, tags and locations of images
// (its %[1]s is "= ?" or an IN list, the argument three times) in one
// statement, each row tagged with its table (see childRow). MySQL plans
// three index lookups; the same rows through correlated aggregates cost
// it more.
const imageChildRows = "SELECT 0, name, value, NULL, NULL FROM image_properties WHERE image_id %[1]s AND deleted = 0" +
	" UNION ALL SELECT 1, value, NULL, NULL, NULL FROM image_tags WHERE image_id %[1]s AND deleted = 0" +
	" UNION ALL SELECT 2, value, meta_data, status, id FROM image_locations WHERE image_id %[1]s AND deleted = 0"

// childRowsQuery is imageChildRows for several images, with each row's
// image id first.
const childRowsQuery = "SELECT image_id, 0, name, value, NULL, NULL FROM image_properties" +
	" WHERE image_id IN %[1]s AND deleted = 0" +
	" UNION ALL SELECT image_id, 1, value, NULL, NULL, NULL FROM image_tags WHERE image_id IN %[1]s AND deleted = 0" +
	" UNION ALL SELECT image_id, 2, value, meta_data, status, id FROM image_locations" +
	" WHERE image_id IN %[1]s AND deleted = 0"

// loadChildRows fills the children of the images ids, at most childBatch
// of them, from one statement.
func loadChildRows(ctx context.Context, run runner, ids []string, metas []domain.Meta, index map[string]int) error {
	in, args := inList(ids)
	rows, err := run.query(ctx, fmt.Sprintf(childRowsQuery, in), slices.Concat(args, args, args)...)
	if err != nil {
		return opErr("load children", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			imageID string
			c       childRow
		)
		if err := rows.Scan(&imageID, &c.kind, &c.a, &c.b, &c.status, &c.id); err != nil {
			return opErr("load children", err)
		}
		if i, ok := index[imageID]; ok {
			if err := c.fill(&metas[i]); err != nil {
				return opErr("load children", err)
			}
		}
	}
	return opErr("load children", rows.Err())
}

// loadChildrenSQLite passes the ids as one JSON array, so that a single
// prepared statement serves pages of any size.
func (r *ImageRepo) loadChildrenSQLite(ctx context.Context, run runner, metas []domain.Meta, index map[string]int) error {
	ids := make([]string, len(metas))
	for i := range metas {
		ids[i] = metas[i].ID
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return opErr("load children", err)
	}
	rows, err := run.query(ctx, "SELECT j.value, "+childColumns("j.value")+" FROM json_each(?) j", string(list))
	if err != nil {
		return opErr("load children", err)
	}
	defer rows.Close()
	var id string
	var props, tags, locs sql.RawBytes
	for rows.Next() {
		if err := rows.Scan(&id, &props, &tags, &locs); err != nil {
			return opErr("load children", err)
		}
		if i, ok := index[id]; ok {
			if err := decodeChildren(&metas[i], props, tags, locs); err != nil {
				return opErr("load children", err)
			}
		}
	}
	return opErr("load children", rows.Err())
}
