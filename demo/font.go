package demo

import (
	"image/color"

	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"kvmgate/framebuffer"
)

// The demo draws text in the 7×13 X11 "fixed" font from basicfont, in cells
// of cellW×cellH pixels (one blank row between lines).
const (
	cellW  = 7
	glyphH = 13
	cellH  = glyphH + 1
)

// glyph is one character's coverage, glyphH rows of cellW alpha values.
type glyph [glyphH * cellW]byte

// glyphs holds the printable ASCII characters (index r-0x20) and, last, the
// replacement glyph used for every other rune. They are extracted from the
// font's masks once, so drawing never goes through image.Image.
var glyphs = func() []glyph {
	face := basicfont.Face7x13
	g := make([]glyph, 0x7f-0x20+1)
	load := func(r rune) glyph {
		var out glyph
		dot := fixed.P(0, face.Ascent)
		dr, mask, mp, _, ok := face.Glyph(dot, r)
		if !ok && r != '\ufffd' {
			return out
		}
		for y := 0; y < glyphH && y < dr.Dy(); y++ {
			for x := 0; x < cellW && x < dr.Dx(); x++ {
				a := color.AlphaModel.Convert(mask.At(mp.X+x, mp.Y+y)).(color.Alpha).A
				out[y*cellW+x+dr.Min.X] = a
			}
		}
		return out
	}
	for r := rune(0x20); r < 0x7f; r++ {
		g[r-0x20] = load(r)
	}
	g[len(g)-1] = load('\ufffd')
	return g
}()

func glyphFor(r rune) *glyph {
	if r >= 0x20 && r < 0x7f {
		return &glyphs[r-0x20]
	}
	return &glyphs[len(glyphs)-1]
}

// rgb is an opaque colour.
type rgb [3]byte

// drawCell paints one character cell at (x, y) with fg on bg. The cell is
// clipped to the canvas.
func drawCell(c *framebuffer.Canvas, x, y int, r rune, fg, bg rgb) {
	g := glyphFor(r)
	if r == ' ' {
		g = nil
	}
	w := min(cellW, c.W-x)
	for row := 0; row < cellH && y+row < c.H; row++ {
		if w <= 0 || x < 0 || y+row < 0 {
			return
		}
		px := c.Row(x, y+row, w)
		for col := 0; col < w; col++ {
			var a byte
			if g != nil && row < glyphH {
				a = g[row*cellW+col]
			}
			p := px[4*col : 4*col+4]
			switch a {
			case 0:
				p[0], p[1], p[2] = bg[0], bg[1], bg[2]
			case 255:
				p[0], p[1], p[2] = fg[0], fg[1], fg[2]
			default:
				for i := 0; i < 3; i++ {
					p[i] = byte((int(fg[i])*int(a) + int(bg[i])*(255-int(a)) + 127) / 255)
				}
			}
			p[3] = 255
		}
	}
}

// drawText paints s from (x, y) one cell per rune and returns the
// rectangle it covered.
func drawText(c *framebuffer.Canvas, x, y int, s string, fg, bg rgb) framebuffer.Rect {
	n := 0
	for _, r := range s {
		drawCell(c, x+n*cellW, y, r, fg, bg)
		n++
	}
	return framebuffer.Rect{X: x, Y: y, W: n * cellW, H: cellH}.Intersect(c.Bounds())
}

// fill paints r (clipped to the canvas) with colour col.
func fill(c *framebuffer.Canvas, r framebuffer.Rect, col rgb) {
	r = r.Intersect(c.Bounds())
	c.Fill(r, uint32(col[0])|uint32(col[1])<<8|uint32(col[2])<<16|0xff000000)
}
