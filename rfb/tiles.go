package rfb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"kvmgate/framebuffer"
)

// Helpers shared by the decoders that paint solid areas and tiles: RRE,
// Hextile, ZRLE and TRLE.

// fillRect paints the w×h area at (x, y), which must lie inside c, with the
// packed colour rgba (R in the low byte, as Canvas stores it).
func fillRect(c *framebuffer.Canvas, x, y, w, h int, rgba uint32) {
	if w <= 0 || h <= 0 {
		return
	}
	o := c.Offset(x, y)
	n := w * framebuffer.BytesPerPixel
	first := c.Pix[o : o+n]
	for i := 0; i+4 <= len(first); i += 4 {
		binary.LittleEndian.PutUint32(first[i:], rgba)
	}
	for j := 1; j < h; j++ {
		o += c.Stride
		copy(c.Pix[o:o+n], first)
	}
}

// cpixelFormat converts the CPIXELs of ZRLE and TRLE. It is made once per
// rectangle from the connection's converter.
type cpixelFormat struct {
	conv *converter
	size int  // bytes per CPIXEL
	high bool // the CPIXEL holds the high three bytes of a 32-bit pixel
	rgb  bool // the CPIXEL is R, G, B bytes (NativeFormat): no table lookups
}

func newCPixelFormat(conv *converter) cpixelFormat {
	size, high := conv.pf.cpixelSize()
	return cpixelFormat{conv: conv, size: size, high: high, rgb: conv.native && size == 3 && !high}
}

// pixel converts the CPIXEL at the start of b to packed RGBA.
func (f *cpixelFormat) pixel(b []byte) uint32 {
	if f.rgb {
		return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | 0xff000000
	}
	return f.conv.cpixel(b, f.size, f.high)
}

// row converts n CPIXELs from src into RGBA at dst.
func (f *cpixelFormat) row(dst, src []byte, n int) {
	switch {
	case f.rgb:
		src, dst = src[:3*n], dst[:4*n]
		for i, j := 0, 0; i+3 <= len(src) && j+4 <= len(dst); i, j = i+3, j+4 {
			dst[j], dst[j+1], dst[j+2], dst[j+3] = src[i], src[i+1], src[i+2], 0xff
		}
	case f.size == f.conv.bpp:
		f.conv.row(dst, src, n)
	default:
		for i := 0; i < n; i++ {
			binary.LittleEndian.PutUint32(dst[4*i:], f.conv.cpixel(src[i*f.size:], f.size, f.high))
		}
	}
}

// tileSource supplies the bytes a tileStream parses.
type tileSource interface {
	// fill reads at least min and at most len(p) bytes into p. It returns
	// an error if fewer than min bytes could be read.
	fill(p []byte, min int) (int, error)
}

// tileStream buffers the bytes of ZRLE and TRLE tiles so the tile parser can
// look at whole runs, palettes and pixel rows as slices. For ZRLE the
// source is the connection's zlib stream and the buffer reads ahead as far
// as the decompressor has output ready; for TRLE it is the connection
// itself and reads are exact, so nothing beyond the rectangle is consumed.
type tileStream struct {
	buf  []byte
	r, w int // unread bytes are buf[r:w]
	src  tileSource
}

// next returns the next n bytes, valid until the following call.
func (s *tileStream) next(n int) ([]byte, error) {
	if s.w-s.r < n {
		return s.nextSlow(n)
	}
	b := s.buf[s.r : s.r+n]
	s.r += n
	return b, nil
}

func (s *tileStream) nextSlow(n int) ([]byte, error) {
	if err := s.more(n); err != nil {
		return nil, err
	}
	b := s.buf[s.r : s.r+n]
	s.r += n
	return b, nil
}

// byte returns the next byte.
func (s *tileStream) byte() (byte, error) {
	if s.r < s.w {
		b := s.buf[s.r]
		s.r++
		return b, nil
	}
	return s.byteSlow()
}

func (s *tileStream) byteSlow() (byte, error) {
	if err := s.more(1); err != nil {
		return 0, err
	}
	b := s.buf[s.r]
	s.r++
	return b, nil
}

// buffered returns the number of bytes read from the source and not yet
// parsed.
func (s *tileStream) buffered() int { return s.w - s.r }

// more makes at least n bytes available in buf[r:w].
func (s *tileStream) more(n int) error {
	avail := s.w - s.r
	if s.r > 0 {
		copy(s.buf, s.buf[s.r:s.w])
		s.r, s.w = 0, avail
	}
	if len(s.buf) < n {
		nb := make([]byte, max(n, 2*len(s.buf)))
		copy(nb, s.buf[:s.w])
		s.buf = nb
	}
	m, err := s.src.fill(s.buf[s.w:], n-avail)
	s.w += m
	if s.w < n {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	return nil
}

// runLength reads the rest of an RLE run length whose first byte is first:
// the length is one more than the sum of its bytes, and every byte but the
// last is 255. It stops early, returning a length above limit, once the run
// is longer than limit.
func (s *tileStream) runLength(first byte, limit int) (int, error) {
	n := 1 + int(first)
	for b := first; b == 255 && n <= limit; n += int(b) {
		var err error
		if b, err = s.byte(); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// tileCursor walks the pixels of one tile in scan order, for run-length
// data whose runs continue from one row to the next.
type tileCursor struct {
	pix    []byte
	stride int
	off    int // index in pix of the current row's first pixel
	w, x   int // tile width, current column
}

func newTileCursor(c *framebuffer.Canvas, x, y, w int) tileCursor {
	return tileCursor{pix: c.Pix, stride: c.Stride, off: c.Offset(x, y), w: w}
}

// run paints the next n pixels with rgba. The caller has checked that n
// pixels remain in the tile.
func (t *tileCursor) run(n int, rgba uint32) {
	for n > 0 {
		k := min(n, t.w-t.x)
		row := t.pix[t.off+4*t.x : t.off+4*(t.x+k)]
		for i := 0; i+4 <= len(row); i += 4 {
			binary.LittleEndian.PutUint32(row[i:], rgba)
		}
		n -= k
		t.x += k
		if t.x == t.w {
			t.x = 0
			t.off += t.stride
		}
	}
}

// rleTiles decodes the tile scheme ZRLE and TRLE share: square tiles, each
// raw, solid, packed palette, plain RLE or palette RLE. TRLE adds two
// subencodings that reuse the previous tile's palette.
type rleTiles struct {
	name  string // "zrle" or "trle", for errors
	size  int    // tile edge: 64 for ZRLE, 16 for TRLE
	reuse bool   // subencodings 127 and 129 reuse the last palette (TRLE)

	pal  [127]uint32 // the last palette sent, converted to RGBA
	palN int         // its size; 0 when none has been sent
	// palConv is the converter pal was converted with; a pixel format
	// change makes the palette unusable.
	palConv *converter
}

// decodeRect decodes the tiles of r from s into d.canvas.
func (t *rleTiles) decodeRect(d *decodeContext, s *tileStream, r framebuffer.Rect) error {
	f := newCPixelFormat(d.conv)
	if t.palConv != d.conv {
		t.palN, t.palConv = 0, d.conv
	}
	for ty := r.Y; ty < r.Y+r.H; ty += t.size {
		th := min(t.size, r.Y+r.H-ty)
		for tx := r.X; tx < r.X+r.W; tx += t.size {
			tw := min(t.size, r.X+r.W-tx)
			if err := t.tile(d.canvas, s, &f, tx, ty, tw, th); err != nil {
				return fmt.Errorf("rfb: %s tile at %d,%d: %w", t.name, tx, ty, err)
			}
		}
	}
	return nil
}

// tile decodes one w×h tile at (x, y).
func (t *rleTiles) tile(c *framebuffer.Canvas, s *tileStream, f *cpixelFormat, x, y, w, h int) error {
	sub, err := s.byte()
	if err != nil {
		return err
	}
	switch {
	case sub == 0: // raw CPIXELs
		src, err := s.next(w * h * f.size)
		if err != nil {
			return err
		}
		rowBytes := w * f.size
		for j := 0; j < h; j++ {
			f.row(c.Row(x, y+j, w), src[j*rowBytes:], w)
		}
		return nil
	case sub == 1: // solid
		p, err := s.next(f.size)
		if err != nil {
			return err
		}
		fillRect(c, x, y, w, h, f.pixel(p))
		return nil
	case sub <= 16: // packed palette
		if err := t.readPalette(s, f, int(sub)); err != nil {
			return err
		}
		return t.packed(c, s, x, y, w, h)
	case sub == 127 && t.reuse: // packed, previous palette
		if t.palN < 2 || t.palN > 16 {
			return fmt.Errorf("packed palette reuse with a previous palette of %d colours", t.palN)
		}
		return t.packed(c, s, x, y, w, h)
	case sub == 128:
		return t.plainRLE(c, s, f, x, y, w, h)
	case sub == 129 && t.reuse: // palette RLE, previous palette
		if t.palN == 0 {
			return errors.New("palette RLE reuse before any palette")
		}
		return t.paletteRLE(c, s, x, y, w, h)
	case sub >= 130:
		if err := t.readPalette(s, f, int(sub)-128); err != nil {
			return err
		}
		return t.paletteRLE(c, s, x, y, w, h)
	}
	return fmt.Errorf("unused subencoding %d", sub)
}

func (t *rleTiles) readPalette(s *tileStream, f *cpixelFormat, n int) error {
	b, err := s.next(n * f.size)
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		t.pal[i] = f.pixel(b[i*f.size:])
	}
	t.palN = n
	return nil
}

// packed decodes palette indices of 1, 2 or 4 bits packed into bytes, most
// significant bits first, each row starting on a byte.
func (t *rleTiles) packed(c *framebuffer.Canvas, s *tileStream, x, y, w, h int) error {
	n := t.palN
	bits := 4
	switch {
	case n == 2:
		bits = 1
	case n <= 4:
		bits = 2
	}
	rowBytes := (w*bits + 7) / 8
	data, err := s.next(rowBytes * h)
	if err != nil {
		return err
	}
	pal := &t.pal
	perByte := 8 / bits
	mask := byte(1)<<bits - 1
	for j := 0; j < h; j++ {
		src := data[j*rowBytes : (j+1)*rowBytes]
		dst := c.Row(x, y+j, w)
		i := 0
		for _, b := range src {
			for k := 0; k < perByte && i < w; k++ {
				idx := int(b>>(8-bits*(k+1))) & int(mask)
				if idx >= n {
					return fmt.Errorf("palette index %d of %d", idx, n)
				}
				binary.LittleEndian.PutUint32(dst[4*i:], pal[idx])
				i++
			}
		}
	}
	return nil
}

func (t *rleTiles) plainRLE(c *framebuffer.Canvas, s *tileStream, f *cpixelFormat, x, y, w, h int) error {
	cur := newTileCursor(c, x, y, w)
	for left := w * h; left > 0; {
		b, err := s.next(f.size + 1)
		if err != nil {
			return err
		}
		v := f.pixel(b)
		n, err := s.runLength(b[f.size], left)
		if err != nil {
			return err
		}
		if n > left {
			return fmt.Errorf("run length %d beyond the tile's %d remaining pixels", n, left)
		}
		cur.run(n, v)
		left -= n
	}
	return nil
}

func (t *rleTiles) paletteRLE(c *framebuffer.Canvas, s *tileStream, x, y, w, h int) error {
	cur := newTileCursor(c, x, y, w)
	pal, palN := &t.pal, t.palN
	for left := w * h; left > 0; {
		b, err := s.byte()
		if err != nil {
			return err
		}
		idx := int(b & 0x7f)
		if idx >= palN {
			return fmt.Errorf("palette index %d of %d", idx, palN)
		}
		n := 1
		if b&0x80 != 0 {
			first, err := s.byte()
			if err != nil {
				return err
			}
			if n, err = s.runLength(first, left); err != nil {
				return err
			}
			if n > left {
				return fmt.Errorf("run length %d beyond the tile's %d remaining pixels", n, left)
			}
		}
		cur.run(n, pal[idx])
		left -= n
	}
	return nil
}
