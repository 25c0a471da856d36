// Package location is the ring of the onion that moves image data between
// the records and the stores (glance/location.py). It is the only package
// above the stores that imports them: it streams uploads into the default
// driver while computing the checksum and the multihash, records the
// location, reads data back for downloads and deletes it with the image.
package location

import (
	"cmp"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha3"
	"crypto/sha512"
	"errors"
	"hash"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/glance-go/glance-go/domain"
	"github.com/glance-go/glance-go/proxies"
	"github.com/glance-go/glance-go/proxies/inspect"
	"github.com/glance-go/glance-go/stores"
)

// DefaultHashAlgo is the default of [DEFAULT] hashing_algorithm.
const DefaultHashAlgo = "sha512"

// Stores is what the layer needs of the configured drivers (stores.Set).
type Stores interface {
	// Default returns the driver that receives new data by default.
	Default() stores.Driver
	// ForURL returns the driver serving a location URL, or
	// stores.ErrUnknownScheme.
	ForURL(url string) (stores.Driver, error)
	// Staging returns the driver of the staging area of imports, nil when
	// there is none.
	Staging() stores.Driver
	// Multi reports whether several named backends are configured
	// (enabled_backends).
	Multi() bool
	// Backend returns the backend with that id ("" for the default one; any
	// id in single-store).
	Backend(id string) (*stores.Backend, bool)
	// Backends returns the user-visible backends in configuration order.
	Backends() []*stores.Backend
	// ForLocation returns the driver of a location: the backend its
	// metadata names in multi-store, else the one serving its scheme.
	ForLocation(url, store string) (stores.Driver, error)
}

// Options tunes the layer.
type Options struct {
	// HashAlgo is [DEFAULT] hashing_algorithm, the os_hash_algo of new
	// uploads ("" means sha512). The md5 checksum is always computed too.
	HashAlgo string
	// StageHost is worker_self_reference_url (or public_endpoint): the
	// os_glance_stage_host recorded on staged images; "" records none.
	StageHost string
	// Formats is the [image_format] policy applied to the data of bare
	// images as it is stored; the zero Policy refuses unsafe data only.
	Formats inspect.Policy
	// Heartbeat is how often an upload, stage or import in progress
	// touches its image's record (domain.Toucher), so that crash recovery
	// does not take it for abandoned; 0 never touches it.
	Heartbeat time.Duration
	// Logger receives cleanup failures that cannot be returned; nil means
	// slog.Default().
	Logger *slog.Logger
}

var hashes = map[string]func() hash.Hash{
	"md5":        md5.New,
	"sha1":       sha1.New,
	"sha224":     sha256.New224,
	"sha256":     sha256.New,
	"sha384":     sha512.New384,
	"sha512":     sha512.New,
	"sha512_224": sha512.New512_224,
	"sha512_256": sha512.New512_256,
	"sha3_224":   func() hash.Hash { return sha3.New224() },
	"sha3_256":   func() hash.Hash { return sha3.New256() },
	"sha3_384":   func() hash.Hash { return sha3.New384() },
	"sha3_512":   func() hash.Hash { return sha3.New512() },
}

// HashAlgos lists the hashing_algorithm values the layer supports, sorted.
func HashAlgos() []string {
	var out []string
	for k := range hashes {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// NewHash returns a new hash of the named hashing_algorithm, and false when
// the name is not supported.
func NewHash(name string) (hash.Hash, bool) {
	h, ok := hashes[name]
	if !ok {
		return nil, false
	}
	return h(), true
}

// ValidHashAlgo reports whether name is a supported hashing_algorithm.
func ValidHashAlgo(name string) bool {
	_, ok := hashes[name]
	return ok
}

// Layer returns the location ring. inner is the database repo: the layer
// saves the status changes of an upload (queued→saving→active, or back to
// queued on failure) straight to it, comparing and swapping the status so
// that concurrent uploads of one image conflict.
func Layer(st Stores, inner domain.Repo, opts Options) proxies.Layer {
	if opts.HashAlgo == "" {
		opts.HashAlgo = DefaultHashAlgo
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	wrap := func(img domain.Image) domain.Image {
		i := &image{Image: proxies.Image{Next: img}, st: st, inner: inner, opts: opts}
		i.sortLocations()
		return i
	}
	return proxies.Layer{
		Name:    "location",
		Repo:    func(next domain.Repo) domain.Repo { return &repo{Repo: proxies.Repo{Next: next, Wrap: wrap}} },
		Factory: func(next domain.Factory) domain.Factory { return proxies.Factory{Next: next, Wrap: wrap} },
	}
}

// repo deletes, when an image is saved, the data of the locations removed
// from it since it was loaded.
type repo struct {
	proxies.Repo
}

var _ domain.Repo = (*repo)(nil)

// Save implements domain.Repo. The data of removed locations is deleted
// first, as Glance does when a location is popped; a store that refuses
// leaves the record as it was.
func (r *repo) Save(ctx context.Context, img domain.Image, from domain.Status) error {
	if i, ok := img.(*image); ok {
		if err := i.flush(ctx); err != nil {
			return err
		}
	}
	return r.Repo.Save(ctx, img, from)
}

type image struct {
	proxies.Image
	st    Stores
	inner domain.Repo
	opts  Options

	mu      sync.Mutex
	removed []domain.Location // locations whose data goes at the next Save
}

var _ domain.Image = (*image)(nil)

// Peek implements domain.Peeker: this layer shows the record of the layer
// below unchanged.
func (i *image) Peek() *domain.Meta { return domain.Peek(i.Next) }

func (i *image) log() *slog.Logger { return i.opts.Logger }

// backToQueued resets the image in memory to queued, without data.
func (i *image) backToQueued() {
	err := i.Next.Update(func(m *domain.Meta) error {
		m.Status = domain.StatusQueued
		m.Size, m.Checksum, m.HashValue = nil, nil, nil
		m.Locations = slices.DeleteFunc(m.Locations, func(l domain.Location) bool { return l.Status == "active" })
		if len(m.Locations) == 0 {
			m.Locations = nil
		}
		return nil
	})
	if err != nil {
		i.log().Error("cannot reset image to queued", "image_id", i.Next.Meta().ID, "error", err)
	}
}

// fail undoes a failed upload: it deletes any stored object, puts the image
// back in queued without size, hashes or location, saves that, and returns
// cause as a domain error.
func (i *image) fail(ctx context.Context, drv stores.Driver, obj stores.Object, cause error) error {
	bg := context.WithoutCancel(ctx)
	id := i.Next.Meta().ID
	if drv != nil && obj.URL != "" {
		i.deleteData(bg, drv, obj.URL)
	}
	i.backToQueued()
	if err := i.inner.Save(bg, i.Next, domain.StatusSaving); err != nil {
		i.log().Error("cannot reset image to queued after a failed upload", "image_id", id, "error", err)
	}
	return uploadError(ctx, id, cause)
}

func (i *image) deleteData(ctx context.Context, drv stores.Driver, url string) {
	if err := drv.Delete(context.WithoutCancel(ctx), url); err != nil && !errors.Is(err, stores.ErrNotFound) {
		i.log().Error("cannot delete image data", "url", redact(url), "error", err)
	}
}

// redact drops the credentials some location URLs carry.
func redact(url string) string {
	sc, rest, ok := strings.Cut(url, "://")
	if !ok {
		return "<invalid>"
	}
	if at := strings.LastIndex(strings.SplitN(rest, "/", 2)[0], "@"); at >= 0 {
		rest = "***" + rest[at:]
	}
	return sc + "://" + rest
}

// uploadError turns an upload failure into a domain error.
func uploadError(ctx context.Context, id string, err error) error {
	var de *domain.Error
	var te *domain.TransitionError
	switch {
	case errors.As(err, &de):
		return de
	case errors.As(err, &te):
		return te
	// The client's faults first: a body cut off before its end also ends
	// the request's context, and the client is told it sent too little.
	case errors.Is(err, errRead) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded):
		return domain.Errorf(domain.ErrInvalid, "%s", err.Error())
	case errors.Is(err, stores.ErrSizeMismatch):
		return domain.Errorf(domain.ErrInvalid, "%s", storeMsg(err))
	case ctx.Err() != nil:
		return domain.Errorf(domain.ErrUnavailable, "The upload of image %s was interrupted: %v", id, context.Cause(ctx))
	case errors.Is(err, stores.ErrFull):
		return domain.Errorf(domain.ErrOverLimit, "Image storage media is full: %s", storeMsg(err))
	case errors.Is(err, stores.ErrExists):
		return domain.Errorf(domain.ErrConflict, "Unable to upload duplicate image data for image %s: %s", id, storeMsg(err))
	case errors.Is(err, stores.ErrReadOnly):
		return domain.Errorf(domain.ErrUnavailable, "Insufficient permissions on image storage media: %s", storeMsg(err))
	}
	return domain.Errorf(domain.ErrUnavailable, "Failed to upload image data for image %s due to internal error: %s", id, storeMsg(err))
}

// storeMsg is a driver error's text without the package prefix.
func storeMsg(err error) string {
	s := strings.TrimPrefix(err.Error(), "stores: ")
	if s == "" {
		return "unknown error"
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// Data implements domain.Image: it reads from the first live location whose
// driver answers, highest backend weight first in multi-store, trying the
// next on failure. The reader is the driver's own, so that an
// io.WriterTo it implements (the file store's sendfile path) reaches the
// caller.
func (i *image) Data(ctx context.Context, off, n int64) (io.ReadCloser, error) {
	m := i.Next.Meta()
	locs := slices.Clone(m.Locations)
	if i.st.Multi() {
		slices.SortStableFunc(locs, func(a, b domain.Location) int { return cmp.Compare(i.weight(b), i.weight(a)) })
	}
	var last error
	for _, l := range locs {
		if l.Status == "deleted" || l.Status == "pending_delete" {
			continue
		}
		drv, err := i.driverFor(l)
		if err != nil {
			last = err
			continue
		}
		rc, err := drv.Get(ctx, l.URL, off, n)
		if err != nil {
			i.log().Warn("cannot read image data", "image_id", m.ID, "url", redact(l.URL), "error", err)
			last = err
			continue
		}
		return rc, nil
	}
	switch {
	case last == nil, errors.Is(last, stores.ErrNotFound):
		return nil, domain.ErrNoData
	case errors.Is(last, stores.ErrUnknownScheme):
		return nil, domain.Errorf(domain.ErrUnavailable, "No store serves the location of image %s.", m.ID)
	}
	var de *domain.Error
	if errors.As(last, &de) {
		return nil, de
	}
	return nil, domain.Errorf(domain.ErrUnavailable, "Cannot read data of image %s: %s", m.ID, storeMsg(last))
}

// Delete implements domain.Image. The checks of the image below run first;
// the data is deleted next, and only when every store agreed is the image
// marked deleted, so that a store refusing leaves the image as it was.
func (i *image) Delete(ctx context.Context) error {
	m := i.Next.Meta()
	if m.Protected || !domain.CanTransition(m.Status, domain.StatusDeleted) {
		return i.Next.Delete(ctx) // reports why it may not be deleted
	}
	for _, l := range m.Locations {
		if l.Status == "deleted" {
			continue
		}
		drv, err := i.driverFor(l)
		if err != nil {
			i.log().Warn("no store for location; leaving its data", "image_id", m.ID, "url", redact(l.URL))
			continue
		}
		if i.readOnly(drv) {
			continue
		}
		err = drv.Delete(ctx, l.URL)
		switch {
		case err == nil, errors.Is(err, stores.ErrNotFound):
		case errors.Is(err, stores.ErrInUse):
			return domain.Errorf(domain.ErrConflict, "Image %s could not be deleted because it is in use: %s", m.ID, storeMsg(err))
		default:
			return domain.Errorf(domain.ErrUnavailable, "Image %s could not be deleted: %s", m.ID, storeMsg(err))
		}
	}
	return i.Next.Delete(ctx)
}

func isDomain(err error) bool {
	var de *domain.Error
	var te *domain.TransitionError
	return errors.As(err, &de) || errors.As(err, &te)
}
