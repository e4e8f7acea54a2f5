package rfb

import (
	"compress/zlib"
	"errors"
	"fmt"
	"io"

	"kvmgate/framebuffer"
)

// Zlib encoding (6): a U32 length, then that many bytes of one zlib stream
// that lasts the whole connection; inflated, they are the rectangle's pixels
// as Raw encoding would send them.

func init() {
	register(EncodingZlib, func() decoder { return &zlibDecoder{} })
}

// zlibDecoder keeps the connection's zlib stream across rectangles.
type zlibDecoder struct {
	z zstream
}

func (z *zlibDecoder) decode(d *decodeContext, r framebuffer.Rect) error {
	if err := z.decodeRect(d, r); err != nil {
		return fmt.Errorf("rfb: zlib rect %v: %w", r, err)
	}
	return nil
}

func (z *zlibDecoder) decodeRect(d *decodeContext, r framebuffer.Rect) error {
	n, err := d.r.u32()
	if err != nil {
		return err
	}
	bpp := d.conv.bpp
	rowLen := r.W * bpp
	if err := z.z.feed(d.r, int64(n), rowLen*r.H); err != nil {
		return err
	}
	row := d.grow(rowLen)
	for y := 0; y < r.H; y++ {
		if err := z.z.read(row); err != nil {
			return err
		}
		d.conv.row(d.canvas.Row(r.X, r.Y+y, r.W), row, r.W)
	}
	return nil
}

// zstream is one zlib stream that continues across rectangles, as Zlib and
// Tight use them: each rectangle appends its compressed chunk (ended by the
// server with a sync flush) and then reads exactly the bytes it needs. The
// inflater reads its input byte by byte from in, so it never asks for more
// than the chunks hold unless the data is corrupt.
type zstream struct {
	in       zfeed
	zr       io.ReadCloser
	needInit bool  // zr must be (re)started on the next chunk's header
	err      error // sticky: the stream is unusable until reset
}

// maxZlibBacklog bounds how many compressed bytes may sit unread in a
// stream between rectangles. A well-formed stream leaves only the few bytes
// of its sync-flush marker behind.
const maxZlibBacklog = 1 << 20

// compressedBound returns the largest compressed chunk accepted for a
// rectangle that inflates to need bytes: stored (uncompressed) deflate
// blocks cost 5 bytes per 64 KiB, and a flush or a parameter change a few
// more; anything far beyond that is not a real server's output.
func compressedBound(need int) int {
	return min(need+need/64+1024, maxRectPayload)
}

// reset forgets the stream's state; the next chunk starts a new zlib stream.
func (z *zstream) reset() {
	z.in.buf = z.in.buf[:0]
	z.in.off = 0
	z.needInit = true
	z.err = nil
}

// feed appends the next n compressed bytes from r to the stream, for a
// rectangle that will read need bytes of output.
func (z *zstream) feed(r *reader, n int64, need int) error {
	if n < 0 || n > int64(compressedBound(need)) {
		return fmt.Errorf("compressed length %d exceeds limit %d for %d bytes of pixels", n, compressedBound(need), need)
	}
	if z.err != nil {
		// Skip the chunk so that the connection stays in step.
		if err := r.discard(n); err != nil {
			return err
		}
		return z.err
	}
	if err := z.in.appendFrom(r, int(n)); err != nil {
		return err
	}
	if z.in.len() > maxZlibBacklog+int(n) {
		z.err = fmt.Errorf("zlib stream holds %d unread bytes", z.in.len())
		return z.err
	}
	return nil
}

// read inflates exactly len(p) bytes from the chunks fed so far.
func (z *zstream) read(p []byte) error {
	if z.err != nil {
		return z.err
	}
	if len(p) == 0 {
		return nil
	}
	if z.zr == nil || z.needInit {
		var err error
		if z.zr == nil {
			z.zr, err = zlib.NewReader(&z.in)
		} else {
			err = z.zr.(zlib.Resetter).Reset(&z.in, nil)
		}
		if err != nil {
			z.zr = nil
			z.err = fmt.Errorf("zlib header: %w", err)
			return z.err
		}
		z.needInit = false
	}
	if _, err := io.ReadFull(z.zr, p); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = errors.New("zlib data ended before the rectangle's pixels")
		}
		z.err = fmt.Errorf("inflate: %w", err)
		return z.err
	}
	return nil
}

// zfeed is the inflater's input: the compressed bytes received and not yet
// consumed. It returns io.EOF when empty, which the inflater turns into a
// (sticky) error, so it must only be read while data is expected.
type zfeed struct {
	buf []byte
	off int
}

func (f *zfeed) len() int { return len(f.buf) - f.off }

// appendFrom compacts the buffer and appends n bytes read from r.
func (f *zfeed) appendFrom(r *reader, n int) error {
	if f.off > 0 {
		m := copy(f.buf, f.buf[f.off:])
		f.buf = f.buf[:m]
		f.off = 0
	}
	l := len(f.buf)
	if cap(f.buf)-l < n {
		nb := make([]byte, l, l+n)
		copy(nb, f.buf)
		f.buf = nb
	}
	f.buf = f.buf[:l+n]
	if err := r.full(f.buf[l:]); err != nil {
		f.buf = f.buf[:l]
		return err
	}
	return nil
}

func (f *zfeed) Read(p []byte) (int, error) {
	if f.off >= len(f.buf) {
		return 0, io.EOF
	}
	n := copy(p, f.buf[f.off:])
	f.off += n
	return n, nil
}

func (f *zfeed) ReadByte() (byte, error) {
	if f.off >= len(f.buf) {
		return 0, io.EOF
	}
	b := f.buf[f.off]
	f.off++
	return b, nil
}
