package db

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"

	"github.com/glance-go/glance-go/domain"
)

// idMaxLen is the width of images.id: longer ids cannot exist.
const idMaxLen = 36

// ImageRepo is the innermost domain.Repo: images as one caller sees them
// (glance/db ImageRepo over glance/db/sqlalchemy/api.py).
type ImageRepo struct {
	d *DB
	c domain.Caller
}

var _ domain.Repo = (*ImageRepo)(nil)

// Images returns the image repository for caller c. A nil c is an
// anonymous caller with no project.
func (d *DB) Images(c *domain.Caller) domain.Repo {
	r := &ImageRepo{d: d}
	if c != nil {
		r.c = *c
	}
	return r
}

func notFound(id string) error {
	return domain.Errorf(domain.ErrNotFound, "No image found with ID %s", id)
}

// visKind names the three forms of visibleClause.
type visKind int

const (
	visAll     visKind = iota // an admin
	visNoOwner                // a caller without a project
	visProject                // a caller with a project, twice an argument
)

var visClauses = [...]string{
	visAll:     "1 = 1",
	visNoOwner: "(images.owner IS NULL OR images.visibility IN ('public', 'community'))",
	visProject: "(images.owner IS NULL OR images.visibility IN ('public', 'community')" +
		" OR images.owner = ? OR (images.visibility = 'shared' AND EXISTS (SELECT 1 FROM image_members m" +
		" WHERE m.image_id = images.id AND m.member = ? AND +m.deleted = 0)))",
}

// visibility returns the form of visibleClause for the caller and its
// arguments.
func (r *ImageRepo) visibility() (visKind, []any) {
	switch {
	case r.c.IsAdmin:
		return visAll, nil
	case r.c.ProjectID == "":
		return visNoOwner, nil
	}
	return visProject, []any{r.c.ProjectID, r.c.ProjectID}
}

// markMember records, on a shared image the caller does not own, that the
// caller sees it as a member (the image's member status applies to it).
func (r *ImageRepo) markMember(m *domain.Meta) {
	if m.Visibility == domain.VisibilityShared && !r.c.Owns(m.Owner) {
		m.Member = r.c.ProjectID
	}
}

// visibleClause is the SQL form of glance/db/utils.is_image_visible for
// the caller: admin sees everything; anyone sees images without an owner
// and public or community ones; a project sees its own and the shared ones
// it is a member of, whatever the member status.
func (r *ImageRepo) visibleClause() (string, []any) {
	k, args := r.visibility()
	return visClauses[k], args
}

// mutable is glance/db/sqlalchemy/api.is_image_mutable.
func (r *ImageRepo) mutable(owner *string) bool {
	if r.c.IsAdmin {
		return true
	}
	return owner != nil && r.c.ProjectID != "" && *owner == r.c.ProjectID
}

// check4Byte refuses text that Glance's utf8 (3-byte) MySQL columns cannot
// hold, as glance/common/utils.no_4byte_params does.
func check4Byte(m *domain.Meta) error {
	has4 := func(s string) bool {
		for _, r := range s {
			if utf8.RuneLen(r) == 4 {
				return true
			}
		}
		return false
	}
	field := func(name string, p *string) error {
		if p != nil && has4(*p) {
			return domain.Errorf(domain.ErrInvalid, "%s can't contain 4 byte unicode characters.", name)
		}
		return nil
	}
	for _, f := range []struct {
		name string
		p    *string
	}{{"Name", m.Name}, {"Owner", m.Owner}, {"Disk_Format", m.DiskFormat}, {"Container_Format", m.ContainerFormat}} {
		if err := field(f.name, f.p); err != nil {
			return err
		}
	}
	for k, v := range m.Properties {
		if has4(k) {
			return domain.Errorf(domain.ErrInvalid, "Property names can't contain 4 byte unicode.")
		}
		if has4(v) {
			return domain.Errorf(domain.ErrInvalid, "%s can't contain 4 byte unicode characters.", titleCase(k))
		}
	}
	for _, t := range m.Tags {
		if has4(t) {
			return domain.Errorf(domain.ErrInvalid, "Value can't contain 4 byte unicode characters.")
		}
	}
	for _, l := range m.Locations {
		if has4(l.URL) {
			return domain.Errorf(domain.ErrInvalid, "Url can't contain 4 byte unicode characters.")
		}
	}
	return nil
}

// titleCase upper-cases the first letter of each word, as Python's str.title.
func titleCase(s string) string {
	var b strings.Builder
	up := true
	for _, r := range s {
		isLetter := (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || r > 127
		switch {
		case isLetter && up:
			b.WriteString(strings.ToUpper(string(r)))
			up = false
		case isLetter:
			b.WriteString(strings.ToLower(string(r)))
		default:
			b.WriteRune(r)
			up = !(r >= '0' && r <= '9')
		}
	}
	return b.String()
}

// core returns the record of img, whichever layer it comes from.
func core(img domain.Image) domain.Meta {
	return img.Meta()
}

func now() time.Time { return time.Now().UTC().Truncate(time.Second) }

// isDuplicate reports whether err is a unique-key violation.
func isDuplicate(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return true
	}
	s := err.Error()
	return strings.Contains(s, "UNIQUE constraint failed") || strings.Contains(s, "Duplicate entry") ||
		strings.Contains(s, "Error 1062")
}

// Add implements domain.Repo. The image, its properties, tags and locations
// are written in one transaction; a taken id fails the first insert.
func (r *ImageRepo) Add(ctx context.Context, img domain.Image) error {
	m := core(img)
	if m.ID == "" || len(m.ID) > idMaxLen {
		return domain.Errorf(domain.ErrInvalid, "Invalid image id %q", m.ID)
	}
	if err := check4Byte(&m); err != nil {
		return err
	}
	if !m.Visibility.Valid() {
		return domain.Errorf(domain.ErrInvalid, "Invalid visibility value: %s", m.Visibility)
	}
	if !m.Status.Valid() {
		return domain.Errorf(domain.ErrInvalid, "Invalid image status '%s' for image.", m.Status)
	}
	created := m.CreatedAt
	if created.IsZero() {
		created = now()
	}
	updated := m.UpdatedAt
	if updated.IsZero() {
		updated = created
	}
	if r.d.dialect == dialectMySQL {
		// Glance's DATETIME columns have no fraction and MySQL would round
		// one; store the whole second the API already showed.
		created, updated = created.Truncate(time.Second), updated.Truncate(time.Second)
	}
	conflict := domain.Errorf(domain.ErrConflict, "Image ID %s already exists!", m.ID)
	var kept domain.Meta
	err := r.d.writeKeeping(ctx, func(run runner) error {
		var owner *string
		if m.Owner != nil && *m.Owner != "" {
			owner = m.Owner
		}
		deleted := 0
		if m.DeletedAt != nil || m.Status == domain.StatusDeleted {
			deleted = 1
		}
		_, err := run.exec(ctx, "INSERT INTO images (id, name, size, status, created_at, updated_at, deleted_at, deleted,"+
			" disk_format, container_format, checksum, owner, min_disk, min_ram, protected, virtual_size,"+
			" visibility, os_hidden, os_hash_algo, os_hash_value)"+
			" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			m.ID, nullStr(m.Name), nullInt(m.Size), string(m.Status), ts(created), ts(updated), tsPtr(m.DeletedAt), deleted,
			nullStr(m.DiskFormat), nullStr(m.ContainerFormat), nullStr(m.Checksum), nullStr(owner),
			m.MinDisk, m.MinRAM, boolInt(m.Protected), nullInt(m.VirtualSize),
			string(m.Visibility), boolInt(m.Hidden), nullStr(m.HashAlgo), nullStr(m.HashValue))
		if isDuplicate(err) {
			return conflict
		}
		if err != nil {
			return opErr("add image", err)
		}
		// A new id has no child rows yet: insert them all at once.
		t := now()
		if err := r.insertProperties(ctx, run, m.ID, m.Properties, t); err != nil {
			return err
		}
		if err := r.insertTags(ctx, run, m.ID, m.Tags, t); err != nil {
			return err
		}
		if len(m.Locations) > 0 {
			if err := syncLocations(ctx, run, m.ID, m.Locations, t, nil); err != nil {
				return err
			}
		}
		r.readBack(ctx, run, &kept, m.ID)
		return nil
	}, &kept, m.ID)
	if isDuplicate(err) {
		return conflict
	}
	return opErr("add image", err)
}

// readBack reads image id at the end of a write transaction, after its
// changes, into keep, so that the shows and listings after a create or an
// update find it in the record cache. The pages it reads are the ones the
// transaction has just written. A failure leaves keep empty, and the image
// to the next reader.
func (r *ImageRepo) readBack(ctx context.Context, run runner, keep *domain.Meta, id string) {
	if r.d.cache == nil {
		return
	}
	if m, err := r.get(ctx, run, id); err == nil {
		*keep = m
	}
}

// insertProperties inserts the properties of a new image in one statement.
func (r *ImageRepo) insertProperties(ctx context.Context, run runner, id string, props map[string]string, t time.Time) error {
	if len(props) == 0 {
		return nil
	}
	var err error
	if r.d.dialect == dialectSQLite {
		obj, jerr := json.Marshal(props)
		if jerr != nil {
			return opErr("save properties", jerr)
		}
		_, err = run.exec(ctx, "INSERT INTO image_properties (image_id, name, value, created_at, updated_at, deleted)"+
			" SELECT ?, j.key, j.value, ?, ?, 0 FROM json_each(?) j", id, ts(t), ts(t), string(obj))
	} else {
		names := slices.Sorted(maps.Keys(props))
		rows := make([]string, len(names))
		args := make([]any, 0, 4*len(names))
		for i, name := range names {
			rows[i] = "(?, ?, ?, ?, ?, 0)"
			args = append(args, id, name, props[name], ts(t), ts(t))
		}
		_, err = run.exec(ctx, "INSERT INTO image_properties (image_id, name, value, created_at, updated_at, deleted)"+
			" VALUES "+strings.Join(rows, ", "), args...)
	}
	return opErr("save properties", err)
}

// insertTags inserts the tags of a new image in one statement.
func (r *ImageRepo) insertTags(ctx context.Context, run runner, id string, tags []string, t time.Time) error {
	set := slices.Clone(tags)
	slices.Sort(set)
	set = slices.Compact(set)
	if len(set) == 0 {
		return nil
	}
	var err error
	if r.d.dialect == dialectSQLite {
		arr, jerr := json.Marshal(set)
		if jerr != nil {
			return opErr("save tags", jerr)
		}
		_, err = run.exec(ctx, "INSERT INTO image_tags (image_id, value, created_at, updated_at, deleted)"+
			" SELECT ?, j.value, ?, ?, 0 FROM json_each(?) j", id, ts(t), ts(t), string(arr))
	} else {
		rows := make([]string, len(set))
		args := make([]any, 0, 3*len(set))
		for i, tag := range set {
			rows[i] = "(?, ?, ?, ?, 0)"
			args = append(args, id, tag, ts(t), ts(t))
		}
		_, err = run.exec(ctx, "INSERT INTO image_tags (image_id, value, created_at, updated_at, deleted) VALUES "+
			strings.Join(rows, ", "), args...)
	}
	return opErr("save tags", err)
}

// Save implements domain.Repo: a compare-and-swap on the stored status,
// then the properties, tags and locations, in one transaction. Only the
// child rows that differ are written.
func (r *ImageRepo) Save(ctx context.Context, img domain.Image, from domain.Status) error {
	m := core(img)
	if m.ID == "" || len(m.ID) > idMaxLen {
		return notFound(m.ID)
	}
	if err := check4Byte(&m); err != nil {
		return err
	}
	if !m.Visibility.Valid() {
		return domain.Errorf(domain.ErrInvalid, "Invalid visibility value: %s", m.Visibility)
	}
	if !m.Status.Valid() {
		return domain.Errorf(domain.ErrInvalid, "Invalid image status '%s' for image.", m.Status)
	}
	var kept domain.Meta
	err := r.d.writeKeeping(ctx, func(run runner) error {
		cur, err := r.lockForMutation(ctx, run, m.ID, true)
		if err != nil {
			return err
		}
		if from != "" && cur.status != from {
			return casConflict(cur.status, m.Status, from)
		}
		t := now()
		var owner *string
		if m.Owner != nil && *m.Owner != "" {
			owner = m.Owner
		}
		q := "UPDATE images SET name = ?, size = ?, status = ?, updated_at = ?, disk_format = ?, container_format = ?," +
			" checksum = ?, owner = ?, min_disk = ?, min_ram = ?, protected = ?, virtual_size = ?, visibility = ?," +
			" os_hidden = ?, os_hash_algo = ?, os_hash_value = ? WHERE id = ? AND +deleted = 0"
		args := []any{nullStr(m.Name), nullInt(m.Size), string(m.Status), ts(t), nullStr(m.DiskFormat),
			nullStr(m.ContainerFormat), nullStr(m.Checksum), nullStr(owner), m.MinDisk, m.MinRAM,
			boolInt(m.Protected), nullInt(m.VirtualSize), string(m.Visibility), boolInt(m.Hidden),
			nullStr(m.HashAlgo), nullStr(m.HashValue), m.ID}
		if from != "" {
			q += " AND status = ?"
			args = append(args, string(from))
		}
		res, err := run.exec(ctx, q, args...)
		if err != nil {
			return opErr("save image", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return opErr("save image", err)
		} else if n == 0 {
			return r.whyNotSaved(ctx, run, m.ID, m.Status, from)
		}
		if err := syncProperties(ctx, run, m.ID, m.Properties, t, cur.kids.props); err != nil {
			return err
		}
		if err := syncTags(ctx, run, m.ID, m.Tags, t, cur.kids.tags); err != nil {
			return err
		}
		if err := syncLocations(ctx, run, m.ID, m.Locations, t, cur.kids.locs); err != nil {
			return err
		}
		r.readBack(ctx, run, &kept, m.ID)
		return nil
	}, &kept, m.ID)
	return opErr("save image", err)
}

func casConflict(current, next, from domain.Status) error {
	return domain.Errorf(domain.ErrConflict,
		"cannot transition from %s to %s in update (wanted from_state=%s)", current, next, from)
}

// whyNotSaved explains an UPDATE that matched no row.
func (r *ImageRepo) whyNotSaved(ctx context.Context, run runner, id string, next, from domain.Status) error {
	var st string
	found, err := run.queryRow(ctx, "SELECT status FROM images WHERE id = ? AND +deleted = 0", []any{id}, &st)
	if err != nil {
		return opErr("save image", err)
	}
	if !found {
		return notFound(id)
	}
	return casConflict(domain.Status(st), next, from)
}

// stored is what a mutation checks before it writes.
type stored struct {
	owner  *string
	status domain.Status
	kids   storedChildren
}

// storedChildren are an image's child rows as a Save finds them.
type storedChildren struct {
	props map[string]propRow // every row, soft-deleted ones too
	tags  []string           // live tags
	locs  map[int64]locRow   // live locations
}

type propRow struct {
	id      int64
	value   sql.NullString
	deleted bool
}

type locRow struct {
	value, status string
	meta          sql.NullString
}

// savedChildColumns are SQLite expressions that read, with the image row,
// the child rows a Save compares with: every property row as
// [id, name, value, deleted], the live tags, and the live locations as
// [id, url, meta_data, status].
const savedChildColumns = "(SELECT json_group_array(json_array(p.id, p.name, p.value, p.deleted)) FROM image_properties p" +
	" WHERE p.image_id = images.id), " +
	"(SELECT json_group_array(t.value) FROM image_tags t WHERE t.image_id = images.id AND +t.deleted = 0), " +
	"(SELECT json_group_array(json_array(l.id, l.value, l.meta_data, l.status)) FROM image_locations l" +
	" WHERE l.image_id = images.id AND +l.deleted = 0)"

// lockForMutation reads the image row for a change, locking it on MySQL
// (SQLite write transactions hold the database lock already), and, with
// children set, the image's child rows. It returns ErrNotFound when the
// image is missing, deleted or invisible to the caller, and ErrForbidden
// when the caller may see it but does not own it
// (glance/db/sqlalchemy/api._check_mutate_authorization).
func (r *ImageRepo) lockForMutation(ctx context.Context, run runner, id string, children bool) (stored, error) {
	vis, vargs := r.visibleClause()
	cols := "images.owner, images.status"
	jsonKids := children && r.d.dialect == dialectSQLite
	if jsonKids {
		cols += ", " + savedChildColumns
	}
	q := "SELECT " + cols + " FROM images WHERE images.id = ? AND +images.deleted = 0 AND " + vis
	if r.d.dialect == dialectMySQL {
		q += " FOR UPDATE"
	}
	var owner sql.NullString
	var status string
	var props, tags, locs []byte
	dest := []any{&owner, &status}
	if jsonKids {
		dest = append(dest, &props, &tags, &locs)
	}
	found, err := run.queryRow(ctx, q, append([]any{id}, vargs...), dest...)
	if err != nil {
		return stored{}, opErr("lock image", err)
	}
	if !found {
		return stored{}, notFound(id)
	}
	s := stored{owner: strPtr(owner), status: domain.Status(status)}
	if !r.mutable(s.owner) {
		return stored{}, domain.Errorf(domain.ErrForbidden, "You do not own this image")
	}
	switch {
	case jsonKids:
		s.kids, err = decodeStoredChildren(props, tags, locs)
	case children:
		s.kids, err = readStoredChildren(ctx, run, id)
	}
	if err != nil {
		return stored{}, opErr("lock image", err)
	}
	return s, nil
}

// decodeStoredChildren reads the columns of savedChildColumns.
func decodeStoredChildren(props, tags, locs []byte) (storedChildren, error) {
	kids := storedChildren{props: map[string]propRow{}, locs: map[int64]locRow{}}
	// MySQL's aggregates of no rows are NULL, SQLite's an empty array.
	unmarshal := func(b []byte, v any) error {
		if len(b) == 0 {
			return nil
		}
		return json.Unmarshal(b, v)
	}
	var prows [][4]any
	if err := unmarshal(props, &prows); err != nil {
		return kids, err
	}
	for _, p := range prows {
		id, _ := p[0].(float64)
		name, _ := p[1].(string)
		rw := propRow{id: int64(id)}
		rw.value.String, rw.value.Valid = p[2].(string)
		del, _ := p[3].(float64)
		rw.deleted = del != 0
		kids.props[name] = rw
	}
	if err := unmarshal(tags, &kids.tags); err != nil {
		return kids, err
	}
	var lrows [][4]any
	if err := unmarshal(locs, &lrows); err != nil {
		return kids, err
	}
	for _, l := range lrows {
		id, _ := l[0].(float64)
		var rw locRow
		rw.value, _ = l[1].(string)
		rw.meta.String, rw.meta.Valid = l[2].(string)
		rw.status, _ = l[3].(string)
		kids.locs[int64(id)] = rw
	}
	return kids, nil
}

// storedChildrenQuery reads, in one statement, the child rows a Save
// compares with (see savedChildColumns), each tagged with its table:
// 0 (id, name, value, deleted), 1 (value) or 2 (id, value, meta_data,
// status).
const storedChildrenQuery = "SELECT 0, id, name, value, deleted FROM image_properties WHERE image_id = ?" +
	" UNION ALL SELECT 1, NULL, value, NULL, NULL FROM image_tags WHERE image_id = ? AND deleted = 0" +
	" UNION ALL SELECT 2, id, value, meta_data, status FROM image_locations WHERE image_id = ? AND deleted = 0"

// readStoredChildren reads an image's child rows with storedChildrenQuery.
func readStoredChildren(ctx context.Context, run runner, id string) (storedChildren, error) {
	kids := storedChildren{props: map[string]propRow{}, locs: map[int64]locRow{}}
	rows, err := run.query(ctx, storedChildrenQuery, id, id, id)
	if err != nil {
		return kids, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			kind    int
			rowID   sql.NullInt64
			a, b, c sql.NullString
		)
		if err := rows.Scan(&kind, &rowID, &a, &b, &c); err != nil {
			return kids, err
		}
		switch kind {
		case 0:
			kids.props[a.String] = propRow{id: rowID.Int64, value: b, deleted: c.String != "" && c.String != "0"}
		case 1:
			kids.tags = append(kids.tags, a.String)
		case 2:
			kids.locs[rowID.Int64] = locRow{value: a.String, meta: b, status: c.String}
		}
	}
	return kids, rows.Err()
}

// execIn runs q, whose "IN %s" takes the values, in batches of childBatch.
// args come before the values.
func execIn[T any](ctx context.Context, run runner, q string, args []any, vals []T) error {
	for start := 0; start < len(vals); start += childBatch {
		chunk := vals[start:min(start+childBatch, len(vals))]
		in, inArgs := inList(chunk)
		if _, err := run.exec(ctx, strings.Replace(q, "%s", in, 1), append(slices.Clone(args), inArgs...)...); err != nil {
			return err
		}
	}
	return nil
}

// syncProperties makes the live properties of image id exactly props, except
// the atomic ones (see SetPropertyAtomic), which it leaves alone, given
// every stored row of the image: changed ones are updated, removed ones
// soft-deleted, and a soft-deleted row of the same name is revived rather
// than duplicated, because (image_id, name) is unique whatever the deleted
// flag.
func syncProperties(ctx context.Context, run runner, id string, props map[string]string, t time.Time, existing map[string]propRow) error {
	for _, name := range slices.Sorted(maps.Keys(props)) {
		if atomicProperties[name] {
			continue
		}
		value := props[name]
		rw, ok := existing[name]
		var err error
		switch {
		case !ok:
			_, err = run.exec(ctx, "INSERT INTO image_properties (image_id, name, value, created_at, updated_at, deleted)"+
				" VALUES (?, ?, ?, ?, ?, 0)", id, name, value, ts(t), ts(t))
		case rw.deleted:
			_, err = run.exec(ctx, "UPDATE image_properties SET value = ?, deleted = 0, deleted_at = NULL, updated_at = ?"+
				" WHERE id = ?", value, ts(t), rw.id)
		case !rw.value.Valid || rw.value.String != value:
			_, err = run.exec(ctx, "UPDATE image_properties SET value = ?, updated_at = ? WHERE id = ?", value, ts(t), rw.id)
		}
		if err != nil {
			return opErr("save properties", err)
		}
	}
	var gone []int64
	for name, rw := range existing {
		if _, keep := props[name]; !keep && !rw.deleted && !atomicProperties[name] {
			gone = append(gone, rw.id)
		}
	}
	slices.Sort(gone)
	return opErr("save properties", execIn(ctx, run,
		"UPDATE image_properties SET deleted = 1, deleted_at = ?, updated_at = ? WHERE id IN %s", []any{ts(t), ts(t)}, gone))
}

// syncTags makes the live tags of image id exactly tags, given the live
// ones (glance/db/sqlalchemy/api.image_tag_set_all).
func syncTags(ctx context.Context, run runner, id string, tags []string, t time.Time, live []string) error {
	want := map[string]bool{}
	for _, tag := range tags {
		want[tag] = true
	}
	have := map[string]bool{}
	for _, tag := range live {
		have[tag] = true
	}
	for _, tag := range slices.Sorted(maps.Keys(want)) {
		if have[tag] {
			continue
		}
		_, err := run.exec(ctx, "INSERT INTO image_tags (image_id, value, created_at, updated_at, deleted) VALUES (?, ?, ?, ?, 0)",
			id, tag, ts(t), ts(t))
		if err != nil {
			return opErr("save tags", err)
		}
	}
	var gone []string
	for tag := range have {
		if !want[tag] {
			gone = append(gone, tag)
		}
	}
	slices.Sort(gone)
	return opErr("save tags", execIn(ctx, run, "UPDATE image_tags SET deleted = 1, deleted_at = ?, updated_at = ?"+
		" WHERE image_id = ? AND +deleted = 0 AND value IN %s", []any{ts(t), ts(t), id}, gone))
}

// locDeleted reports whether a location status means the row is deleted.
func locDeleted(status string) bool { return status == "deleted" || status == "pending_delete" }

// syncLocations makes the live locations of image id exactly locs, given
// the live rows (glance/db/sqlalchemy/api._image_locations_set): rows not
// listed are marked deleted, new ones (ID 0) inserted, listed ones updated.
func syncLocations(ctx context.Context, run runner, id string, locs []domain.Location, t time.Time, live map[int64]locRow) error {
	keep := map[int64]bool{}
	for _, l := range locs {
		if l.ID != 0 {
			keep[l.ID] = true
		}
	}
	var gone []int64
	for lid := range live {
		if !keep[lid] {
			gone = append(gone, lid)
		}
	}
	slices.Sort(gone)
	if err := execIn(ctx, run, "UPDATE image_locations SET deleted = 1, status = 'deleted', deleted_at = ?, updated_at = ?"+
		" WHERE id IN %s", []any{ts(t), ts(t)}, gone); err != nil {
		return opErr("save locations", err)
	}
	for _, l := range locs {
		status := l.Status
		if status == "" {
			status = "active"
		}
		meta, err := encodeMeta(l.Metadata)
		if err != nil {
			return err
		}
		del := locDeleted(status)
		var delAt dbTime
		if del {
			delAt = ts(t)
		}
		if l.ID == 0 {
			_, err = run.exec(ctx, "INSERT INTO image_locations (image_id, value, meta_data, status, created_at, updated_at,"+
				" deleted_at, deleted) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
				id, l.URL, meta, status, ts(t), ts(t), delAt, boolInt(del))
		} else {
			rw, ok := live[l.ID]
			if ok && rw.value == l.URL && rw.status == status && sameMeta(rw.meta, l.Metadata) {
				continue
			}
			_, err = run.exec(ctx, "UPDATE image_locations SET value = ?, meta_data = ?, status = ?, deleted = ?,"+
				" deleted_at = ?, updated_at = ? WHERE id = ? AND image_id = ?",
				l.URL, meta, status, boolInt(del), delAt, ts(t), l.ID, id)
		}
		if err != nil {
			return opErr("save locations", err)
		}
	}
	return nil
}

func sameMeta(stored sql.NullString, m map[string]any) bool {
	a, err := encodeMeta(decodeMeta(stored))
	if err != nil {
		return false
	}
	b, err := encodeMeta(m)
	return err == nil && a == b
}

// Remove implements domain.Repo: the image is stored with its final status
// (deleted, or pending_delete for a delayed delete) and soft-deleted with
// its properties, tags, members and locations, in one transaction
// (glance/db/sqlalchemy/api.image_destroy).
func (r *ImageRepo) Remove(ctx context.Context, img domain.Image) error {
	m := core(img)
	if m.ID == "" || len(m.ID) > idMaxLen {
		return notFound(m.ID)
	}
	status := m.Status
	if status != domain.StatusPendingDelete {
		status = domain.StatusDeleted
	}
	err := r.d.write(ctx, func(run runner) error {
		if _, err := r.lockForMutation(ctx, run, m.ID, false); err != nil {
			return err
		}
		t := now()
		if m.DeletedAt != nil {
			t = m.DeletedAt.UTC()
		}
		res, err := run.exec(ctx, "UPDATE images SET status = ?, deleted = 1, deleted_at = ?, updated_at = ? WHERE id = ? AND +deleted = 0",
			string(status), ts(t), ts(t), m.ID)
		if err != nil {
			return opErr("remove image", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return opErr("remove image", err)
		} else if n == 0 {
			return notFound(m.ID)
		}
		if _, err := run.exec(ctx, "UPDATE image_locations SET deleted = 1, status = 'deleted', deleted_at = ?, updated_at = ?"+
			" WHERE image_id = ? AND +deleted = 0", ts(t), ts(t), m.ID); err != nil {
			return opErr("remove image", err)
		}
		for _, child := range []string{"image_properties", "image_members", "image_tags"} {
			if _, err := run.exec(ctx, "UPDATE "+child+" SET deleted = 1, deleted_at = ?, updated_at = ?"+
				" WHERE image_id = ? AND +deleted = 0", ts(t), ts(t), m.ID); err != nil {
				return opErr("remove image", err)
			}
		}
		return nil
	}, m.ID)
	return opErr("remove image", err)
}

// Usage returns the bytes owner's images hold for user_storage_quota: the
// sum of size times the number of live locations, over the owner's images
// that are not killed, deleted or pending_delete.
func (d *DB) Usage(ctx context.Context, owner string) (int64, error) {
	var total sql.NullInt64
	err := d.read(ctx, func(ctx context.Context, run runner) error {
		_, err := run.queryRow(ctx, "SELECT SUM(images.size * (SELECT COUNT(*) FROM image_locations l"+
			" WHERE l.image_id = images.id AND +l.deleted = 0 AND l.status <> 'deleted'))"+
			" FROM images WHERE images.owner = ? AND +images.deleted = 0 AND images.size > 0"+
			" AND images.status NOT IN ('killed', 'deleted', 'pending_delete')", []any{owner}, &total)
		return err
	})
	if err != nil {
		return 0, opErr("usage", err)
	}
	return total.Int64, nil
}

// Touch implements domain.Toucher: it renews the updated_at of image id if
// it is still in status, without taking the caller's rights into account
// (only the layers that already own an upload call it).
func (r *ImageRepo) Touch(ctx context.Context, id string, status domain.Status) error {
	err := r.d.write(ctx, func(run runner) error {
		res, err := run.exec(ctx, "UPDATE images SET updated_at = ? WHERE id = ? AND status = ? AND +deleted = 0",
			ts(now()), id, string(status))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return domain.Errorf(domain.ErrConflict, "Image %s is no longer %s", id, status)
		}
		return nil
	}, id)
	return opErr("touch image", err)
}
