package db_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/glance-go/glance-go/db"
	"github.com/glance-go/glance-go/domain"
)

var (
	admin = &domain.Caller{ProjectID: "admin-project", Roles: []string{"admin"}, IsAdmin: true}
	p1    = &domain.Caller{ProjectID: "p1", Roles: []string{"member"}}
	p2    = &domain.Caller{ProjectID: "p2", Roles: []string{"member"}}
	p3    = &domain.Caller{ProjectID: "p3", Roles: []string{"member"}}
	anon  = &domain.Caller{ReadOnly: true}
)

var ctx = context.Background()

// mk builds a new image owned by owner with the core factory; edit may
// then adjust the record.
func mk(t *testing.T, owner string, vis domain.Visibility, edit func(m *domain.Meta)) domain.Image {
	t.Helper()
	m := domain.Meta{Visibility: vis, Name: domain.Ptr("img"), Properties: map[string]string{}}
	if owner != "" {
		m.Owner = domain.Ptr(owner)
	}
	img, err := domain.CoreFactory{}.NewImage(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if edit == nil {
		return img
	}
	// Edit after the factory, which drops locations.
	m = img.Meta()
	edit(&m)
	return domain.NewImage(m)
}

// add stores a new image as admin and returns its id.
func add(t *testing.T, d *db.DB, owner string, vis domain.Visibility, edit func(m *domain.Meta)) string {
	t.Helper()
	img := mk(t, owner, vis, edit)
	if err := d.Images(admin).Add(ctx, img); err != nil {
		t.Fatalf("add: %v", err)
	}
	return img.Meta().ID
}

// addAt stores a new image with a given creation time.
func addAt(t *testing.T, d *db.DB, owner string, vis domain.Visibility, at time.Time, edit func(m *domain.Meta)) string {
	t.Helper()
	img := mk(t, owner, vis, edit)
	m := img.Meta()
	m.CreatedAt, m.UpdatedAt = at, at
	img = domain.NewImage(m)
	if err := d.Images(admin).Add(ctx, img); err != nil {
		t.Fatalf("add: %v", err)
	}
	return m.ID
}

func share(t *testing.T, d *db.DB, imageID, member string, st domain.MemberStatus) {
	t.Helper()
	mb := domain.NewMember(imageID, member)
	mb.Status = st
	if err := d.Members(admin, imageID).Add(ctx, mb); err != nil {
		t.Fatalf("share %s with %s: %v", imageID, member, err)
	}
}

func get(t *testing.T, d *db.DB, c *domain.Caller, id string) domain.Meta {
	t.Helper()
	img, err := d.Images(c).Get(ctx, id)
	if err != nil {
		t.Fatalf("get %s: %v", id, err)
	}
	return img.Meta()
}

// wantKind fails unless err wraps kind (nil kind: err must be nil).
func wantKind(t *testing.T, err, kind error) {
	t.Helper()
	if kind == nil {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if !errors.Is(err, kind) {
		t.Fatalf("got error %v, want kind %v", err, kind)
	}
}

// wantMsg fails unless err is a domain error with this message.
func wantMsg(t *testing.T, err error, kind error, msg string) {
	t.Helper()
	wantKind(t, err, kind)
	var de *domain.Error
	if !errors.As(err, &de) {
		t.Fatalf("error %v (%T) is not a *domain.Error", err, err)
	}
	if de.Msg != msg {
		t.Fatalf("message %q, want %q", de.Msg, msg)
	}
}
