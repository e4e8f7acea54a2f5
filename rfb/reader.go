package rfb

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
)

// reader wraps the connection with the fixed-size reads RFB is made of. The
// backend's reader goroutine is its only user.
type reader struct {
	br  *bufio.Reader
	buf []byte // scratch for readN; reused, never retained by callers
	n   int64  // bytes read so far
}

func newReader(r io.Reader) *reader {
	return &reader{br: bufio.NewReaderSize(r, 64<<10)}
}

// full reads exactly len(p) bytes.
func (r *reader) full(p []byte) error {
	n, err := io.ReadFull(r.br, p)
	r.n += int64(n)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

func (r *reader) u8() (uint8, error) {
	b, err := r.br.ReadByte()
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, err
	}
	r.n++
	return b, nil
}

func (r *reader) u16() (uint16, error) {
	var b [2]byte
	if err := r.full(b[:]); err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint16(b[:]), nil
}

func (r *reader) u32() (uint32, error) {
	var b [4]byte
	if err := r.full(b[:]); err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint32(b[:]), nil
}

func (r *reader) s32() (int32, error) {
	v, err := r.u32()
	return int32(v), err
}

// readN returns the next n bytes in a scratch buffer that is only valid until
// the next call. n must already be bounded by the caller; max is a last
// guard that turns absurd lengths into an error instead of an allocation.
func (r *reader) readN(n, max int) ([]byte, error) {
	if n < 0 || n > max {
		return nil, fmt.Errorf("rfb: length %d exceeds limit %d", n, max)
	}
	if cap(r.buf) < n {
		r.buf = make([]byte, n)
	}
	b := r.buf[:n]
	return b, r.full(b)
}

// discard skips n bytes.
func (r *reader) discard(n int64) error {
	m, err := io.CopyN(io.Discard, r.br, n)
	r.n += m
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// compactLength reads Tight's 1–3 byte compact length.
func (r *reader) compactLength() (int, error) {
	n := 0
	for i := 0; i < 3; i++ {
		b, err := r.u8()
		if err != nil {
			return 0, err
		}
		if i == 2 {
			n |= int(b) << 14
			break
		}
		n |= int(b&0x7f) << (7 * i)
		if b&0x80 == 0 {
			break
		}
	}
	return n, nil
}
