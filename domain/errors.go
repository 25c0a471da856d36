package domain

import (
	"errors"
	"fmt"
)

// The closed set of error kinds. Every error that leaves the domain, a proxy
// layer, the database or a store wraps exactly one of them; the API maps each
// kind to one HTTP status.
var (
	// ErrNotFound: the resource does not exist or the caller may not see it (404).
	ErrNotFound = errors.New("not found")
	// ErrForbidden: the caller sees the resource but may not do this (403).
	ErrForbidden = errors.New("forbidden")
	// ErrConflict: the resource's state does not allow the change (409).
	ErrConflict = errors.New("conflict")
	// ErrInvalid: the request itself is wrong (400).
	ErrInvalid = errors.New("invalid")
	// ErrOverLimit: a quota or size cap would be exceeded (413).
	ErrOverLimit = errors.New("over limit")
	// ErrUnsupported: the media type or the data's format is refused (415).
	ErrUnsupported = errors.New("unsupported")
	// ErrGone: the resource went away while the request ran (410).
	ErrGone = errors.New("gone")
	// ErrUnavailable: a backend is unreachable or refuses service (503).
	ErrUnavailable = errors.New("unavailable")
	// ErrNoData: the image has no data to read (the download answers 204).
	ErrNoData = errors.New("no data")
)

// Error is a domain error: a kind from the set above and the message that a
// client is shown.
type Error struct {
	Kind error
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// Unwrap returns the kind, so that errors.Is(err, ErrForbidden) holds.
func (e *Error) Unwrap() error { return e.Kind }

// Errorf returns an *Error of the given kind with a formatted message.
func Errorf(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// TransitionError reports a status change that the state machine refuses.
// It is a conflict by default; the API turns it into 400 where Glance does
// (delete, deactivate).
type TransitionError struct {
	From, To Status
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("Image status transition from %s to %s is not allowed", e.From, e.To)
}

// Unwrap returns ErrConflict.
func (e *TransitionError) Unwrap() error { return ErrConflict }
