package db

import (
	"context"

	"github.com/glance-go/glance-go/domain"
)

// MemberRepo is the innermost domain.MemberRepo: the members of one image
// as one caller sees them (glance/db ImageMemberRepo).
type MemberRepo struct {
	d       *DB
	c       domain.Caller
	imageID string
}

var _ domain.MemberRepo = (*MemberRepo)(nil)

// Members returns the member repository of image imageID for caller c.
func (d *DB) Members(c *domain.Caller, imageID string) domain.MemberRepo {
	r := &MemberRepo{d: d, imageID: imageID}
	if c != nil {
		r.c = *c
	}
	return r
}

const memberColumns = "image_members.image_id, image_members.member, image_members.status, image_members.can_share," +
	" image_members.created_at, image_members.updated_at"

// find returns the live members of the image the caller may see: all of
// them for an admin or the image owner, only its own row for a member
// (glance/db/sqlalchemy/api._image_member_find).
func (r *MemberRepo) find(ctx context.Context, run runner, member string) ([]domain.Member, error) {
	q := "SELECT " + memberColumns + " FROM image_members"
	var w where
	if !r.c.IsAdmin {
		q += " JOIN images ON images.id = image_members.image_id"
		if r.c.ProjectID == "" {
			// owner = NULL matches nothing in SQL, as in Glance.
			w.add("1 = 0")
		} else {
			w.add("(images.owner = ? OR image_members.member = ?)", r.c.ProjectID, r.c.ProjectID)
		}
	}
	w.add("+image_members.deleted = 0")
	w.add("image_members.image_id = ?", r.imageID)
	if member != "" {
		w.add("image_members.member = ?", member)
	}
	rows, err := run.query(ctx, q+" WHERE "+w.sql()+" ORDER BY image_members.id", w.args...)
	if err != nil {
		return nil, opErr("find members", err)
	}
	defer rows.Close()
	out := []domain.Member{}
	for rows.Next() {
		var (
			mb               domain.Member
			created, updated dbTime
		)
		var status string
		if err := rows.Scan(&mb.ImageID, &mb.MemberID, &status, &mb.CanShare, &created, &updated); err != nil {
			return nil, opErr("find members", err)
		}
		mb.Status = domain.MemberStatus(status)
		mb.CreatedAt = created.out()
		mb.UpdatedAt = updated.out()
		if !updated.Valid {
			mb.UpdatedAt = mb.CreatedAt
		}
		out = append(out, mb)
	}
	return out, opErr("find members", rows.Err())
}

// List implements domain.MemberRepo.
func (r *MemberRepo) List(ctx context.Context) ([]domain.Member, error) {
	if len(r.imageID) > idMaxLen {
		return []domain.Member{}, nil
	}
	return r.read(ctx, "")
}

// read runs find outside a transaction (see DB.read).
func (r *MemberRepo) read(ctx context.Context, member string) (ms []domain.Member, err error) {
	err = r.d.read(ctx, func(ctx context.Context, run runner) error {
		ms, err = r.find(ctx, run, member)
		return err
	})
	return ms, err
}

func (r *MemberRepo) memberNotFound(member string) error {
	return domain.Errorf(domain.ErrNotFound, "%s not found in the member list of the image %s.", member, r.imageID)
}

// Get implements domain.MemberRepo.
func (r *MemberRepo) Get(ctx context.Context, member string) (domain.Member, error) {
	if member == "" || len(r.imageID) > idMaxLen {
		return domain.Member{}, r.memberNotFound(member)
	}
	ms, err := r.read(ctx, member)
	if err != nil {
		return domain.Member{}, err
	}
	if len(ms) == 0 {
		return domain.Member{}, r.memberNotFound(member)
	}
	return ms[0], nil
}

// lockImage checks, inside a write transaction, that the image exists and
// is not deleted, locking its row on MySQL so that member changes of one
// image are serialised.
func (r *MemberRepo) lockImage(ctx context.Context, run runner) error {
	q := "SELECT id FROM images WHERE id = ? AND +deleted = 0"
	if r.d.dialect == dialectMySQL {
		q += " FOR UPDATE"
	}
	var id string
	found, err := run.queryRow(ctx, q, []any{r.imageID}, &id)
	if err != nil {
		return opErr("lock image", err)
	}
	if !found {
		return domain.Errorf(domain.ErrNotFound, "Image %s not found.", r.imageID)
	}
	return nil
}

// Add implements domain.MemberRepo. A soft-deleted row of the same member
// is reused, as Glance does.
func (r *MemberRepo) Add(ctx context.Context, m domain.Member) error {
	if len(r.imageID) > idMaxLen {
		return domain.Errorf(domain.ErrNotFound, "Image %s not found.", r.imageID)
	}
	if m.MemberID == "" {
		return domain.Errorf(domain.ErrInvalid, "Member can't be empty")
	}
	status := m.Status
	if status == "" {
		status = domain.MemberPending
	}
	if !status.Valid() {
		return domain.Errorf(domain.ErrInvalid, "Status must be \"pending\", \"accepted\" or \"rejected\".")
	}
	created := m.CreatedAt
	if created.IsZero() {
		created = now()
	}
	updated := m.UpdatedAt
	if updated.IsZero() {
		updated = created
	}
	dup := domain.Errorf(domain.ErrConflict, "Member %s is duplicated for image %s", m.MemberID, r.imageID)
	err := r.d.write(ctx, func(run runner) error {
		if err := r.lockImage(ctx, run); err != nil {
			return err
		}
		var live int64
		if _, err := run.queryRow(ctx, "SELECT COUNT(*) FROM image_members WHERE image_id = ? AND member = ? AND +deleted = 0",
			[]any{r.imageID, m.MemberID}, &live); err != nil {
			return opErr("add member", err)
		}
		if live > 0 {
			return dup
		}
		var old int64
		found, err := run.queryRow(ctx, "SELECT id FROM image_members WHERE image_id = ? AND member = ? ORDER BY id LIMIT 1",
			[]any{r.imageID, m.MemberID}, &old)
		if err != nil {
			return opErr("add member", err)
		}
		if found {
			_, err := run.exec(ctx, "UPDATE image_members SET status = ?, can_share = ?, created_at = ?,"+
				" updated_at = ?, deleted = 0, deleted_at = NULL WHERE id = ?",
				string(status), boolInt(m.CanShare), ts(created), ts(updated), old)
			return opErr("add member", err)
		}
		_, err = run.exec(ctx, "INSERT INTO image_members (image_id, member, can_share, status, created_at,"+
			" updated_at, deleted) VALUES (?, ?, ?, ?, ?, ?, 0)",
			r.imageID, m.MemberID, boolInt(m.CanShare), string(status), ts(created), ts(updated))
		return opErr("add member", err)
	})
	if isDuplicate(err) {
		return dup
	}
	return err
}

// Save implements domain.MemberRepo: it stores the member's status.
func (r *MemberRepo) Save(ctx context.Context, m domain.Member) error {
	if !m.Status.Valid() {
		return domain.Errorf(domain.ErrInvalid, "Status must be \"pending\", \"accepted\" or \"rejected\".")
	}
	if len(r.imageID) > idMaxLen {
		return r.memberNotFound(m.MemberID)
	}
	n, err := r.d.writeOne(ctx, "UPDATE image_members SET status = ?, can_share = ?, updated_at = ?"+
		" WHERE image_id = ? AND member = ? AND +deleted = 0",
		string(m.Status), boolInt(m.CanShare), ts(now()), r.imageID, m.MemberID)
	if err != nil {
		return opErr("save member", err)
	}
	if n == 0 {
		return r.memberNotFound(m.MemberID)
	}
	return nil
}

// Remove implements domain.MemberRepo: it soft-deletes the member.
func (r *MemberRepo) Remove(ctx context.Context, m domain.Member) error {
	if len(r.imageID) > idMaxLen {
		return r.memberNotFound(m.MemberID)
	}
	t := now()
	n, err := r.d.writeOne(ctx, "UPDATE image_members SET deleted = 1, deleted_at = ?, updated_at = ?"+
		" WHERE image_id = ? AND member = ? AND +deleted = 0", ts(t), ts(t), r.imageID, m.MemberID)
	if err != nil {
		return opErr("remove member", err)
	}
	if n == 0 {
		return domain.Errorf(domain.ErrNotFound, "The specified member %s could not be found", m.MemberID)
	}
	return nil
}
