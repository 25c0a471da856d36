package domain

import "strings"

// Caller is the identity a request acts for (glance/context.py RequestContext).
// It is built once per request by the API's auth middleware and handed to the
// gateway explicitly; layers never take it from a context.Context.
type Caller struct {
	ProjectID string   // "" when the caller has no project (noauth admin)
	UserID    string   //
	Roles     []string // lower-cased
	IsAdmin   bool     // the context_is_admin policy holds
	ReadOnly  bool     // anonymous access: every mutation is refused
	RequestID string   // req-<uuid>, for logs and notifications
	// ServiceRoles are the roles of an X-Service-Token, when one was sent.
	ServiceRoles []string
}

// HasRole reports whether the caller holds role (case-insensitive).
func (c *Caller) HasRole(role string) bool {
	for _, r := range c.Roles {
		if strings.EqualFold(r, role) {
			return true
		}
	}
	return false
}

// Owns reports whether the caller's project owns an image with this owner.
func (c *Caller) Owns(owner *string) bool {
	return c.ProjectID != "" && owner != nil && *owner == c.ProjectID
}
