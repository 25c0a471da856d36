// Package gateway builds, for each request, the chain of decorators that
// wraps the core domain: the onion of glance/gateway.py. It is the one place
// where the order of the layers is written down.
//
// Innermost first:
//
//	db repo → location → quota → policy → notifier → property protection → authorization
//
// A call from a handler enters at authorization and travels inwards; images
// travel outwards, each layer wrapping what the layer below handed it.
// Property protection is present only when a rules file is configured.
package gateway

import (
	"context"

	"github.com/glance-go/glance-go/db"
	"github.com/glance-go/glance-go/domain"
	"github.com/glance-go/glance-go/proxies"
	"github.com/glance-go/glance-go/proxies/authz"
	"github.com/glance-go/glance-go/proxies/location"
	"github.com/glance-go/glance-go/proxies/notifier"
	"github.com/glance-go/glance-go/proxies/policy"
	"github.com/glance-go/glance-go/proxies/propprotect"
	"github.com/glance-go/glance-go/proxies/quota"
)

// Database is what the gateway needs of package db: the innermost
// repositories, built per caller, and the storage usage the quota counts.
type Database interface {
	Images(c *domain.Caller) domain.Repo
	Members(c *domain.Caller, imageID string) domain.MemberRepo
	Usage(ctx context.Context, owner string) (int64, error)
}

var _ Database = (*db.DB)(nil)

// Config holds what the layers need. Every field but Rules is required.
type Config struct {
	DB       Database
	Stores   location.Stores
	Location location.Options
	Limits   quota.Limits
	Enforcer *policy.Enforcer
	Sink     notifier.Sink
	Notifier notifier.Options
	Rules    *propprotect.Rules // nil: property protection is off
}

// Gateway hands out the per-request repositories.
type Gateway struct {
	cfg Config
}

// New returns a Gateway over cfg. Without cfg.Limits.Reservations it makes
// the one storage-quota reservation ledger that all of its requests share.
func New(cfg Config) *Gateway {
	if cfg.Limits.Reservations == nil {
		cfg.Limits.Reservations = quota.NewReservations()
	}
	return &Gateway{cfg: cfg}
}

// Layers returns the rings of the onion for caller c, innermost first. inner
// is the caller's database repo, which the location layer uses to store the
// status changes of an upload.
func (g *Gateway) Layers(c *domain.Caller, inner domain.Repo) []proxies.Layer {
	ls := []proxies.Layer{
		location.Layer(g.cfg.Stores, inner, g.cfg.Location),
		quota.Layer(g.cfg.Limits, g.cfg.DB.Usage, c),
		policy.Layer(g.cfg.Enforcer, c),
		notifier.Layer(g.cfg.Sink, g.cfg.Notifier, c),
	}
	if g.cfg.Rules != nil {
		ls = append(ls, propprotect.Layer(g.cfg.Rules, c))
	}
	return append(ls, authz.Layer(c))
}

// Images returns the image repository and factory for caller c.
func (g *Gateway) Images(c *domain.Caller) (domain.Repo, domain.Factory) {
	inner := g.cfg.DB.Images(c)
	return proxies.Stack(inner, domain.CoreFactory{}, g.Layers(c, inner)...)
}

// Members returns the member repository of img, an image this gateway's
// Images handed out, for caller c.
func (g *Gateway) Members(c *domain.Caller, img domain.Image) domain.MemberRepo {
	inner := g.cfg.DB.Members(c, img.Meta().ID)
	return proxies.StackMembers(img, inner, g.Layers(c, g.cfg.DB.Images(c))...)
}
