// Package recovery puts right what a dead glance-api process left behind.
//
// A process killed in the middle of an upload leaves its image in saving
// and part of the data in a store; killed in the middle of a stage, it
// leaves the image in uploading without a size and a partial file in
// staging; killed during an import, it leaves the image importing and its
// task processing. Glance leaves all of these as they are, forever. The
// sweeper finds them once their lease has run out (nothing has touched the
// record for a while, so no live process is still working on it), removes
// their partial data and returns the image to where a client can try again.
//
// A live upload keeps its lease by touching the image record (the location
// layer does it); a sweep never takes an image whose record was updated
// within the lease. With an exclusive database (the embedded SQLite) no
// other process can be working on an image, so the sweep at start-up takes
// every image, however recent.
package recovery

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/glance-go/glance-go/domain"
	"github.com/glance-go/glance-go/stores"
)

// DefaultLease is how long an image may stay in saving, uploading without
// data, or importing without its record being touched before it is taken
// for dead.
const DefaultLease = 5 * time.Minute

// Stores is what the sweeper needs of the configured stores (stores.Set).
type Stores interface {
	Backends() []*stores.Backend
	Staging() stores.Driver
}

// ImportReverter ends the dead import of an image: it fails the task, drops
// the import lock, reverts the image's status and the import properties, and
// removes the staged data. The import service implements it; without one,
// importing images are reverted by the sweeper's own rules.
type ImportReverter interface {
	RevertDeadImport(ctx context.Context, img domain.Image) error
}

// Config is what a Sweeper works with.
type Config struct {
	// Repo is the database repository of an administrator: it sees every
	// image and saves without policy checks.
	Repo   domain.Repo
	Stores Stores
	// Imports reverts importing images; nil uses the sweeper's own rules.
	Imports ImportReverter
	// ReleaseLock removes the import lock property of an image if it still
	// holds value (an image Save leaves that property alone); it is
	// db.DB.DeletePropertyAtomic. Nil leaves the lock to expire.
	ReleaseLock func(ctx context.Context, imageID, name, value string) error
	// Lease is DefaultLease when 0.
	Lease time.Duration
	// Exclusive says no other process shares the database.
	Exclusive bool
	Logger    *slog.Logger
	// Now is time.Now when nil (tests set it).
	Now func() time.Time
}

// Sweeper finds and repairs abandoned uploads, stages and imports.
type Sweeper struct {
	cfg Config
}

// New returns a Sweeper over cfg.
func New(cfg Config) *Sweeper {
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Sweeper{cfg: cfg}
}

// Report counts what one sweep did.
type Report struct {
	Uploads  int // images taken back from saving to queued
	Stages   int // images taken back from uploading to queued
	Imports  int // dead imports reverted
	Residues int // staging objects removed that no image needed
}

// Sweep repairs every abandoned image once. With startup set and an
// exclusive database, leases are ignored: the process that held them is
// gone. It goes on past single failures, logs them and returns the first.
func (s *Sweeper) Sweep(ctx context.Context, startup bool) (Report, error) {
	cutoff := s.cfg.Now().Add(-s.cfg.Lease)
	if startup && s.cfg.Exclusive {
		cutoff = s.cfg.Now().Add(time.Hour) // every image
	}
	var rep Report
	var first error
	keep := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	saving, err := s.stale(ctx, domain.StatusSaving, cutoff)
	keep(err)
	for _, img := range saving {
		if err := s.revertUpload(ctx, img); err != nil {
			keep(err)
			continue
		}
		rep.Uploads++
	}
	uploading, err := s.stale(ctx, domain.StatusUploading, cutoff)
	keep(err)
	for _, img := range uploading {
		if img.Meta().Size != nil {
			continue // a finished stage waiting for its import
		}
		if err := s.revertStage(ctx, img); err != nil {
			keep(err)
			continue
		}
		rep.Stages++
	}
	importing, err := s.stale(ctx, domain.StatusImporting, cutoff)
	keep(err)
	for _, img := range importing {
		if err := s.revertImport(ctx, img); err != nil {
			keep(err)
			continue
		}
		rep.Imports++
	}
	n, err := s.residues(ctx, cutoff)
	keep(err)
	rep.Residues = n
	return rep, first
}

// Start sweeps once for start-up, before it returns, then every interval
// in the background until ctx ends (never when interval is not positive).
func (s *Sweeper) Start(ctx context.Context, interval time.Duration) {
	s.logged(ctx, true)
	if interval <= 0 {
		return
	}
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.logged(ctx, false)
			}
		}
	}()
}

func (s *Sweeper) logged(ctx context.Context, startup bool) {
	rep, err := s.Sweep(ctx, startup)
	if rep != (Report{}) {
		s.cfg.Logger.Warn("recovered abandoned image data", "uploads", rep.Uploads, "stages", rep.Stages,
			"imports", rep.Imports, "staging_residues", rep.Residues)
	}
	if err != nil && ctx.Err() == nil {
		s.cfg.Logger.Error("recovery sweep", "error", err)
	}
}

// stale lists the images in status whose record is older than cutoff,
// hidden ones included.
func (s *Sweeper) stale(ctx context.Context, status domain.Status, cutoff time.Time) ([]domain.Image, error) {
	var out []domain.Image
	for _, hidden := range []bool{false, true} {
		marker := ""
		for {
			page, err := s.cfg.Repo.List(ctx, domain.ListQuery{
				Limit: 1000, Marker: marker, Visibility: "all", MemberStatus: "all", Hidden: hidden,
				Sort: []domain.SortKey{{Key: "created_at", Dir: "asc"}},
				Filters: []domain.Filter{
					{Field: "status", Op: domain.OpEq, Values: []string{string(status)}},
					{Field: "updated_at", Op: domain.OpLt, Values: []string{cutoff.UTC().Format(time.RFC3339)}},
				},
			})
			if err != nil {
				return out, err
			}
			out = append(out, page.Images...)
			if !page.Full || len(page.Images) == 0 {
				break
			}
			marker = page.Images[len(page.Images)-1].Meta().ID
		}
	}
	return out, nil
}

// revertUpload discards the partial data of a dead PUT /file from every
// writable backend and puts the image back in queued.
func (s *Sweeper) revertUpload(ctx context.Context, img domain.Image) error {
	id := img.Meta().ID
	for _, b := range s.cfg.Stores.Backends() {
		if b.ReadOnly() {
			continue
		}
		if err := discard(ctx, b.Driver, id); err != nil {
			return err
		}
	}
	return s.save(ctx, img, domain.StatusSaving, func(m *domain.Meta) {
		m.Status = domain.StatusQueued
		m.Size, m.Checksum, m.HashAlgo, m.HashValue, m.VirtualSize = nil, nil, nil, nil, nil
	})
}

// revertStage discards the partial staged data of a dead PUT /stage and
// puts the image back in queued.
func (s *Sweeper) revertStage(ctx context.Context, img domain.Image) error {
	if err := discard(ctx, s.cfg.Stores.Staging(), img.Meta().ID); err != nil {
		return err
	}
	return s.save(ctx, img, domain.StatusUploading, func(m *domain.Meta) {
		m.Status = domain.StatusQueued
		delete(m.Properties, "os_glance_stage_host")
	})
}

// Import properties of reference §10.1.
const (
	propImportTask = "os_glance_import_task"
	propImporting  = "os_glance_importing_to_stores"
	propFailed     = "os_glance_failed_import"
)

// revertImport ends a dead import: through the import service when there
// is one, else by discarding the partial data in the stores still being
// imported to, marking them failed, and putting the image back in queued,
// or in active when some store already holds all of its data.
func (s *Sweeper) revertImport(ctx context.Context, img domain.Image) error {
	if s.cfg.Imports != nil {
		return s.cfg.Imports.RevertDeadImport(ctx, img)
	}
	m := img.Meta()
	pending := splitList(m.Properties[propImporting])
	for _, b := range s.cfg.Stores.Backends() {
		if b.ReadOnly() || (len(pending) > 0 && b.ID != "" && !slices.Contains(pending, b.ID)) {
			continue
		}
		if hasLocationIn(m, b.ID) {
			continue // this store's copy finished before the crash
		}
		if err := discard(ctx, b.Driver, m.ID); err != nil {
			return err
		}
	}
	if err := discard(ctx, s.cfg.Stores.Staging(), m.ID); err != nil {
		return err
	}
	if lock := m.Properties[propImportTask]; lock != "" && s.cfg.ReleaseLock != nil {
		if err := s.cfg.ReleaseLock(ctx, m.ID, propImportTask, lock); err != nil && !errors.Is(err, domain.ErrNotFound) {
			return err
		}
	}
	return s.save(ctx, img, domain.StatusImporting, func(m *domain.Meta) {
		failed := append(splitList(m.Properties[propFailed]), pending...)
		slices.Sort(failed)
		failed = slices.Compact(failed)
		delete(m.Properties, propImportTask)
		delete(m.Properties, propImporting)
		if len(failed) > 0 {
			m.Properties[propFailed] = joinList(failed)
		}
		m.Status = domain.StatusQueued
		if hasActiveLocation(*m) {
			m.Status = domain.StatusActive
		}
	})
}

// residues removes staging objects that no image waits for: their image is
// gone, or neither uploading nor importing. An object whose image was
// updated within the lease is left alone: its stage may have just begun.
func (s *Sweeper) residues(ctx context.Context, cutoff time.Time) (int, error) {
	st := s.cfg.Stores.Staging()
	l, ok := st.(stores.Lister)
	if !ok {
		return 0, nil
	}
	ids, err := l.IDs(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		img, err := s.cfg.Repo.Get(ctx, id)
		switch {
		case errors.Is(err, domain.ErrNotFound):
		case err != nil:
			return n, err
		default:
			m := img.Meta()
			if m.Status == domain.StatusUploading || m.Status == domain.StatusImporting || !m.UpdatedAt.Before(cutoff) {
				continue
			}
		}
		if err := discard(ctx, st, id); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// save applies change to img and stores it if its status is still from.
func (s *Sweeper) save(ctx context.Context, img domain.Image, from domain.Status, change func(*domain.Meta)) error {
	if err := img.Update(func(m *domain.Meta) error {
		m.Properties = maps.Clone(m.Properties)
		if m.Properties == nil {
			m.Properties = map[string]string{}
		}
		change(m)
		return nil
	}); err != nil {
		return err
	}
	err := s.cfg.Repo.Save(ctx, img, from)
	if errors.Is(err, domain.ErrConflict) || errors.Is(err, domain.ErrNotFound) {
		return nil // someone else moved or deleted it meanwhile
	}
	return err
}

// discard asks d, or the driver it wraps, to remove the data of image id.
func discard(ctx context.Context, d stores.Driver, id string) error {
	for d != nil {
		if dd, ok := d.(stores.Discarder); ok {
			return dd.Discard(ctx, id)
		}
		u, ok := d.(interface{ Unwrap() stores.Driver })
		if !ok {
			return nil
		}
		d = u.Unwrap()
	}
	return nil
}

func hasActiveLocation(m domain.Meta) bool {
	for _, l := range m.Locations {
		if l.Status == "active" {
			return true
		}
	}
	return false
}

func hasLocationIn(m domain.Meta, store string) bool {
	for _, l := range m.Locations {
		if l.Status != "active" {
			continue
		}
		if id, _ := l.Metadata["store"].(string); id == store {
			return true
		}
	}
	return false
}

// splitList reads a comma-separated store list property.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func joinList(ids []string) string { return strings.Join(ids, ",") }
