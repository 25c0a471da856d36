package quota

import (
	"context"
	"errors"
	"sync"

	"github.com/glance-go/glance-go/domain"
)

// Reservations is the server's ledger of the bytes that uploads in progress
// will add to each owner's storage usage. Glance checks user_storage_quota
// against the stored usage only, so concurrent uploads by one owner can
// each pass the check and together overshoot (the race its
// quota/__init__.py describes and repairs afterwards by deleting data).
// Here an upload holds a reservation while it runs, and the check counts
// stored usage plus every live reservation of the owner.
//
// One Reservations must be shared by every request of a server: put it in
// Limits once, at start (gateway.New does when it is nil). The ledger lives
// in the process: several API servers sharing one database do not see each
// other's reservations.
type Reservations struct {
	mu     sync.Mutex
	owners map[string]*ownerLedger
}

// ownerLedger is one owner's live reservations.
type ownerLedger struct {
	mu sync.Mutex // guards held and stored; never held across a wait
	// held is the sum of the live reservations.
	held int64
	// stored counts the bytes of uploads that finished with success
	// while this entry existed. An upload that read the stored usage
	// before one of them finished counts their bytes through it.
	stored int64
	refs   int // reservations using this entry, guarded by Reservations.mu
}

// NewReservations returns an empty ledger.
func NewReservations() *Reservations {
	return &Reservations{owners: map[string]*ownerLedger{}}
}

// acquire returns owner's entry, created if needed, with one more user.
func (r *Reservations) acquire(owner string) *ownerLedger {
	r.mu.Lock()
	defer r.mu.Unlock()
	ol := r.owners[owner]
	if ol == nil {
		ol = &ownerLedger{}
		r.owners[owner] = ol
	}
	ol.refs++
	return ol
}

// drop forgets owner's entry once nobody uses it.
func (r *Reservations) drop(owner string, ol *ownerLedger) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ol.refs--
	if ol.refs == 0 {
		delete(r.owners, owner)
	}
}

// Held returns the bytes reserved for owner by uploads in progress.
func (r *Reservations) Held(owner string) int64 {
	r.mu.Lock()
	ol := r.owners[owner]
	r.mu.Unlock()
	if ol == nil {
		return 0
	}
	ol.mu.Lock()
	defer ol.mu.Unlock()
	return ol.held
}

// reservation is one upload's hold on an owner's quota.
type reservation struct {
	r     *Reservations
	owner string
	ol    *ownerLedger
	limit int64 // the quota in bytes
	base  int64 // the stored usage read when the upload started
	since int64 // ol.stored when the upload started
	held  int64 // bytes this upload holds
	done  bool
}

// reserve starts an upload of size bytes (0: unknown) for owner against a
// quota of limit bytes. It returns the 413 of Glance when size does not
// fit.
//
// The stored usage is read without the owner's lock, which guards memory
// only: uploads of the owner that start meanwhile are in ol.held when the
// size is checked, and uploads that end meanwhile in ol.stored. One that
// ends between the reading of since and the query is counted twice, in
// used and in ol.stored-since: the check errs on the side of refusing,
// never of overshooting.
func (r *Reservations) reserve(ctx context.Context, owner string, limit, size int64, usage UsageFunc) (*reservation, error) {
	ol := r.acquire(owner)
	ol.mu.Lock()
	since := ol.stored
	ol.mu.Unlock()
	used, err := usage(ctx, owner)
	if err != nil {
		r.drop(owner, ol)
		var de *domain.Error
		if errors.As(err, &de) || errors.Is(err, domain.ErrUnavailable) {
			return nil, err
		}
		return nil, domain.Errorf(domain.ErrUnavailable, "Cannot compute the storage usage: %v", err)
	}
	ol.mu.Lock()
	defer ol.mu.Unlock()
	res := &reservation{r: r, owner: owner, ol: ol, limit: limit, base: used, since: since}
	if size > 0 {
		if left := res.left(); size > left {
			r.drop(owner, ol)
			return nil, errQuota(size, left)
		}
		res.held = size
		ol.held += size
	}
	return res, nil
}

// left is what the owner may still add beyond every live reservation,
// this one's included. The caller holds ol.mu.
func (res *reservation) left() int64 {
	return res.limit - res.base - (res.ol.stored - res.since) - res.ol.held
}

// cover grows the reservation to total bytes, the amount read so far. It
// fails with Glance's 413, reservation unchanged, when the growth does not
// fit.
func (res *reservation) cover(total int64) error {
	if total <= res.held {
		return nil
	}
	res.ol.mu.Lock()
	defer res.ol.mu.Unlock()
	grow := total - res.held
	if left := res.left(); grow > left {
		return errQuota(total, left+res.held)
	}
	res.held += grow
	res.ol.held += grow
	return nil
}

// release ends the reservation: stored tells whether the upload's bytes
// are now part of the stored usage. Calling it again does nothing.
func (res *reservation) release(stored bool) {
	if res == nil || res.done {
		return
	}
	res.done = true
	res.ol.mu.Lock()
	res.ol.held -= res.held
	if stored {
		res.ol.stored += res.held
	}
	res.ol.mu.Unlock()
	res.r.drop(res.owner, res.ol)
}
