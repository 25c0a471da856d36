// Package quota is the ring of the onion that enforces the legacy,
// per-deployment limits (glance/quota/__init__.py): the numbers of
// properties, tags, members and locations of an image, the image size cap
// and the per-project storage quota.
package quota

import (
	"context"
	"io"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/glance-go/glance-go/domain"
	"github.com/glance-go/glance-go/proxies"
)

// reservedPrefix marks properties that Glance itself sets; they are not
// counted against the property limit.
const reservedPrefix = "os_glance"

// Limits are the configured limits. A negative count means unlimited.
type Limits struct {
	Properties int // image_property_quota
	Tags       int // image_tag_quota
	Members    int // image_member_quota
	Locations  int // image_location_quota
	// SizeCap is image_size_cap in bytes; 0 or less means no cap.
	SizeCap int64
	// StorageBytes is user_storage_quota in bytes (see ParseSize); 0 or
	// less means unlimited.
	StorageBytes int64
	// Reservations is the server's ledger of uploads in progress, shared
	// by every request so that concurrent uploads of one owner cannot
	// together pass StorageBytes. nil gives each upload a ledger of its
	// own, which protects nothing across requests.
	Reservations *Reservations
}

// UsageFunc returns the bytes of image data a project already stores
// (the database implements it).
type UsageFunc func(ctx context.Context, owner string) (int64, error)

// Layer returns the quota ring for caller c. usage may be nil when
// lim.StorageBytes is unlimited.
func Layer(lim Limits, usage UsageFunc, c *domain.Caller) proxies.Layer {
	if c == nil {
		c = &domain.Caller{}
	}
	wrap := func(img domain.Image) domain.Image {
		return &image{Image: proxies.Image{Next: img}, lim: lim, usage: usage, c: c, orig: loaded(domain.Peek(img))}
	}
	return proxies.Layer{
		Name: "quota",
		Repo: func(next domain.Repo) domain.Repo {
			return &repo{Repo: proxies.Repo{Next: next, Wrap: wrap}, lim: lim}
		},
		Factory: func(next domain.Factory) domain.Factory {
			return &factory{Factory: proxies.Factory{Next: next, Wrap: wrap}, lim: lim}
		},
		Members: func(img domain.Image, next domain.MemberRepo) domain.MemberRepo {
			return &members{Members: proxies.Members{Next: next}, lim: lim, id: img.Meta().ID}
		},
	}
}

type repo struct {
	proxies.Repo
	lim Limits
}

type factory struct {
	proxies.Factory
	lim Limits
}

type image struct {
	proxies.Image
	lim   Limits
	usage UsageFunc
	c     *domain.Caller
	orig  domain.Meta // the properties and tags as loaded, to tell what a save adds
}

// Peek implements domain.Peeker: this layer shows the record of the layer
// below unchanged.
func (i *image) Peek() *domain.Meta { return domain.Peek(i.Next) }

type members struct {
	proxies.Members
	lim Limits
	id  string
}

var (
	_ domain.Repo       = (*repo)(nil)
	_ domain.Factory    = (*factory)(nil)
	_ domain.Image      = (*image)(nil)
	_ domain.MemberRepo = (*members)(nil)
)

func countProps(p map[string]string) int {
	n := 0
	for k := range p {
		if !strings.HasPrefix(k, reservedPrefix) {
			n++
		}
	}
	return n
}

func (l Limits) checkProps(p map[string]string) error {
	if l.Properties < 0 {
		return nil
	}
	if n := countProps(p); n > l.Properties {
		return domain.Errorf(domain.ErrOverLimit, "The limit has been exceeded on the number of allowed "+
			"image properties. Attempted: %d, Maximum: %d", n, l.Properties)
	}
	return nil
}

func (l Limits) checkTags(tags []string) error {
	if l.Tags < 0 {
		return nil
	}
	if n := len(distinct(tags)); n > l.Tags {
		return domain.Errorf(domain.ErrOverLimit, "The limit has been exceeded on the number of allowed "+
			"image tags. Attempted: %d, Maximum: %d", n, l.Tags)
	}
	return nil
}

func (l Limits) checkLocations(locs []domain.Location) error {
	if l.Locations < 0 {
		return nil
	}
	n := 0
	for _, loc := range locs {
		if loc.Status != "deleted" {
			n++
		}
	}
	if n > l.Locations {
		return domain.Errorf(domain.ErrOverLimit, "The limit has been exceeded on the number of allowed "+
			"image locations. Attempted: %d, Maximum: %d", n, l.Locations)
	}
	return nil
}

func distinct(tags []string) []string {
	t := slices.Clone(tags)
	slices.Sort(t)
	return slices.Compact(t)
}

// addsKeys reports whether m has a property key that old lacks.
// loaded copies what Save compares with of the record m.
func loaded(m *domain.Meta) domain.Meta {
	return domain.Meta{Properties: maps.Clone(m.Properties), Tags: slices.Clone(m.Tags)}
}

func addsKeys(old, m map[string]string) bool {
	for k := range m {
		if _, ok := old[k]; !ok {
			return true
		}
	}
	return false
}

// addsTags reports whether m has a tag that old lacks.
func addsTags(old, m []string) bool {
	for _, t := range m {
		if !slices.Contains(old, t) {
			return true
		}
	}
	return false
}

// NewImage implements domain.Factory.
func (f *factory) NewImage(ctx context.Context, m domain.Meta) (domain.Image, error) {
	if err := f.lim.checkTags(m.Tags); err != nil {
		return nil, err
	}
	if err := f.lim.checkProps(m.Properties); err != nil {
		return nil, err
	}
	return f.Factory.NewImage(ctx, m)
}

// Add implements domain.Repo.
func (r *repo) Add(ctx context.Context, img domain.Image) error {
	m := img.Meta()
	if err := r.lim.checkProps(m.Properties); err != nil {
		return err
	}
	if err := r.lim.checkTags(m.Tags); err != nil {
		return err
	}
	return r.Repo.Add(ctx, img)
}

// Save implements domain.Repo. Like Glance, it counts properties and tags
// only when the save adds some, so that lowering a limit does not lock
// existing images.
func (r *repo) Save(ctx context.Context, img domain.Image, from domain.Status) error {
	m := img.Meta()
	var orig domain.Meta
	if q, ok := img.(*image); ok {
		orig = q.orig
	}
	if addsKeys(orig.Properties, m.Properties) {
		if err := r.lim.checkProps(m.Properties); err != nil {
			return err
		}
	}
	if addsTags(orig.Tags, m.Tags) {
		if err := r.lim.checkTags(m.Tags); err != nil {
			return err
		}
	}
	err := r.Repo.Save(ctx, img, from)
	if q, ok := img.(*image); ok && err == nil {
		q.orig = loaded(domain.Peek(q))
	}
	return err
}

// Update implements domain.Image: a change that adds properties, tags or
// locations beyond the limits is refused.
func (i *image) Update(fn func(*domain.Meta) error) error {
	return i.Next.Update(func(m *domain.Meta) error {
		before := m.Clone()
		if err := fn(m); err != nil {
			return err
		}
		if addsKeys(before.Properties, m.Properties) {
			if err := i.lim.checkProps(m.Properties); err != nil {
				return err
			}
		}
		if addsTags(before.Tags, m.Tags) {
			if err := i.lim.checkTags(m.Tags); err != nil {
				return domain.Errorf(domain.ErrOverLimit, "Image tag limit exceeded for image %s: %s:", m.ID, err)
			}
		}
		if len(m.Locations) > len(before.Locations) {
			if err := i.lim.checkLocations(m.Locations); err != nil {
				return err
			}
		}
		return nil
	})
}

// SetData implements domain.Image. It refuses an announced size over the
// cap or the storage quota, and limits the stream itself so that data of
// unknown size fails once it goes past either. The storage quota counts the
// owner's stored usage plus the reservations of the owner's other uploads
// in progress: an announced size is reserved up front, an unknown one
// grows its reservation as bytes arrive; the reservation ends with the
// upload.
func (i *image) SetData(ctx context.Context, r io.Reader, in domain.DataIn) (err error) {
	size := in.Size
	if i.lim.SizeCap > 0 && size > i.lim.SizeCap {
		return errTooLarge()
	}
	lr := &limitReader{r: r, capped: i.lim.SizeCap > 0, cap: i.lim.SizeCap}
	if i.lim.StorageBytes > 0 && i.usage != nil {
		ledger := i.lim.Reservations
		if ledger == nil {
			ledger = NewReservations()
		}
		res, rerr := ledger.reserve(ctx, i.c.ProjectID, i.lim.StorageBytes, size, i.usage)
		if rerr != nil {
			return rerr
		}
		lr.res = res
		// err is SetData's result: the bytes count as stored only when
		// the upload succeeded.
		defer func() { res.release(err == nil) }()
	}
	if !lr.capped && lr.res == nil {
		return i.Next.SetData(ctx, r, in)
	}
	err = i.Next.SetData(ctx, lr, in)
	return err
}

func errTooLarge() error {
	return domain.Errorf(domain.ErrOverLimit, "The incoming image is too large: The provided image is too large.")
}

func errQuota(size, left int64) error {
	return domain.Errorf(domain.ErrOverLimit, "Image exceeds the storage quota: The size of the data %d will "+
		"exceed the limit. %d bytes remaining.", size, left)
}

// limitReader fails with a 413 domain error once more than cap bytes (the
// size cap) or more than left bytes (a fixed storage quota) have been read,
// or once the bytes read no longer fit the upload's reservation and it
// cannot grow (the storage quota of SetData).
type limitReader struct {
	r      io.Reader
	n      int64
	capped bool
	cap    int64
	quota  bool
	left   int64
	res    *reservation // nil: no reservation
}

func (l *limitReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.n += int64(n)
	if l.capped && l.n > l.cap {
		return 0, errTooLarge()
	}
	if l.quota && l.n > l.left {
		return 0, errQuota(l.n, l.left)
	}
	if l.res != nil {
		if qerr := l.res.cover(l.n); qerr != nil {
			return 0, qerr
		}
	}
	return n, err
}

// Add implements domain.MemberRepo: one more member must fit the limit.
func (m *members) Add(ctx context.Context, mb domain.Member) error {
	if m.lim.Members >= 0 {
		cur, err := m.Next.List(ctx)
		if err != nil {
			return err
		}
		if n := len(cur) + 1; n > m.lim.Members {
			return domain.Errorf(domain.ErrOverLimit, "Image member limit exceeded for image %s: The limit has "+
				"been exceeded on the number of allowed image members for this image. Attempted: %d, Maximum: %d:",
				m.id, n, m.lim.Members)
		}
	}
	return m.Members.Add(ctx, mb)
}

var sizeRe = regexp.MustCompile(`^(\d+)((K|M|G|T)?B)?$`)

// ParseSize parses a user_storage_quota value: digits, optionally followed
// by B, KB, MB, GB or TB, with 1024-based units ("10GB" is 10 GiB).
func ParseSize(s string) (int64, error) {
	mt := sizeRe.FindStringSubmatch(s)
	if mt == nil {
		return 0, domain.Errorf(domain.ErrInvalid, "Invalid value for option user_storage_quota: %s", s)
	}
	v, err := strconv.ParseInt(mt[1], 10, 64)
	if err != nil {
		return 0, domain.Errorf(domain.ErrInvalid, "Invalid value for option user_storage_quota: %s", s)
	}
	shift := map[string]uint{"": 0, "K": 10, "M": 20, "G": 30, "T": 40}[mt[3]]
	if v > math.MaxInt64>>shift {
		return 0, domain.Errorf(domain.ErrInvalid, "Invalid value for option user_storage_quota: %s", s)
	}
	return v << shift, nil
}
