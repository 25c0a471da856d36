package domain

// Status is an image's place in its life cycle.
type Status string

// The image statuses of glance/domain/__init__.py.
const (
	StatusQueued        Status = "queued"
	StatusSaving        Status = "saving"
	StatusActive        Status = "active"
	StatusKilled        Status = "killed"
	StatusDeleted       Status = "deleted"
	StatusUploading     Status = "uploading"
	StatusImporting     Status = "importing"
	StatusPendingDelete Status = "pending_delete"
	StatusDeactivated   Status = "deactivated"
)

// Statuses lists every status, in the order the image schema gives them.
var Statuses = []Status{
	StatusQueued, StatusSaving, StatusActive, StatusKilled, StatusDeleted,
	StatusUploading, StatusImporting, StatusPendingDelete, StatusDeactivated,
}

// transitions is Image.valid_state_targets.
var transitions = map[Status][]Status{
	StatusQueued:        {StatusSaving, StatusUploading, StatusImporting, StatusActive, StatusDeleted},
	StatusSaving:        {StatusActive, StatusKilled, StatusDeleted, StatusQueued},
	StatusUploading:     {StatusImporting, StatusQueued, StatusDeleted},
	StatusImporting:     {StatusActive, StatusDeleted, StatusQueued},
	StatusActive:        {StatusPendingDelete, StatusDeleted, StatusDeactivated},
	StatusKilled:        {StatusDeleted},
	StatusPendingDelete: {StatusDeleted, StatusActive},
	StatusDeleted:       nil,
	StatusDeactivated:   {StatusActive, StatusDeleted},
}

// CanTransition reports whether an image may go from one status to another.
// Staying in the same status is always allowed.
func CanTransition(from, to Status) bool {
	if from == to {
		return true
	}
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Valid reports whether s is one of the known statuses.
func (s Status) Valid() bool {
	_, ok := transitions[s]
	return ok
}

// Visibility says who may see an image.
type Visibility string

// The four visibilities of API 2.5 and later.
const (
	VisibilityPublic    Visibility = "public"
	VisibilityCommunity Visibility = "community"
	VisibilityShared    Visibility = "shared"
	VisibilityPrivate   Visibility = "private"
)

// Valid reports whether v is one of the four visibilities.
func (v Visibility) Valid() bool {
	switch v {
	case VisibilityPublic, VisibilityCommunity, VisibilityShared, VisibilityPrivate:
		return true
	}
	return false
}
