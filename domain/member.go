package domain

import (
	"context"
	"time"
)

// MemberStatus is a member's answer to a share.
type MemberStatus string

// The member statuses of domain.ImageMembership.
const (
	MemberPending  MemberStatus = "pending"
	MemberAccepted MemberStatus = "accepted"
	MemberRejected MemberStatus = "rejected"
)

// Valid reports whether s is pending, accepted or rejected.
func (s MemberStatus) Valid() bool {
	return s == MemberPending || s == MemberAccepted || s == MemberRejected
}

// Member is one project an image is shared with (image_members).
type Member struct {
	ImageID   string
	MemberID  string // a project id
	Status    MemberStatus
	CanShare  bool
	CreatedAt time.Time
	UpdatedAt time.Time
}

// NewMember returns a pending membership of project memberID in image imageID.
func NewMember(imageID, memberID string) Member {
	now := time.Now().UTC().Truncate(time.Second)
	return Member{ImageID: imageID, MemberID: memberID, Status: MemberPending, CreatedAt: now, UpdatedAt: now}
}

// MemberRepo stores the members of one image, as seen by one caller.
type MemberRepo interface {
	// List returns the members the caller may see: all of them for the
	// owner or an admin, only its own entry for a member.
	List(ctx context.Context) ([]Member, error)
	// Get returns one member; ErrNotFound if there is none the caller may see.
	Get(ctx context.Context, memberID string) (Member, error)
	// Add stores a new member; ErrConflict if the project is already one.
	Add(ctx context.Context, m Member) error
	// Save stores a member's new status.
	Save(ctx context.Context, m Member) error
	// Remove soft-deletes a member.
	Remove(ctx context.Context, m Member) error
}
