package proxytest

import (
	"context"
	"errors"
	"io"
	"sync"

	"github.com/glance-go/glance-go/domain"
)

// ErrInjected is the default error of the fault injectors.
var ErrInjected = errors.New("proxytest: injected fault")

// FaultRepo wraps a domain.Repo and makes its SaveFailsAt-th Save call
// (counting from 1) fail with Err, without reaching the wrapped repo.
type FaultRepo struct {
	domain.Repo
	SaveFailsAt int
	Err         error // ErrInjected wrapped as ErrUnavailable when nil

	mu    sync.Mutex
	saves int
}

var _ domain.Repo = (*FaultRepo)(nil)

// Save implements domain.Repo.
func (r *FaultRepo) Save(ctx context.Context, img domain.Image, from domain.Status) error {
	r.mu.Lock()
	r.saves++
	n := r.saves
	r.mu.Unlock()
	if n == r.SaveFailsAt {
		if r.Err != nil {
			return r.Err
		}
		return &domain.Error{Kind: domain.ErrUnavailable, Msg: ErrInjected.Error()}
	}
	return r.Repo.Save(ctx, img, from)
}

// Calls returns the number of Save calls seen, failed ones included.
func (r *FaultRepo) Calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.saves
}

// Reader yields N deterministic bytes and then Err (io.EOF when nil).
type Reader struct {
	N   int64
	Err error
	off int64
}

// NewReader returns a Reader of n bytes that then fails with err.
func NewReader(n int64, err error) *Reader { return &Reader{N: n, Err: err} }

// Read implements io.Reader.
func (r *Reader) Read(p []byte) (int, error) {
	if r.off >= r.N {
		if r.Err != nil {
			return 0, r.Err
		}
		return 0, io.EOF
	}
	n := int64(len(p))
	if left := r.N - r.off; n > left {
		n = left
	}
	for i := range n {
		p[i] = Byte(r.off + i)
	}
	r.off += n
	return int(n), nil
}

// Byte is the byte a Reader yields at offset off.
func Byte(off int64) byte { return byte(off*7 + off>>8) }

// Bytes returns the first n bytes a Reader yields.
func Bytes(n int64) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = Byte(int64(i))
	}
	return b
}
