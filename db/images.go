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

// visibleClause is the SQL form of glance/db/utils.is_image_visible for
// the caller: admin sees everything; anyone sees images without an owner
// and public or community ones; a project sees its own and the shared ones
// it is a member of, whatever the member status.
func (r *ImageRepo) visibleClause() (string, []any) {
	if r.c.IsAdmin {
		return "1 = 1", nil
	}
	clause := "(images.owner IS NULL OR images.visibility IN ('public', 'community')"
	var args []any
	if r.c.ProjectID != "" {
		clause += " OR images.owner = ? OR (images.visibility = 'shared' AND EXISTS (SELECT 1 FROM image_members m" +
			" WHERE m.image_id = images.id AND m.member = ? AND +m.deleted = 0))"
		args = append(args, r.c.ProjectID, r.c.ProjectID)
	}
	return clause + ")", args
}

// mutable is glance/db/sqlalchemy/api.is_image_mutable.
func (r *ImageRepo) mutable(owner *string) bool {
	if r.c.IsAdmin {
		return true
	}
	return owner != nil && r.c.ProjectID != "" && *owner == r.c.ProjectID
}

// Get implements domain.Repo.
func (r *ImageRepo) Get(ctx context.Context, id string) (domain.Image, error) {
	if id == "" || len(id) > idMaxLen {
		return nil, notFound(id)
	}
	m, err := r.get(r.d.g.WithContext(ctx), id)
	if err != nil {
		return nil, err
	}
	return domain.NewImage(m), nil
}

// get loads one visible, non-deleted image with its children.
func (r *ImageRepo) get(g *gorm.DB, id string) (domain.Meta, error) {
	vis, vargs := r.visibleClause()
	q := "SELECT " + imageColumns + " FROM images WHERE images.id = ? AND +images.deleted = 0 AND " + vis
	metas, err := r.queryImages(g, q, append([]any{id}, vargs...)...)
	if err != nil {
		return domain.Meta{}, err
	}
	if len(metas) == 0 {
		return domain.Meta{}, notFound(id)
	}
	if err := r.loadChildren(g, metas); err != nil {
		return domain.Meta{}, err
	}
	return metas[0], nil
}

// queryImages runs a SELECT of imageColumns.
func (r *ImageRepo) queryImages(g *gorm.DB, q string, args ...any) ([]domain.Meta, error) {
	rows, err := g.Raw(q, args...).Rows()
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
		if m.Visibility == domain.VisibilityShared && !r.c.Owns(m.Owner) {
			m.Member = r.c.ProjectID
		}
		out = append(out, m)
	}
	return out, opErr("get image", rows.Err())
}

// childBatch bounds the ids of one IN list.
const childBatch = 500

// loadChildren fills the properties, tags and locations of metas with one
// query per table (per batch of ids), never one per image.
func (r *ImageRepo) loadChildren(g *gorm.DB, metas []domain.Meta) error {
	if len(metas) == 0 {
		return nil
	}
	index := make(map[string]int, len(metas))
	for i := range metas {
		index[metas[i].ID] = i
	}
	for start := 0; start < len(metas); start += childBatch {
		end := min(start+childBatch, len(metas))
		ids := make([]string, 0, end-start)
		for _, m := range metas[start:end] {
			ids = append(ids, m.ID)
		}
		if err := r.loadProperties(g, ids, metas, index); err != nil {
			return err
		}
		if err := r.loadTags(g, ids, metas, index); err != nil {
			return err
		}
		if err := r.loadLocations(g, ids, metas, index); err != nil {
			return err
		}
	}
	for i := range metas {
		slices.Sort(metas[i].Tags)
		metas[i].Tags = slices.Compact(metas[i].Tags)
	}
	return nil
}

func (r *ImageRepo) loadProperties(g *gorm.DB, ids []string, metas []domain.Meta, index map[string]int) error {
	if r.d.dialect == dialectSQLite {
		// One row per image: the driver's per-row cost dominates otherwise.
		rows, err := g.Raw("SELECT image_id, json_group_object(name, COALESCE(value, '')) FROM image_properties"+
			" WHERE image_id IN ? AND +deleted = 0 GROUP BY image_id", ids).Rows()
		if err != nil {
			return opErr("load properties", err)
		}
		defer rows.Close()
		var id string
		var obj []byte
		for rows.Next() {
			if err := rows.Scan(&id, &obj); err != nil {
				return opErr("load properties", err)
			}
			if i, ok := index[id]; ok {
				if err := json.Unmarshal(obj, &metas[i].Properties); err != nil {
					return opErr("load properties", err)
				}
			}
		}
		return opErr("load properties", rows.Err())
	}
	rows, err := g.Raw("SELECT image_id, name, value FROM image_properties WHERE image_id IN ? AND +deleted = 0", ids).Rows()
	if err != nil {
		return opErr("load properties", err)
	}
	defer rows.Close()
	var id, name string
	var value sql.NullString
	for rows.Next() {
		if err := rows.Scan(&id, &name, &value); err != nil {
			return opErr("load properties", err)
		}
		if i, ok := index[id]; ok {
			metas[i].Properties[name] = value.String
		}
	}
	return opErr("load properties", rows.Err())
}

func (r *ImageRepo) loadTags(g *gorm.DB, ids []string, metas []domain.Meta, index map[string]int) error {
	if r.d.dialect == dialectSQLite {
		rows, err := g.Raw("SELECT image_id, json_group_array(value) FROM image_tags"+
			" WHERE image_id IN ? AND +deleted = 0 GROUP BY image_id", ids).Rows()
		if err != nil {
			return opErr("load tags", err)
		}
		defer rows.Close()
		var id string
		var arr []byte
		for rows.Next() {
			if err := rows.Scan(&id, &arr); err != nil {
				return opErr("load tags", err)
			}
			if i, ok := index[id]; ok {
				if err := json.Unmarshal(arr, &metas[i].Tags); err != nil {
					return opErr("load tags", err)
				}
			}
		}
		return opErr("load tags", rows.Err())
	}
	rows, err := g.Raw("SELECT image_id, value FROM image_tags WHERE image_id IN ? AND +deleted = 0", ids).Rows()
	if err != nil {
		return opErr("load tags", err)
	}
	defer rows.Close()
	var id, value string
	for rows.Next() {
		if err := rows.Scan(&id, &value); err != nil {
			return opErr("load tags", err)
		}
		if i, ok := index[id]; ok {
			metas[i].Tags = append(metas[i].Tags, value)
		}
	}
	return opErr("load tags", rows.Err())
}

func (r *ImageRepo) loadLocations(g *gorm.DB, ids []string, metas []domain.Meta, index map[string]int) error {
	rows, err := g.Raw("SELECT id, image_id, value, meta_data, status FROM image_locations"+
		" WHERE image_id IN ? AND +deleted = 0 ORDER BY id", ids).Rows()
	if err != nil {
		return opErr("load locations", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			loc     domain.Location
			imageID string
			meta    sql.NullString
		)
		if err := rows.Scan(&loc.ID, &imageID, &loc.URL, &meta, &loc.Status); err != nil {
			return opErr("load locations", err)
		}
		loc.Metadata = decodeMeta(meta)
		if i, ok := index[imageID]; ok {
			metas[i].Locations = append(metas[i].Locations, loc)
		}
	}
	return opErr("load locations", rows.Err())
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
// are written in one transaction.
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
	conflict := domain.Errorf(domain.ErrConflict, "Image ID %s already exists!", m.ID)
	err := r.d.g.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var n int64
		if err := tx.Raw("SELECT COUNT(*) FROM images WHERE id = ?", m.ID).Scan(&n).Error; err != nil {
			return opErr("add image", err)
		}
		if n > 0 {
			return conflict
		}
		var owner *string
		if m.Owner != nil && *m.Owner != "" {
			owner = m.Owner
		}
		deleted := 0
		if m.DeletedAt != nil || m.Status == domain.StatusDeleted {
			deleted = 1
		}
		err := tx.Exec("INSERT INTO images (id, name, size, status, created_at, updated_at, deleted_at, deleted,"+
			" disk_format, container_format, checksum, owner, min_disk, min_ram, protected, virtual_size,"+
			" visibility, os_hidden, os_hash_algo, os_hash_value)"+
			" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			m.ID, nullStr(m.Name), nullInt(m.Size), string(m.Status), ts(created), ts(updated), tsPtr(m.DeletedAt), deleted,
			nullStr(m.DiskFormat), nullStr(m.ContainerFormat), nullStr(m.Checksum), nullStr(owner),
			m.MinDisk, m.MinRAM, boolInt(m.Protected), nullInt(m.VirtualSize),
			string(m.Visibility), boolInt(m.Hidden), nullStr(m.HashAlgo), nullStr(m.HashValue)).Error
		if isDuplicate(err) {
			return conflict
		}
		if err != nil {
			return opErr("add image", err)
		}
		t := now()
		if err := syncProperties(tx, m.ID, m.Properties, t); err != nil {
			return err
		}
		if err := syncTags(tx, m.ID, m.Tags, t); err != nil {
			return err
		}
		return syncLocations(tx, m.ID, m.Locations, t)
	})
	if isDuplicate(err) {
		return conflict
	}
	return opErr("add image", err)
}

// Save implements domain.Repo: a compare-and-swap on the stored status,
// then the properties, tags and locations, in one transaction.
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
	err := r.d.g.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		cur, err := r.lockForMutation(tx, m.ID)
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
		res := tx.Exec(q, args...)
		if res.Error != nil {
			return opErr("save image", res.Error)
		}
		if res.RowsAffected == 0 {
			return r.whyNotSaved(tx, m.ID, m.Status, from)
		}
		if err := syncProperties(tx, m.ID, m.Properties, t); err != nil {
			return err
		}
		if err := syncTags(tx, m.ID, m.Tags, t); err != nil {
			return err
		}
		return syncLocations(tx, m.ID, m.Locations, t)
	})
	return opErr("save image", err)
}

func casConflict(current, next, from domain.Status) error {
	return domain.Errorf(domain.ErrConflict,
		"cannot transition from %s to %s in update (wanted from_state=%s)", current, next, from)
}

// whyNotSaved explains an UPDATE that matched no row.
func (r *ImageRepo) whyNotSaved(tx *gorm.DB, id string, next, from domain.Status) error {
	var st []string
	if err := tx.Raw("SELECT status FROM images WHERE id = ? AND +deleted = 0", id).Scan(&st).Error; err != nil {
		return opErr("save image", err)
	}
	if len(st) == 0 {
		return notFound(id)
	}
	return casConflict(domain.Status(st[0]), next, from)
}

// stored is what a mutation checks before it writes.
type stored struct {
	owner  *string
	status domain.Status
}

// lockForMutation reads the image row for a change, locking it on MySQL
// (SQLite write transactions hold the database lock already). It returns
// ErrNotFound when the image is missing, deleted or invisible to the caller,
// and ErrForbidden when the caller may see it but does not own it
// (glance/db/sqlalchemy/api._check_mutate_authorization).
func (r *ImageRepo) lockForMutation(tx *gorm.DB, id string) (stored, error) {
	vis, vargs := r.visibleClause()
	q := "SELECT images.owner, images.status FROM images WHERE images.id = ? AND +images.deleted = 0 AND " + vis
	if r.d.dialect == dialectMySQL {
		q += " FOR UPDATE"
	}
	rows, err := tx.Raw(q, append([]any{id}, vargs...)...).Rows()
	if err != nil {
		return stored{}, opErr("lock image", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return stored{}, opErr("lock image", err)
		}
		return stored{}, notFound(id)
	}
	var owner sql.NullString
	var status string
	if err := rows.Scan(&owner, &status); err != nil {
		return stored{}, opErr("lock image", err)
	}
	s := stored{owner: strPtr(owner), status: domain.Status(status)}
	if !r.mutable(s.owner) {
		return stored{}, domain.Errorf(domain.ErrForbidden, "You do not own this image")
	}
	return s, nil
}

// syncProperties makes the live properties of image id exactly props:
// changed ones are updated, removed ones soft-deleted, and a soft-deleted
// row of the same name is revived rather than duplicated, because
// (image_id, name) is unique whatever the deleted flag.
func syncProperties(tx *gorm.DB, id string, props map[string]string, t time.Time) error {
	type row struct {
		id      int64
		value   sql.NullString
		deleted bool
	}
	existing := map[string]row{}
	rows, err := tx.Raw("SELECT id, name, value, deleted FROM image_properties WHERE image_id = ?", id).Rows()
	if err != nil {
		return opErr("save properties", err)
	}
	for rows.Next() {
		var rw row
		var name string
		if err := rows.Scan(&rw.id, &name, &rw.value, &rw.deleted); err != nil {
			rows.Close()
			return opErr("save properties", err)
		}
		existing[name] = rw
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return opErr("save properties", err)
	}
	for _, name := range slices.Sorted(maps.Keys(props)) {
		value := props[name]
		rw, ok := existing[name]
		switch {
		case !ok:
			err = tx.Exec("INSERT INTO image_properties (image_id, name, value, created_at, updated_at, deleted)"+
				" VALUES (?, ?, ?, ?, ?, 0)", id, name, value, ts(t), ts(t)).Error
		case rw.deleted:
			err = tx.Exec("UPDATE image_properties SET value = ?, deleted = 0, deleted_at = NULL, updated_at = ?"+
				" WHERE id = ?", value, ts(t), rw.id).Error
		case !rw.value.Valid || rw.value.String != value:
			err = tx.Exec("UPDATE image_properties SET value = ?, updated_at = ? WHERE id = ?", value, ts(t), rw.id).Error
		}
		if err != nil {
			return opErr("save properties", err)
		}
	}
	var gone []int64
	for name, rw := range existing {
		if _, keep := props[name]; !keep && !rw.deleted {
			gone = append(gone, rw.id)
		}
	}
	if len(gone) > 0 {
		err := tx.Exec("UPDATE image_properties SET deleted = 1, deleted_at = ?, updated_at = ? WHERE id IN ?",
			ts(t), ts(t), gone).Error
		if err != nil {
			return opErr("save properties", err)
		}
	}
	return nil
}

// syncTags makes the live tags of image id exactly tags
// (glance/db/sqlalchemy/api.image_tag_set_all).
func syncTags(tx *gorm.DB, id string, tags []string, t time.Time) error {
	var live []string
	if err := tx.Raw("SELECT value FROM image_tags WHERE image_id = ? AND +deleted = 0", id).Scan(&live).Error; err != nil {
		return opErr("save tags", err)
	}
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
		err := tx.Exec("INSERT INTO image_tags (image_id, value, created_at, updated_at, deleted) VALUES (?, ?, ?, ?, 0)",
			id, tag, ts(t), ts(t)).Error
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
	if len(gone) > 0 {
		err := tx.Exec("UPDATE image_tags SET deleted = 1, deleted_at = ?, updated_at = ?"+
			" WHERE image_id = ? AND +deleted = 0 AND value IN ?", ts(t), ts(t), id, gone).Error
		if err != nil {
			return opErr("save tags", err)
		}
	}
	return nil
}

// locDeleted reports whether a location status means the row is deleted.
func locDeleted(status string) bool { return status == "deleted" || status == "pending_delete" }

// syncLocations makes the live locations of image id exactly locs
// (glance/db/sqlalchemy/api._image_locations_set): rows not listed are
// marked deleted, new ones (ID 0) inserted, listed ones updated.
func syncLocations(tx *gorm.DB, id string, locs []domain.Location, t time.Time) error {
	type row struct {
		value, status string
		meta          sql.NullString
	}
	live := map[int64]row{}
	rows, err := tx.Raw("SELECT id, value, meta_data, status FROM image_locations WHERE image_id = ? AND +deleted = 0", id).Rows()
	if err != nil {
		return opErr("save locations", err)
	}
	for rows.Next() {
		var lid int64
		var rw row
		if err := rows.Scan(&lid, &rw.value, &rw.meta, &rw.status); err != nil {
			rows.Close()
			return opErr("save locations", err)
		}
		live[lid] = rw
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return opErr("save locations", err)
	}
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
	if len(gone) > 0 {
		err := tx.Exec("UPDATE image_locations SET deleted = 1, status = 'deleted', deleted_at = ?, updated_at = ?"+
			" WHERE id IN ?", ts(t), ts(t), gone).Error
		if err != nil {
			return opErr("save locations", err)
		}
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
			err = tx.Exec("INSERT INTO image_locations (image_id, value, meta_data, status, created_at, updated_at,"+
				" deleted_at, deleted) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
				id, l.URL, meta, status, ts(t), ts(t), delAt, boolInt(del)).Error
		} else {
			rw, ok := live[l.ID]
			if ok && rw.value == l.URL && rw.status == status && sameMeta(rw.meta, l.Metadata) {
				continue
			}
			err = tx.Exec("UPDATE image_locations SET value = ?, meta_data = ?, status = ?, deleted = ?,"+
				" deleted_at = ?, updated_at = ? WHERE id = ? AND image_id = ?",
				l.URL, meta, status, boolInt(del), delAt, ts(t), l.ID, id).Error
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
	err := r.d.g.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if _, err := r.lockForMutation(tx, m.ID); err != nil {
			return err
		}
		t := now()
		if m.DeletedAt != nil {
			t = m.DeletedAt.UTC()
		}
		res := tx.Exec("UPDATE images SET status = ?, deleted = 1, deleted_at = ?, updated_at = ? WHERE id = ? AND +deleted = 0",
			string(status), ts(t), ts(t), m.ID)
		if res.Error != nil {
			return opErr("remove image", res.Error)
		}
		if res.RowsAffected == 0 {
			return notFound(m.ID)
		}
		if err := tx.Exec("UPDATE image_locations SET deleted = 1, status = 'deleted', deleted_at = ?, updated_at = ?"+
			" WHERE image_id = ? AND +deleted = 0", ts(t), ts(t), m.ID).Error; err != nil {
			return opErr("remove image", err)
		}
		for _, child := range []string{"image_properties", "image_members", "image_tags"} {
			if err := tx.Exec("UPDATE "+child+" SET deleted = 1, deleted_at = ?, updated_at = ?"+
				" WHERE image_id = ? AND +deleted = 0", ts(t), ts(t), m.ID).Error; err != nil {
				return opErr("remove image", err)
			}
		}
		return nil
	})
	return opErr("remove image", err)
}

// Usage returns the bytes owner's images hold for user_storage_quota: the
// sum of size times the number of live locations, over the owner's images
// that are not killed, deleted or pending_delete.
func (d *DB) Usage(ctx context.Context, owner string) (int64, error) {
	var total sql.NullInt64
	err := d.g.WithContext(ctx).Raw("SELECT SUM(images.size * (SELECT COUNT(*) FROM image_locations l"+
		" WHERE l.image_id = images.id AND +l.deleted = 0 AND l.status <> 'deleted'))"+
		" FROM images WHERE images.owner = ? AND +images.deleted = 0 AND images.size > 0"+
		" AND images.status NOT IN ('killed', 'deleted', 'pending_delete')", owner).Row().Scan(&total)
	if err != nil {
		return 0, opErr("usage", err)
	}
	return total.Int64, nil
}
