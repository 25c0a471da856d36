package stores_test

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/glance-go/glance-go/stores"
)

func TestFill(t *testing.T) {
	buf := make([]byte, 8)
	if n, err := stores.Fill(iotest.OneByteReader(bytes.NewReader([]byte("abcdefghij"))), buf); n != 8 || err != nil {
		t.Errorf("full buffer: %d, %v", n, err)
	}
	if n, err := stores.Fill(bytes.NewReader([]byte("abc")), buf); n != 3 || err != io.EOF {
		t.Errorf("clean short end: %d, %v; want 3, io.EOF", n, err)
	}
	cut := io.MultiReader(bytes.NewReader([]byte("abc")), iotest.ErrReader(io.ErrUnexpectedEOF))
	if n, err := stores.Fill(cut, buf); n != 3 || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("stream cut off: %d, %v; want 3, io.ErrUnexpectedEOF", n, err)
	}
}
