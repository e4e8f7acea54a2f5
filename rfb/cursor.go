package rfb

import (
	"fmt"

	"kvmgate/framebuffer"
)

// Cursor pseudo-encodings. Each pseudo-rectangle carries the hotspot as its
// position and the cursor's size as its size; a 0×0 (or 0×h, w×0) cursor
// hides it. The functions here turn the payload into a framebuffer.Cursor
// with straight alpha; they do not touch the canvas.

// maxCursorSize bounds a cursor's width and height. TigerVNC's viewer
// stops at 256; HiDPI guests with large accessibility cursors can come
// close, so kvmgate allows twice that (1 MiB of RGBA at most).
const maxCursorSize = 512

// newCursor checks r's size and makes the cursor it describes, or returns
// nil for an empty one.
func newCursor(r framebuffer.Rect) (*framebuffer.Cursor, error) {
	if r.W < 0 || r.H < 0 || r.W > maxCursorSize || r.H > maxCursorSize {
		return nil, fmt.Errorf("cursor size %dx%d exceeds %dx%d", r.W, r.H, maxCursorSize, maxCursorSize)
	}
	if r.Empty() {
		return nil, nil
	}
	// Browsers ignore a hotspot outside the image; keep it inside.
	return &framebuffer.Cursor{
		W: r.W, H: r.H,
		HotX: min(max(r.X, 0), r.W-1), HotY: min(max(r.Y, 0), r.H-1),
		Pix: make([]byte, 4*r.W*r.H),
	}, nil
}

// readCursor reads a Cursor (-239) pseudo-rectangle: w×h pixels in the
// connection's pixel format, then a bitmask of rows padded to whole bytes,
// most significant bit leftmost, 1 meaning opaque.
func readCursor(d *decodeContext, r framebuffer.Rect) (*framebuffer.Cursor, error) {
	c, err := readCursorData(d, r)
	if err != nil {
		return nil, fmt.Errorf("rfb: cursor %v: %w", r, err)
	}
	return c, nil
}

func readCursorData(d *decodeContext, r framebuffer.Rect) (*framebuffer.Cursor, error) {
	c, err := newCursor(r)
	if c == nil || err != nil {
		return nil, err
	}
	bpp := d.conv.bpp
	pix, err := d.r.readN(r.W*r.H*bpp, maxCursorSize*maxCursorSize*4)
	if err != nil {
		return nil, err
	}
	for y := 0; y < r.H; y++ {
		d.conv.row(c.Pix[4*r.W*y:], pix[bpp*r.W*y:], r.W)
	}
	maskRow := (r.W + 7) / 8
	mask, err := d.r.readN(maskRow*r.H, maxCursorSize*maxCursorSize/8)
	if err != nil {
		return nil, err
	}
	for y := 0; y < r.H; y++ {
		m := mask[y*maskRow:]
		p := c.Pix[4*r.W*y:]
		for x := 0; x < r.W; x++ {
			if m[x>>3]&(0x80>>(x&7)) == 0 {
				o := 4 * x
				p[o], p[o+1], p[o+2], p[o+3] = 0, 0, 0, 0
			}
		}
	}
	return c, nil
}

// readXCursor reads an XCursor (-240) pseudo-rectangle: primary and
// secondary colours as R, G, B bytes, a bitmap (1: primary, 0: secondary)
// and a bitmask (1: opaque), both with rows padded to whole bytes. An empty
// rectangle carries no data.
func readXCursor(d *decodeContext, r framebuffer.Rect) (*framebuffer.Cursor, error) {
	c, err := readXCursorData(d, r)
	if err != nil {
		return nil, fmt.Errorf("rfb: xcursor %v: %w", r, err)
	}
	return c, nil
}

func readXCursorData(d *decodeContext, r framebuffer.Rect) (*framebuffer.Cursor, error) {
	c, err := newCursor(r)
	if c == nil || err != nil {
		return nil, err
	}
	var colours [6]byte
	if err := d.r.full(colours[:]); err != nil {
		return nil, err
	}
	maskRow := (r.W + 7) / 8
	n := maskRow * r.H
	data, err := d.r.readN(2*n, 2*maxCursorSize*maxCursorSize/8)
	if err != nil {
		return nil, err
	}
	bitmap, mask := data[:n], data[n:]
	for y := 0; y < r.H; y++ {
		bm, mm := bitmap[y*maskRow:], mask[y*maskRow:]
		p := c.Pix[4*r.W*y:]
		for x := 0; x < r.W; x++ {
			bit := byte(0x80 >> (x & 7))
			if mm[x>>3]&bit == 0 {
				continue // transparent: Pix is already zero
			}
			col := colours[3:6]
			if bm[x>>3]&bit != 0 {
				col = colours[0:3]
			}
			o := 4 * x
			p[o], p[o+1], p[o+2], p[o+3] = col[0], col[1], col[2], 0xff
		}
	}
	return c, nil
}

// readAlphaCursor reads a Cursor With Alpha (-314) pseudo-rectangle: an S32
// encoding, then w×h pixels in that encoding, each R, G, B, A bytes with
// alpha premultiplied. kvmgate accepts Raw, the only encoding TigerVNC and
// QEMU send. The encoding field is present even for an empty cursor.
func readAlphaCursor(d *decodeContext, r framebuffer.Rect) (*framebuffer.Cursor, error) {
	c, err := readAlphaCursorData(d, r)
	if err != nil {
		return nil, fmt.Errorf("rfb: alpha cursor %v: %w", r, err)
	}
	return c, nil
}

func readAlphaCursorData(d *decodeContext, r framebuffer.Rect) (*framebuffer.Cursor, error) {
	if _, err := newCursor(r); err != nil {
		return nil, err
	}
	enc, err := d.r.s32()
	if err != nil {
		return nil, err
	}
	if Encoding(enc) != EncodingRaw {
		return nil, fmt.Errorf("cursor pixels in unsupported encoding %v", Encoding(enc))
	}
	c, _ := newCursor(r)
	if c == nil {
		return nil, nil
	}
	if err := d.r.full(c.Pix); err != nil {
		return nil, err
	}
	unpremultiply(c.Pix)
	return c, nil
}

// unpremultiply turns premultiplied RGBA into straight alpha in place. A
// fully transparent pixel becomes 0,0,0,0; colour beyond alpha (invalid in
// premultiplied form) saturates.
func unpremultiply(p []byte) {
	for i := 0; i+3 < len(p); i += 4 {
		a := uint32(p[i+3])
		switch a {
		case 255:
		case 0:
			p[i], p[i+1], p[i+2] = 0, 0, 0
		default:
			for k := i; k < i+3; k++ {
				p[k] = byte(min((uint32(p[k])*255+a/2)/a, 255))
			}
		}
	}
}
