package rfbserver

import (
	"encoding/binary"

	"kvmgate/framebuffer"
)

// Hextile subencoding mask bits.
const (
	hextileRaw        = 1
	hextileBackground = 2
	hextileForeground = 4
	hextileAnySubrect = 8
	hextileColoured   = 16
)

// hextileEncoder sends 16×16 tiles as a background colour plus
// subrectangles, or raw when that is no smaller.
type hextileEncoder struct {
	vals [256]uint32 // the tile's wire pixel values, row-major, tw wide
	done [256]bool   // pixels already covered by a subrectangle
	sub  []byte      // the tile's subrectangles being built
}

// hextileState is what carries over from one tile to the next.
type hextileState struct {
	bg, fg           uint32
	bgValid, fgValid bool
}

func (e *hextileEncoder) encode(dst []byte, src *framebuffer.Canvas, r framebuffer.Rect, pw *pixelWriter) ([]byte, error) {
	var st hextileState
	for ty := r.Y; ty < r.Y+r.H; ty += 16 {
		th := min(16, r.Y+r.H-ty)
		for tx := r.X; tx < r.X+r.W; tx += 16 {
			tw := min(16, r.X+r.W-tx)
			dst = e.tile(dst, src, framebuffer.Rect{X: tx, Y: ty, W: tw, H: th}, pw, &st)
		}
	}
	return dst, nil
}

// loadValues fills e.vals with the wire values of tile t.
func loadValues(vals []uint32, src *framebuffer.Canvas, t framebuffer.Rect, pw *pixelWriter) {
	i := 0
	for y := t.Y; y < t.Y+t.H; y++ {
		row := src.Row(t.X, y, t.W)
		if pw.native {
			for x := 0; x < len(row); x += 4 {
				vals[i] = binary.LittleEndian.Uint32(row[x:]) & 0x00ffffff
				i++
			}
			continue
		}
		for x := 0; x < len(row); x += 4 {
			vals[i] = pw.r[row[x]] | pw.g[row[x+1]] | pw.b[row[x+2]]
			i++
		}
	}
}

func (e *hextileEncoder) tile(dst []byte, src *framebuffer.Canvas, t framebuffer.Rect, pw *pixelWriter, st *hextileState) []byte {
	n := t.W * t.H
	vals := e.vals[:n]
	loadValues(vals, src, t, pw)

	// Find the two most common colours among the first ones seen.
	c0, c1 := vals[0], uint32(0)
	n0, n1 := 0, 0
	more := false
	for _, v := range vals {
		switch {
		case v == c0:
			n0++
		case n1 == 0:
			c1, n1 = v, 1
		case v == c1:
			n1++
		default:
			more = true
		}
	}
	if n1 == 0 {
		// Solid tile.
		if st.bgValid && st.bg == c0 {
			return append(dst, 0)
		}
		dst = append(dst, hextileBackground)
		st.bg, st.bgValid = c0, true
		return pw.appendPixel(dst, c0)
	}
	bg, fg := c0, c1
	if n1 > n0 {
		bg, fg = c1, c0
	}
	bpp := pw.bpp
	rawSize := 1 + n*bpp
	mono := !more
	count, ok := e.subrects(t.W, t.H, bg, mono, pw, rawSize)

	size := 2 + len(e.sub) // mask, count, subrects
	if !st.bgValid || st.bg != bg {
		size += bpp
	}
	if mono && (!st.fgValid || st.fg != fg) {
		size += bpp
	}
	if !ok || size >= rawSize {
		dst = append(dst, hextileRaw)
		for y := t.Y; y < t.Y+t.H; y++ {
			dst = pw.appendRow(dst, src.Row(t.X, y, t.W), t.W)
		}
		st.bgValid, st.fgValid = false, false
		return dst
	}

	mask := byte(hextileAnySubrect)
	if !st.bgValid || st.bg != bg {
		mask |= hextileBackground
	}
	if mono {
		if !st.fgValid || st.fg != fg {
			mask |= hextileForeground
		}
	} else {
		mask |= hextileColoured
	}
	dst = append(dst, mask)
	if mask&hextileBackground != 0 {
		dst = pw.appendPixel(dst, bg)
		st.bg, st.bgValid = bg, true
	}
	if mask&hextileForeground != 0 {
		dst = pw.appendPixel(dst, fg)
		st.fg, st.fgValid = fg, true
	}
	if !mono {
		st.fgValid = false
	}
	dst = append(dst, byte(count))
	return append(dst, e.sub...)
}

// subrects covers the tile's non-background pixels with rectangles of one
// colour each, greedily (longest run in a row, then as many rows as match),
// writing them to e.sub. It gives up (ok false) past 255 rectangles or when
// the result would be no smaller than limit bytes.
func (e *hextileEncoder) subrects(tw, th int, bg uint32, mono bool, pw *pixelWriter, limit int) (count int, ok bool) {
	vals := e.vals[:tw*th]
	done := e.done[:tw*th]
	clear(done)
	e.sub = e.sub[:0]
	per := 2
	if !mono {
		per += pw.bpp
	}
	for y := 0; y < th; y++ {
		for x := 0; x < tw; x++ {
			i := y*tw + x
			c := vals[i]
			if c == bg || done[i] {
				continue
			}
			x2 := x + 1
			for x2 < tw && vals[y*tw+x2] == c && !done[y*tw+x2] {
				x2++
			}
			y2 := y + 1
		rows:
			for y2 < th {
				row := y2 * tw
				for xx := x; xx < x2; xx++ {
					if vals[row+xx] != c || done[row+xx] {
						break rows
					}
				}
				y2++
			}
			for yy := y; yy < y2; yy++ {
				for xx := x; xx < x2; xx++ {
					done[yy*tw+xx] = true
				}
			}
			count++
			if count > 255 || len(e.sub)+per > limit {
				return count, false
			}
			if !mono {
				e.sub = pw.appendPixel(e.sub, c)
			}
			e.sub = append(e.sub, byte(x<<4|y), byte((x2-x-1)<<4|(y2-y-1)))
			x = x2 - 1
		}
	}
	return count, true
}
