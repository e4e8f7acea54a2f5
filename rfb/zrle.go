package rfb

import (
	"compress/flate"
	"errors"
	"fmt"
	"io"

	"kvmgate/framebuffer"
)

func init() {
	register(EncodingZRLE, func() decoder { return newZRLEDecoder() })
}

// zrleDecoder decodes ZRLE: 64×64 RLE tiles (see rleTiles) inside one zlib
// stream that lasts as long as the connection. Each rectangle brings a
// length-prefixed piece of that stream, which servers end with a sync
// flush, so the rectangle's tiles can be decoded from it alone.
//
// The decompressor only runs when the tile parser needs more bytes, so a
// rectangle never makes it inflate more than its tiles can use, however
// well the data compresses.
type zrleDecoder struct {
	in     zlibInput     // compressed bytes received and not yet inflated
	inflat io.ReadCloser // raw deflate reader; nil until the stream starts
	s      tileStream
	tiles  rleTiles
}

func newZRLEDecoder() *zrleDecoder {
	z := &zrleDecoder{tiles: rleTiles{name: "zrle", size: 64}}
	z.s.src = z
	z.s.buf = make([]byte, 64<<10)
	return z
}

func (z *zrleDecoder) decode(d *decodeContext, r framebuffer.Rect) error {
	n, err := d.r.u32()
	if err != nil {
		return fmt.Errorf("rfb: zrle length: %w", err)
	}
	if err := z.in.load(d.r, int64(n)); err != nil {
		return fmt.Errorf("rfb: zrle data: %w", err)
	}
	if err := z.tiles.decodeRect(d, &z.s, r); err != nil {
		return err
	}
	// Tile data the rectangle did not use would be taken for the next
	// rectangle's; this catches it when the decompressor has already
	// handed it over.
	if n := z.s.buffered(); n > 0 {
		return fmt.Errorf("rfb: zrle rectangle %v: %d bytes of tile data left over", r, n)
	}
	return nil
}

// fill implements tileSource by inflating: it takes whatever output the
// decompressor has ready, calling it again only while fewer than min bytes
// have arrived.
func (z *zrleDecoder) fill(p []byte, min int) (int, error) {
	if z.inflat == nil {
		if err := z.in.zlibHeader(); err != nil {
			return 0, err
		}
		z.inflat = flate.NewReader(&z.in)
	}
	got, idle := 0, 0
	for got < min {
		n, err := z.inflat.Read(p[got:])
		got += n
		if got >= min {
			break
		}
		if err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return got, errors.New("truncated zlib data")
			}
			return got, fmt.Errorf("zlib data: %w", err)
		}
		if n == 0 {
			if idle++; idle > 100 {
				return got, io.ErrNoProgress
			}
		}
	}
	return got, nil
}

// zlibInput holds the compressed bytes of a zlib stream that arrive piece
// by piece; it is the decompressor's flate.Reader. Bytes the decompressor
// has not consumed by the end of one rectangle (a sync flush marker) stay
// for the next.
type zlibInput struct {
	buf []byte
	pos int
}

// load appends the next n bytes of the stream, read from r. Memory grows
// with the bytes that actually arrive, not with the announced length.
func (z *zlibInput) load(r *reader, n int64) error {
	rest := len(z.buf) - z.pos
	if int64(rest)+n > maxRectPayload {
		return fmt.Errorf("%d bytes exceed the limit of %d", int64(rest)+n, maxRectPayload)
	}
	if cap(z.buf) > 4<<20 && int64(rest)+n < 1<<20 {
		// Let go of the memory one huge rectangle needed.
		nb := make([]byte, rest, 1<<20)
		copy(nb, z.buf[z.pos:])
		z.buf = nb
	} else {
		copy(z.buf, z.buf[z.pos:])
		z.buf = z.buf[:rest]
	}
	z.pos = 0
	const chunk = 256 << 10
	for n > 0 {
		k := int(min(n, chunk))
		l := len(z.buf)
		if cap(z.buf)-l < k {
			nb := make([]byte, l, 2*cap(z.buf)+k)
			copy(nb, z.buf)
			z.buf = nb
		}
		z.buf = z.buf[:l+k]
		if err := r.full(z.buf[l:]); err != nil {
			z.buf = z.buf[:l]
			return err
		}
		n -= int64(k)
	}
	return nil
}

// zlibHeader consumes and checks the two-byte zlib header that opens the
// stream. kvmgate inflates the raw deflate data after it; the stream never
// ends, so its Adler-32 trailer never comes.
func (z *zlibInput) zlibHeader() error {
	if len(z.buf)-z.pos < 2 {
		return errors.New("truncated zlib header")
	}
	cmf, flg := z.buf[z.pos], z.buf[z.pos+1]
	if cmf&0x0f != 8 || cmf>>4 > 7 || (uint16(cmf)<<8|uint16(flg))%31 != 0 {
		return fmt.Errorf("bad zlib header %#02x %#02x", cmf, flg)
	}
	if flg&0x20 != 0 {
		return errors.New("zlib preset dictionary not supported")
	}
	z.pos += 2
	return nil
}

func (z *zlibInput) Read(p []byte) (int, error) {
	if z.pos >= len(z.buf) {
		return 0, io.EOF
	}
	n := copy(p, z.buf[z.pos:])
	z.pos += n
	return n, nil
}

func (z *zlibInput) ReadByte() (byte, error) {
	if z.pos >= len(z.buf) {
		return 0, io.EOF
	}
	b := z.buf[z.pos]
	z.pos++
	return b, nil
}
