//go:build ceph

// Package rbd is the Ceph RBD store driver (glance_store's _drivers/rbd.py),
// built only with the build tags ceph and pacific (Debian's Ceph 16) and
// cgo, with librados and librbd: go build -tags ceph,pacific.
//
// Each image's data is an RBD image named by the image id in the pool
// rbd_store_pool, with objects of rbd_store_chunk_size MiB. Put creates it
// with the announced size, or grows it while writing when the size is
// unknown (by steps that double up to 8 GiB) and then trims it to the bytes
// written; it then creates the snapshot "snap" and protects it, so that
// Nova and Cinder can clone it copy-on-write from the location
// rbd://<fsid>/<pool>/<image>/snap. Reads come from that snapshot.
//
// Delete unprotects and removes the snapshot, then the image. While clones
// of the snapshot exist it answers stores.ErrInUse and keeps the image; if
// snapshots other than "snap" exist, the image goes to the RBD trash.
//
// Unlike glance_store, which writes and reads one chunk at a time, Put
// keeps several chunk writes in flight with librbd's asynchronous API, Get
// as many reads ahead of its caller, and the driver keeps one cluster
// connection, opened at start-up or first use, for all its work. The chunk
// buffers of all its Puts and Gets come from one pool, of
// rbd_store_buffer_budget (glance-go's own option, 64 MiB by default), and
// are reused; a transfer that finds the pool empty waits for a buffer.
//
// # What a failure leaves
//
// A Put that fails or is cancelled removes the image it created; when the
// cluster does not answer (an OSD down), the removal is retried in the
// background until it does. A process killed in the middle of a Put leaves
// an image named by the id, usually without its snapshot; crash recovery
// removes it with Discard.
package rbd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ceph/go-ceph/rados"
	"github.com/ceph/go-ceph/rbd"

	"github.com/glance-go/glance-go/stores"
)

// Defaults of glance_store's options.
const (
	DefaultPool      = "images"
	DefaultChunkSize = 8 << 20 // rbd_store_chunk_size = 8 MiB
	// SnapName is the snapshot every image gets, the one clones come from.
	SnapName = "snap"
	// DefaultInFlight is how many chunk writes Put keeps in flight.
	DefaultInFlight = 4
	// DefaultBufferBudget is the C memory for chunk buffers that all the
	// uploads and downloads of one store share: 64 MiB, eight buffers of
	// the default chunk size, which is two uploads at full speed, or eight
	// transfers with one chunk in flight each.
	DefaultBufferBudget = 64 << 20

	maxGrowStep = 8 << 30 // the largest step by which Put grows an image
)

// Config is the RBD store's options, from a backend's section.
type Config struct {
	// Pool is rbd_store_pool.
	Pool string
	// User is rbd_store_user, the Ceph client name without "client."; ""
	// leaves librados's default (admin).
	User string
	// ConfFile is rbd_store_ceph_conf; "" lets librados search its default
	// places (CEPH_CONF, /etc/ceph/ceph.conf, ...).
	ConfFile string
	// ChunkSize is rbd_store_chunk_size in bytes: the size of each write and
	// read, and, rounded down to a power of two, of the image's objects.
	// 0 means 8 MiB.
	ChunkSize int
	// ConnectTimeout is rados_connect_timeout, whole seconds: like
	// glance_store, it limits connecting and each operation on the
	// monitors and OSDs (an OSD down fails a Put after that long instead
	// of stalling it). 0 or less leaves librados's defaults and ceph.conf.
	ConnectTimeout time.Duration
	// ThinProvisioning is rbd_thin_provisioning: chunks of zeros are
	// skipped instead of written.
	ThinProvisioning bool
	// InFlight is how many chunk writes Put keeps in flight, and chunk
	// reads Get keeps ahead; 0 means 4.
	InFlight int
	// BufferBudget is rbd_store_buffer_budget in bytes, glance-go's own:
	// the chunk buffers of all the driver's Puts and Gets together take no
	// more, but always at least InFlight buffers. 0 means 64 MiB.
	BufferBudget int

	// namespace is the RBD namespace of the pool the driver works in: ""
	// (the pool itself) except in tests, which take one each.
	namespace string
}

// Driver stores image data as RBD images.
type Driver struct {
	cfg   Config
	order int
	pool  *bufPool // the chunk buffers of every Put and Get

	// mu guards the fields below; it is never held across a call to the
	// cluster.
	mu      sync.Mutex
	conn    *rados.Conn
	fsid    string
	ioctxs  map[string]*rados.IOContext // by pool
	closed  bool
	dialing *dialCall // the connection attempt under way

	// Removals of partial images that failed, retried in the background.
	retrying map[string]bool
	stop     chan struct{} // closed by Close
	retries  sync.WaitGroup

	// retryDelay is the first pause between removal attempts.
	retryDelay time.Duration
}

// dialCall is one attempt to connect to the cluster, shared by every
// caller that needs the connection meanwhile.
type dialCall struct {
	done chan struct{}
	conn *rados.Conn
	fsid string
	err  error
}

var (
	_ stores.Driver    = (*Driver)(nil)
	_ stores.Discarder = (*Driver)(nil)
	_ stores.Lister    = (*Driver)(nil)
)

// New returns a driver for cfg. It does not connect: the cluster may come
// up later, and the first call that needs it connects.
func New(cfg Config) (*Driver, error) {
	if cfg.Pool == "" {
		cfg.Pool = DefaultPool
	}
	if cfg.ChunkSize == 0 {
		cfg.ChunkSize = DefaultChunkSize
	}
	if cfg.InFlight == 0 {
		cfg.InFlight = DefaultInFlight
	}
	if cfg.BufferBudget == 0 {
		cfg.BufferBudget = DefaultBufferBudget
	}
	order := bits.Len(uint(cfg.ChunkSize)) - 1
	switch {
	case cfg.ChunkSize < 0 || order < 12 || order > 25:
		return nil, fmt.Errorf("stores/rbd: chunk size %d: it must be from 4 KiB to less than 64 MiB", cfg.ChunkSize)
	case cfg.InFlight < 1:
		return nil, fmt.Errorf("stores/rbd: %d writes in flight: at least 1 is needed", cfg.InFlight)
	case cfg.BufferBudget < 0:
		return nil, fmt.Errorf("stores/rbd: buffer budget %d: it must not be negative", cfg.BufferBudget)
	}
	alloc, release := cBuffers(cfg.ChunkSize)
	pool := newBufPool(bufferCount(cfg), alloc, release)
	return &Driver{cfg: cfg, order: order, pool: pool, ioctxs: map[string]*rados.IOContext{},
		retrying: map[string]bool{}, stop: make(chan struct{}), retryDelay: time.Second}, nil
}

// ConfigFromOptions reads a configuration section's RBD options; invalid
// values are recorded in o.
func ConfigFromOptions(o *stores.Options) Config {
	cfg := Config{
		Pool:             o.String("rbd_store_pool", DefaultPool),
		User:             o.String("rbd_store_user", ""),
		ConfFile:         o.String("rbd_store_ceph_conf", ""),
		ThinProvisioning: o.Bool("rbd_thin_provisioning", false),
	}
	mib := o.Int("rbd_store_chunk_size", DefaultChunkSize>>20)
	if mib < 1 || mib > 63 {
		o.Fail("rbd_store_chunk_size", "must be from 1 to 63 (MiB)")
	} else {
		cfg.ChunkSize = mib << 20
	}
	if mib := o.Int("rbd_store_buffer_budget", DefaultBufferBudget>>20); mib < 1 || mib > 1<<20 {
		o.Fail("rbd_store_buffer_budget", "must be from 1 to 1048576 (MiB)")
	} else {
		cfg.BufferBudget = mib << 20
	}
	if t := o.Int("rados_connect_timeout", -1); t > 0 {
		cfg.ConnectTimeout = time.Duration(t) * time.Second
	}
	if cfg.Pool == "" {
		o.Fail("rbd_store_pool", "must not be empty")
	}
	return cfg
}

// bufferCount is how many chunk buffers cfg's budget allows: budget/chunk,
// but at least InFlight, so that one transfer on an idle store always gets
// its full share.
func bufferCount(cfg Config) int {
	return max(cfg.InFlight, cfg.BufferBudget/cfg.ChunkSize)
}

// open is the Opener registered for the store type rbd.
func open(o *stores.Options) (*stores.Backend, error) {
	cfg := ConfigFromOptions(o)
	if err := o.Err(); err != nil {
		return nil, err
	}
	d, err := New(cfg)
	if err != nil {
		return nil, err
	}
	// Like glance_store, learn the cluster's fsid at start-up for
	// /v2/info/stores/detail, but do not wait long for a cluster that is
	// down: the store works without it and connects when first used.
	// A configuration file that cannot be read is a mistake to report now.
	connected := make(chan error, 1)
	go func() {
		_, _, err := d.connect(context.Background())
		connected <- err
	}()
	select {
	case err := <-connected:
		if ce := (*confError)(nil); errors.As(err, &ce) {
			d.Close()
			if ce.file != "" {
				o.Fail("rbd_store_ceph_conf", ce.Error())
				return nil, o.Err()
			}
			return nil, ce
		}
	case <-time.After(startupConnectWait):
	}
	return &stores.Backend{Driver: d, Properties: d.Properties()}, nil
}

// startupConnectWait is how long opening the store waits for the cluster.
const startupConnectWait = 5 * time.Second

// Properties returns what /v2/info/stores/detail shows of the store: the
// chunk size, pool, thin provisioning and, once connected, the fsid.
func (d *Driver) Properties() map[string]any {
	d.mu.Lock()
	fsid := d.fsid
	d.mu.Unlock()
	p := map[string]any{"chunk_size": d.cfg.ChunkSize, "pool": d.cfg.Pool, "thin_provisioning": d.cfg.ThinProvisioning, "fsid": nil}
	if fsid != "" {
		p["fsid"] = fsid
	}
	return p
}

// ChunkSize returns the size of each write and read, in bytes.
func (d *Driver) ChunkSize() int { return d.cfg.ChunkSize }

// Schemes implements stores.Driver.
func (d *Driver) Schemes() []string { return []string{"rbd"} }

// Close stops the background removals, closes the cluster connection and
// frees the chunk buffers (those of transfers still open when they end).
// Calls after it fail.
func (d *Driver) Close() error {
	d.mu.Lock()
	if d.stopping() {
		d.mu.Unlock()
		return nil
	}
	close(d.stop)
	d.mu.Unlock()
	d.retries.Wait()
	d.mu.Lock()
	ioctxs, conn := d.ioctxs, d.conn
	d.ioctxs, d.conn, d.closed = nil, nil, true
	d.mu.Unlock()
	for _, io := range ioctxs {
		io.Destroy()
	}
	if conn != nil {
		conn.Shutdown()
	}
	d.pool.close()
	return nil
}

// stopping reports whether Close has begun; d.mu is held.
func (d *Driver) stopping() bool {
	select {
	case <-d.stop:
		return true
	default:
		return false
	}
}

// connect returns the cluster connection and its fsid, connecting first if
// needed. One attempt runs at a time, without the driver's lock; callers
// wait for it or for ctx. A failed attempt is not kept: the next call
// tries again.
func (d *Driver) connect(ctx context.Context) (*rados.Conn, string, error) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, "", errors.New("stores/rbd: driver closed")
	}
	if d.conn != nil {
		conn, fsid := d.conn, d.fsid
		d.mu.Unlock()
		return conn, fsid, nil
	}
	call := d.dialing
	if call == nil {
		call = &dialCall{done: make(chan struct{})}
		d.dialing = call
		go d.dialFor(call)
	}
	d.mu.Unlock()
	select {
	case <-call.done:
		return call.conn, call.fsid, call.err
	case <-ctx.Done():
		return nil, "", ctx.Err()
	}
}

// dialFor connects to the cluster for call and keeps the connection
// unless the driver was closed meanwhile.
func (d *Driver) dialFor(call *dialCall) {
	defer close(call.done)
	conn, fsid, err := d.dialFSID()
	d.mu.Lock()
	d.dialing = nil
	keep := err == nil && !d.closed
	if keep {
		d.conn, d.fsid = conn, fsid
	}
	closed := d.closed
	d.mu.Unlock()
	switch {
	case keep:
		call.conn, call.fsid = conn, fsid
	case err == nil && closed:
		conn.Shutdown()
		err = errors.New("stores/rbd: driver closed")
	}
	call.err = err
}

// dialFSID connects to the cluster and reads its fsid.
func (d *Driver) dialFSID() (*rados.Conn, string, error) {
	conn, err := d.dial()
	if ce := (*confError)(nil); errors.As(err, &ce) {
		return nil, "", fmt.Errorf("stores/rbd: %w", err)
	}
	if err != nil {
		return nil, "", fmt.Errorf("%w: ceph cluster: %v", stores.ErrUnavailable, err)
	}
	fsid, err := conn.GetFSID()
	if err != nil {
		conn.Shutdown()
		return nil, "", fmt.Errorf("%w: ceph cluster: %v", stores.ErrUnavailable, err)
	}
	return conn, fsid, nil
}

func (d *Driver) dial() (*rados.Conn, error) {
	var (
		conn *rados.Conn
		err  error
	)
	if d.cfg.User != "" {
		conn, err = rados.NewConnWithUser(d.cfg.User)
	} else {
		conn, err = rados.NewConn()
	}
	if err != nil {
		return nil, err
	}
	if d.cfg.ConfFile != "" {
		err = conn.ReadConfigFile(d.cfg.ConfFile)
	} else {
		err = conn.ReadDefaultConfigFile()
	}
	if err != nil {
		conn.Shutdown()
		return nil, &confError{file: d.cfg.ConfFile, err: err}
	}
	if err == nil {
		// Breaking a lock must not fence the client that held it when that
		// client is this very connection (see breakOwnLocks).
		err = conn.SetConfigOption("rbd_blocklist_on_break_lock", "false")
	}
	if d.cfg.ConnectTimeout > 0 {
		// as glance_store: the same limit for connecting and for every
		// operation of the monitors and OSDs
		t := strconv.Itoa(int(d.cfg.ConnectTimeout / time.Second))
		for _, opt := range []string{"rados_osd_op_timeout", "rados_mon_op_timeout", "client_mount_timeout"} {
			if err == nil {
				err = conn.SetConfigOption(opt, t)
			}
		}
	}
	if err == nil {
		err = conn.Connect()
	}
	if err != nil {
		conn.Shutdown()
		return nil, err
	}
	return conn, nil
}

// confError reports a Ceph configuration file that cannot be read.
type confError struct {
	file string // "" for librados's default places
	err  error
}

func (e *confError) Error() string {
	if e.file == "" {
		return fmt.Sprintf("no readable Ceph configuration file in librados's default places (CEPH_CONF, /etc/ceph/ceph.conf, ...): %v", e.err)
	}
	return fmt.Sprintf("cannot read the Ceph configuration file %s: %v", e.file, e.err)
}

func (e *confError) Unwrap() error { return e.err }

// ioctx returns the I/O context of pool, opened once and kept. It is
// opened without the driver's lock; of two opened at once, one is kept.
func (d *Driver) ioctx(ctx context.Context, pool string) (*rados.IOContext, error) {
	d.mu.Lock()
	io := d.ioctxs[pool]
	d.mu.Unlock()
	if io != nil {
		return io, nil
	}
	conn, _, err := d.connect(ctx)
	if err != nil {
		return nil, err
	}
	io, err = conn.OpenIOContext(pool)
	if err != nil {
		if isErrno(err, syscall.ENOENT) {
			return nil, fmt.Errorf("%w: pool %q does not exist", stores.ErrNotFound, pool)
		}
		return nil, mapErr(err, "opening pool "+pool)
	}
	io.SetNamespace(d.cfg.namespace)
	d.mu.Lock()
	kept, closed := d.ioctxs[pool], d.closed
	if kept == nil && !closed {
		d.ioctxs[pool], kept = io, io
	}
	d.mu.Unlock()
	if kept != io {
		io.Destroy()
	}
	if closed {
		return nil, errors.New("stores/rbd: driver closed")
	}
	return kept, nil
}

// location is a parsed rbd:// URL: rbd://<image> or
// rbd://<fsid>/<pool>/<image>/<snapshot>, each part url-quoted.
type location struct {
	fsid, pool, image, snap string
}

func parseURL(u string) (location, error) {
	sc, rest, ok := strings.Cut(u, "://")
	if !ok || !strings.EqualFold(sc, "rbd") {
		return location{}, fmt.Errorf("%w: %q", stores.ErrUnknownScheme, u)
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 1 && len(parts) != 4 {
		return location{}, fmt.Errorf("%w: invalid rbd location %q: it must have 1 or 4 parts", stores.ErrNotFound, u)
	}
	for i, p := range parts {
		if p == "" {
			return location{}, fmt.Errorf("%w: invalid rbd location %q: empty part", stores.ErrNotFound, u)
		}
		if len(parts) == 4 {
			v, err := url.PathUnescape(p)
			if err != nil {
				return location{}, fmt.Errorf("%w: invalid rbd location %q: %v", stores.ErrNotFound, u, err)
			}
			parts[i] = v
		}
	}
	if len(parts) == 1 {
		return location{image: parts[0]}, nil
	}
	return location{fsid: parts[0], pool: parts[1], image: parts[2], snap: parts[3]}, nil
}

// String returns the location URL, as glance_store writes it.
func (l location) String() string {
	if l.fsid == "" || l.pool == "" || l.snap == "" {
		return "rbd://" + l.image
	}
	return "rbd://" + quote(l.fsid) + "/" + quote(l.pool) + "/" + quote(l.image) + "/" + quote(l.snap)
}

// quote escapes every byte of s but letters, digits and "-._~", as
// Python's urllib.parse.quote does when no character is marked safe.
func quote(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', strings.IndexByte("-._~", c) >= 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// URL returns the location URL of image id's data in this store.
func (d *Driver) URL(id string) (string, error) {
	_, fsid, err := d.connect(context.Background())
	if err != nil {
		return "", err
	}
	return location{fsid: fsid, pool: d.cfg.Pool, image: id, snap: SnapName}.String(), nil
}

// resolve parses url and opens the I/O context of its pool. Like
// glance_store, it ignores the location's fsid: a pool moved to a new
// cluster keeps the locations recorded before.
func (d *Driver) resolve(ctx context.Context, u string) (location, *rados.IOContext, error) {
	loc, err := parseURL(u)
	if err != nil {
		return loc, nil, err
	}
	if loc.pool == "" {
		loc.pool = d.cfg.Pool
	}
	io, err := d.ioctx(ctx, loc.pool)
	return loc, io, err
}

// errno extracts the errno of a go-ceph or librbd error, or 0.
func errno(err error) syscall.Errno {
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	var c interface{ ErrorCode() int }
	if errors.As(err, &c) {
		n := c.ErrorCode()
		if n < 0 {
			n = -n
		}
		return syscall.Errno(n)
	}
	return 0
}

func isErrno(err error, e syscall.Errno) bool { return err != nil && errno(err) == e }

// mapErr wraps a Ceph error in the store error it stands for.
func mapErr(err error, what string) error {
	switch errno(err) {
	case syscall.ENOENT:
		return fmt.Errorf("%w: %s: %v", stores.ErrNotFound, what, err)
	case syscall.EEXIST:
		return fmt.Errorf("%w: %s: %v", stores.ErrExists, what, err)
	case syscall.ENOSPC, syscall.EDQUOT:
		return fmt.Errorf("%w: %s: %v", stores.ErrFull, what, err)
	case syscall.EBUSY:
		return fmt.Errorf("%w: %s: %v", stores.ErrInUse, what, err)
	case syscall.ETIMEDOUT, syscall.ENOTCONN, syscall.ESHUTDOWN, syscall.ECONNREFUSED:
		return fmt.Errorf("%w: %s: %v", stores.ErrUnavailable, what, err)
	}
	return fmt.Errorf("stores/rbd: %s: %w", what, err)
}

// Put implements stores.Driver.
func (d *Driver) Put(ctx context.Context, id string, r io.Reader, size int64) (stores.Object, error) {
	if err := ctx.Err(); err != nil {
		return stores.Object{}, err
	}
	if id == "" || strings.ContainsAny(id, "/@") {
		return stores.Object{}, fmt.Errorf("stores/rbd: invalid image name %q", id)
	}
	ioctx, err := d.ioctx(ctx, d.cfg.Pool)
	if err != nil {
		return stores.Object{}, err
	}
	u, err := d.URL(id)
	if err != nil {
		return stores.Object{}, err
	}
	opts := rbd.NewRbdImageOptions()
	defer opts.Destroy()
	if err := opts.SetUint64(rbd.ImageOptionOrder, uint64(d.order)); err != nil {
		return stores.Object{}, mapErr(err, "image options")
	}
	if err := rbd.CreateImage(ioctx, id, uint64(size), opts); err != nil {
		if isErrno(err, syscall.EEXIST) {
			return stores.Object{}, fmt.Errorf("%w: RBD image %s already exists", stores.ErrExists, id)
		}
		return stores.Object{}, mapErr(err, "creating RBD image "+id)
	}
	n, err := d.fill(ctx, ioctx, id, r, size)
	if err != nil {
		if derr := d.remove(ioctx, id); derr != nil && !errors.Is(derr, stores.ErrNotFound) {
			d.removeLater(ioctx, id)
			err = fmt.Errorf("%w (removing the partial RBD image failed, and is retried in the background: %v)", err, derr)
		}
		return stores.Object{}, err
	}
	return stores.Object{URL: u, Size: n}, nil
}

// removeLater keeps trying to remove the partial image id, in the
// background, while the cluster does not answer (an OSD down during a Put):
// after a pause that doubles from retryDelay up to a minute, for an hour at
// most, or until Close. Crash recovery's Discard is the last resort.
func (d *Driver) removeLater(ioctx *rados.IOContext, id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopping() || d.retrying[id] {
		return
	}
	d.retrying[id] = true
	d.retries.Add(1)
	go func() {
		defer d.retries.Done()
		defer func() {
			d.mu.Lock()
			delete(d.retrying, id)
			d.mu.Unlock()
		}()
		pause := d.retryDelay
		deadline := time.Now().Add(time.Hour)
		for time.Now().Before(deadline) {
			t := time.NewTimer(pause)
			select {
			case <-d.stop:
				t.Stop()
				return
			case <-t.C:
			}
			if err := d.remove(ioctx, id); err == nil || errors.Is(err, stores.ErrNotFound) {
				return
			}
			pause = min(2*pause, time.Minute)
		}
	}()
}

// fill writes r into the new image id, sizes it, and creates and protects
// its snapshot. It returns the bytes written.
func (d *Driver) fill(ctx context.Context, ioctx *rados.IOContext, id string, r io.Reader, size int64) (int64, error) {
	w, err := openWriter(ioctx, id, d.pool, d.cfg.InFlight)
	if err != nil {
		return 0, mapErr(err, "opening RBD image "+id)
	}
	n, err := d.write(ctx, w, r, size)
	if err == nil && size == 0 {
		if err = w.resize(n); err != nil {
			err = mapErr(err, "trimming RBD image "+id)
		}
	}
	if err == nil {
		if err = w.flush(); err != nil {
			err = mapErr(err, "flushing RBD image "+id)
		}
	}
	if err == nil {
		if err = w.snapshot(SnapName); err != nil {
			err = mapErr(err, "snapshotting RBD image "+id)
		}
	}
	if cerr := w.close(); err == nil && cerr != nil {
		err = mapErr(cerr, "writing RBD image "+id)
	}
	return n, err
}

// write copies r into the image chunk by chunk, growing it first when the
// size is unknown, and checks the length against size when it is known.
func (d *Driver) write(ctx context.Context, w *writer, r io.Reader, size int64) (int64, error) {
	var (
		written int64
		capac   = size // the image's current size
		step    = int64(d.cfg.ChunkSize)
	)
	for {
		if err := ctx.Err(); err != nil {
			return written, err
		}
		buf, err := w.buffer(ctx)
		if ctx.Err() != nil {
			return written, ctx.Err()
		}
		if err != nil {
			return written, mapErr(err, "writing")
		}
		n, rerr := stores.Fill(r, buf)
		if rerr != nil && rerr != io.EOF {
			// The source failed: that is the cause, whatever a write of
			// what it gave would say (a client cut off also ends ctx).
			w.release(buf)
			return written, rerr
		}
		if n > 0 {
			if size > 0 && written+int64(n) > size {
				w.release(buf)
				return written, fmt.Errorf("%w: more than the %d bytes announced", stores.ErrSizeMismatch, size)
			}
			if need := written + int64(n); need > capac {
				step = min(step*2, maxGrowStep)
				capac = max(capac+step, need)
				if err := w.resize(capac); err != nil {
					w.release(buf)
					return written, mapErr(err, "growing the image")
				}
			}
			if d.cfg.ThinProvisioning && zero(buf[:n]) {
				w.release(buf)
			} else if err := w.write(buf[:n], written); err != nil {
				return written, mapErr(err, "writing")
			}
			written += int64(n)
		} else {
			w.release(buf)
		}
		switch {
		case rerr == io.EOF:
			if err := ctx.Err(); err != nil {
				return written, err
			}
			if size > 0 && written != size {
				return written, fmt.Errorf("%w: %d bytes announced, %d received", stores.ErrSizeMismatch, size, written)
			}
			if err := w.wait(); err != nil {
				return written, mapErr(err, "writing")
			}
			return written, nil
		}
	}
}

var zeroChunk = make([]byte, 64<<10)

func zero(b []byte) bool {
	for len(b) > 0 {
		k := min(len(b), len(zeroChunk))
		if !bytes.Equal(b[:k], zeroChunk[:k]) {
			return false
		}
		b = b[k:]
	}
	return true
}

// remove deletes image id and all its snapshots. It gives ErrInUse while a
// snapshot has clones, and ErrNotFound if there is no such image.
func (d *Driver) remove(ioctx *rados.IOContext, id string) error {
	img, err := rbd.OpenImage(ioctx, id, rbd.NoSnapshot)
	if err != nil {
		return mapErr(err, "opening RBD image "+id)
	}
	err = d.breakOwnLocks(img)
	var snaps []rbd.SnapInfo
	if err == nil {
		snaps, err = img.GetSnapshotNames()
	}
	if err == nil {
		for _, s := range snaps {
			if err = removeSnap(img, s.Name); err != nil {
				break
			}
		}
	}
	if cerr := img.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return mapErr(err, "removing the snapshots of RBD image "+id)
	}
	if err := rbd.RemoveImage(ioctx, id); err != nil {
		return mapErr(err, "removing RBD image "+id)
	}
	return nil
}

// breakOwnLocks breaks the locks on img that this driver's own connection
// holds: the exclusive lock of a write whose close failed while the
// cluster did not answer stays with the connection, and would keep the
// partial image from being removed. Locks of other clients are left alone.
// librbd would otherwise blocklist the lock's holder, that is this
// connection, which dial prevents with rbd_blocklist_on_break_lock.
func (d *Driver) breakOwnLocks(img *rbd.Image) error {
	conn, _, err := d.connect(context.Background())
	if err != nil {
		return err
	}
	_, lockers, err := img.ListLockers()
	if err != nil {
		return err
	}
	self := "client." + strconv.FormatUint(conn.GetInstanceID(), 10)
	for _, l := range lockers {
		if l.Client == self {
			if err := img.BreakLock(l.Client, l.Cookie); err != nil && !isErrno(err, syscall.ENOENT) {
				return err
			}
		}
	}
	return nil
}

// removeSnap unprotects, if needed, and removes snapshot name of img. A
// missing snapshot is not an error.
func removeSnap(img *rbd.Image, name string) error {
	s := img.GetSnapshot(name)
	if err := s.Unprotect(); err != nil && !isErrno(err, syscall.EINVAL) && !isErrno(err, syscall.ENOENT) {
		// EINVAL: it was not protected.
		return err
	}
	if err := s.Remove(); err != nil && !isErrno(err, syscall.ENOENT) {
		return err
	}
	return nil
}

// Get implements stores.Driver: it reads from the location's snapshot,
// with several chunk reads in flight ahead of the caller.
func (d *Driver) Get(ctx context.Context, u string, off, n int64) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r, size, err := d.openRead(ctx, u)
	if err != nil {
		return nil, err
	}
	off = min(max(off, 0), size)
	end := size
	if n >= 0 && off+n < size {
		end = off + n
	}
	if err := r.start(ctx, off, end); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// openRead opens the image (at its snapshot) of a location read-only.
func (d *Driver) openRead(ctx context.Context, u string) (*aioReader, int64, error) {
	loc, ioctx, err := d.resolve(ctx, u)
	if err != nil {
		return nil, 0, err
	}
	r, size, err := openReader(ioctx, loc.image, loc.snap, d.pool, d.cfg.ChunkSize, d.cfg.InFlight)
	if err != nil {
		return nil, 0, mapErr(err, "opening RBD image "+loc.image)
	}
	return r, size, nil
}

// Size implements stores.Driver.
func (d *Driver) Size(ctx context.Context, u string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	r, size, err := d.openRead(ctx, u)
	if err != nil {
		return 0, err
	}
	r.Close()
	return size, nil
}

// Delete implements stores.Driver: it unprotects and removes the
// location's snapshot, then the image. While the snapshot has clones it
// returns ErrInUse and keeps everything; when other snapshots remain it
// moves the image to the RBD trash.
func (d *Driver) Delete(ctx context.Context, u string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	loc, ioctx, err := d.resolve(ctx, u)
	if err != nil {
		return err
	}
	if loc.snap != "" {
		img, err := rbd.OpenImage(ioctx, loc.image, rbd.NoSnapshot)
		if err != nil {
			return mapErr(err, "opening RBD image "+loc.image)
		}
		err = removeSnap(img, loc.snap)
		img.Close()
		if isErrno(err, syscall.EBUSY) {
			return fmt.Errorf("%w: snapshot %s@%s has clones", stores.ErrInUse, loc.image, loc.snap)
		}
		if err != nil {
			return mapErr(err, "removing snapshot "+loc.image+"@"+loc.snap)
		}
	}
	err = rbd.RemoveImage(ioctx, loc.image)
	switch {
	case err == nil:
		return nil
	case isErrno(err, syscall.ENOTEMPTY):
		// Other snapshots remain: keep them, in the trash.
		if err := rbd.GetImage(ioctx, loc.image).Trash(0); err != nil {
			if isErrno(err, syscall.EBUSY) {
				return fmt.Errorf("%w: RBD image %s is in use", stores.ErrInUse, loc.image)
			}
			return mapErr(err, "moving RBD image "+loc.image+" to the trash")
		}
		return nil
	case isErrno(err, syscall.EBUSY):
		return fmt.Errorf("%w: RBD image %s is in use", stores.ErrInUse, loc.image)
	}
	return mapErr(err, "removing RBD image "+loc.image)
}

// Discard implements stores.Discarder: it removes image id with all its
// snapshots, complete or not.
func (d *Driver) Discard(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ioctx, err := d.ioctx(ctx, d.cfg.Pool)
	if err != nil {
		return err
	}
	if err := d.remove(ioctx, id); err != nil && !errors.Is(err, stores.ErrNotFound) {
		return err
	}
	return nil
}

// IDs implements stores.Lister: the names of the images in the pool,
// sorted. The pool may hold images that are not Glance's.
func (d *Driver) IDs(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ioctx, err := d.ioctx(ctx, d.cfg.Pool)
	if err != nil {
		return nil, err
	}
	names, err := rbd.GetImageNames(ioctx)
	if err != nil {
		return nil, mapErr(err, "listing the images of pool "+d.cfg.Pool)
	}
	slices.Sort(names)
	return names, nil
}
