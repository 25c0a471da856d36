package stores

import "io"

// Fill reads from r into buf until buf is full or r fails, and returns the
// bytes read. Unlike io.ReadFull it reports io.EOF only for a clean end of
// r, even after part of buf was filled: a stream that itself fails with
// io.ErrUnexpectedEOF (an HTTP body cut off before its end) is an error,
// never a complete stream.
func Fill(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		k, err := r.Read(buf[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
