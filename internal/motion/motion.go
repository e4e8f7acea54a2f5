// Package motion paints a deterministic moving picture for video
// benchmarks, frame by frame: a textured scene panning across most of the
// screen with three sprites moving over it (the "video" part), a log that
// scrolls a line every other frame below it (the "text" part), and a stamp,
// a row of black and white blocks in the top-left corner that encodes the
// frame number. A picture captured downstream (a browser's canvas, a
// decoded video frame) therefore says which frame it shows: ReadStamp
// reads the number back, and Render paints that frame again to compare
// against.
//
// Frame n depends on n and the screen size only. Rendering never goes
// through image.Image: the texture is a precomputed periodic tile copied
// row by row, and glyphs are small bitmaps.
package motion

import (
	"fmt"
	"image/color"
	"math"
	"strconv"

	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"kvmgate/framebuffer"
)

// Stamp layout: StampBits blocks of StampBlock×StampBlock pixels carry the
// frame number (most significant bit first, white for 1), then as many
// blocks carry its complement, so that a misread block is detected. The
// blocks sit at the top-left corner, aligned to the 16×16 macroblocks of
// VP8 and H.264 so that lossy codecs keep them clean.
const (
	StampBlock = 16
	StampBits  = 16
)

// FPS is the frame rate the picture is designed for: the pan moves
// PanSpeed pixels a frame.
const FPS = 25

// PanSpeed is how far the scene pans per frame, in pixels (across, down).
var PanSpeed = [2]int{4, 2}

const (
	texW, texH = 1024, 512 // the scene's periodic tile
	cellW      = 8         // text cell: a 7×13 glyph plus spacing
	cellH      = 16
	textLeft   = 8
	spriteSize = 96
	// linesPer is how many frames each log line stays the newest.
	linesPer = 2
)

var (
	colBar    = [3]byte{0x2d, 0x3e, 0x50}
	colTextBG = [3]byte{0x10, 0x10, 0x10}
	colTextFG = [3]byte{0xd0, 0xd0, 0xd0}
	colTime   = [3]byte{0x60, 0xc0, 0x60}
)

// Scene paints the frames of one screen size. Its methods may be called
// from several goroutines at once.
type Scene struct {
	w, h int
	tex  []byte // texW×texH RGBA, periodic in both directions
	pan  framebuffer.Rect
	text framebuffer.Rect
}

// New prepares the scene for a w×h screen. The screen must be at least
// 2·StampBits·StampBlock pixels wide and 160 high.
func New(w, h int) (*Scene, error) {
	if err := framebuffer.CheckSize(w, h); err != nil {
		return nil, fmt.Errorf("motion: %w", err)
	}
	if w < 2*StampBits*StampBlock || h < 160 {
		return nil, fmt.Errorf("motion: screen %dx%d too small (at least %dx160)", w, h, 2*StampBits*StampBlock)
	}
	panBottom := (h*68/100 + 15) &^ 15
	s := &Scene{
		w: w, h: h,
		pan:  framebuffer.Rect{X: 0, Y: StampBlock, W: w, H: panBottom - StampBlock},
		text: framebuffer.Rect{X: 0, Y: panBottom, W: w, H: h - panBottom},
	}
	s.tex = texture()
	return s, nil
}

// Size returns the screen size.
func (s *Scene) Size() (w, h int) { return s.w, s.h }

// PanRect returns the part of the screen the panning scene covers.
func (s *Scene) PanRect() framebuffer.Rect { return s.pan }

// TextRect returns the part of the screen the scrolling log covers.
func (s *Scene) TextRect() framebuffer.Rect { return s.text }

// StampRect returns the part of the screen the frame stamp covers.
func StampRect() framebuffer.Rect {
	return framebuffer.Rect{X: 0, Y: 0, W: 2 * StampBits * StampBlock, H: StampBlock}
}

// Render paints frame n (n ≥ 0) on c, which must have the scene's size.
func (s *Scene) Render(c *framebuffer.Canvas, n int) {
	s.renderBar(c, n)
	s.renderPan(c, n)
	s.renderText(c, n)
}

// Damage records in b what changes from frame n−1 to frame n (the
// rectangles of Changed).
func (s *Scene) Damage(b *framebuffer.Batch, n int) {
	for _, r := range s.Changed(n) {
		b.Damage(r)
	}
}

// Changed returns what changes from frame n−1 to frame n: the stamp, the
// scene, and the log when it scrolls. Frame 0 changes everything.
func (s *Scene) Changed(n int) []framebuffer.Rect {
	if n == 0 {
		return []framebuffer.Rect{{X: 0, Y: 0, W: s.w, H: s.h}}
	}
	rs := []framebuffer.Rect{StampRect(), s.pan}
	if n/linesPer != (n-1)/linesPer {
		rs = append(rs, s.text)
	}
	return rs
}

// renderBar paints the top row: the stamp, then a plain bar.
func (s *Scene) renderBar(c *framebuffer.Canvas, n int) {
	v := uint16(n)
	for i := 0; i < StampBits; i++ {
		bit := v>>(StampBits-1-i)&1 == 1
		fillRGB(c, framebuffer.Rect{X: i * StampBlock, Y: 0, W: StampBlock, H: StampBlock}, bw(bit))
		fillRGB(c, framebuffer.Rect{X: (StampBits + i) * StampBlock, Y: 0, W: StampBlock, H: StampBlock}, bw(!bit))
	}
	sr := StampRect()
	fillRGB(c, framebuffer.Rect{X: sr.W, Y: 0, W: s.w - sr.W, H: StampBlock}, colBar)
}

func bw(white bool) [3]byte {
	if white {
		return [3]byte{0xff, 0xff, 0xff}
	}
	return [3]byte{}
}

// renderPan copies the window of the periodic texture that frame n shows
// into the scene's rectangle, then draws the sprites.
func (s *Scene) renderPan(c *framebuffer.Canvas, n int) {
	ox, oy := n*PanSpeed[0]%texW, n*PanSpeed[1]%texH
	r := s.pan
	for y := 0; y < r.H; y++ {
		ty := (y + oy) % texH
		src := s.tex[ty*texW*4 : (ty+1)*texW*4]
		dst := c.Row(r.X, r.Y+y, r.W)
		x := ox
		for len(dst) > 0 {
			k := copy(dst, src[x*4:])
			dst = dst[k:]
			x = 0
		}
	}
	for i := range 3 {
		sx, sy := s.sprite(i, n)
		drawSprite(c, sx, sy, i)
	}
}

// sprite returns the top-left corner of sprite i in frame n: Lissajous
// paths inside the scene, each at its own speed.
func (s *Scene) sprite(i, n int) (x, y int) {
	r := s.pan
	t := float64(n) / FPS
	fx := []float64{0.31, 0.23, 0.17}[i] * 2 * math.Pi
	fy := []float64{0.19, 0.29, 0.13}[i] * 2 * math.Pi
	ph := float64(i) * 2.1
	x = r.X + int(float64(r.W-spriteSize)*(0.5+0.5*math.Sin(fx*t+ph)))
	y = r.Y + int(float64(r.H-spriteSize)*(0.5+0.5*math.Cos(fy*t+ph)))
	return x, y
}

// drawSprite paints sprite i, a square with a bright border and a
// diagonal gradient, at (x, y).
func drawSprite(c *framebuffer.Canvas, x, y, i int) {
	base := [][3]byte{{0xe0, 0x80, 0x20}, {0x30, 0xa0, 0xe0}, {0xd0, 0x40, 0xa0}}[i]
	fillRGB(c, framebuffer.Rect{X: x, Y: y, W: spriteSize, H: spriteSize}, [3]byte{0xff, 0xff, 0xf0})
	for j := 4; j < spriteSize-4; j++ {
		row := c.Row(x+4, y+j, spriteSize-8)
		for k := 0; k < spriteSize-8; k++ {
			g := (j + k) * 96 / (2 * spriteSize)
			row[4*k] = sat(int(base[0]) - g)
			row[4*k+1] = sat(int(base[1]) - g)
			row[4*k+2] = sat(int(base[2]) - g)
		}
	}
}

// renderText paints the log as it stands in frame n: line n/linesPer is
// the newest, at the bottom.
func (s *Scene) renderText(c *framebuffer.Canvas, n int) {
	r := s.text
	fillRGB(c, r, colTextBG)
	rows := (r.H - 4) / cellH
	cols := (r.W - 2*textLeft) / cellW
	last := n / linesPer
	var buf []byte
	for row := range rows {
		line := last - (rows - 1 - row)
		if line < 0 {
			continue
		}
		buf = logLine(buf[:0], line)
		y := r.Y + 2 + row*cellH
		for i, ch := range buf[:min(len(buf), cols)] {
			fg := colTextFG
			if i < 14 {
				fg = colTime
			}
			drawGlyph(c, textLeft+i*cellW, y, ch, fg)
		}
	}
}

// logWords make up the log's lines.
var logWords = []string{
	"kernel:", "eth0", "link", "up", "1000Mbps", "full", "duplex", "systemd[1]:", "Started", "Session", "of", "user",
	"root.", "audit:", "type=1400", "apparmor=\"STATUS\"", "operation=\"profile_load\"", "sshd[2201]:", "Accepted",
	"publickey", "for", "admin", "from", "10.0.0.4", "port", "51522", "ssh2", "nvme0n1:", "p1", "p2", "p3", "EXT4-fs",
	"(nvme0n1p2):", "mounted", "filesystem", "with", "ordered", "data", "mode.", "cron[811]:", "(root)", "CMD",
	"(run-parts", "/etc/cron.hourly)", "dhclient:", "DHCPACK", "of", "10.0.0.17", "usb", "1-1:", "new", "high-speed",
	"device", "number", "3", "using", "xhci_hcd", "Ready.", "Reached", "target", "Multi-User", "System.",
}

// logLine appends line i of the log to buf: a timestamp and words picked
// by a hash of i.
func logLine(buf []byte, i int) []byte {
	buf = append(buf, '[')
	ts := strconv.FormatFloat(float64(i)*0.0371+12.5, 'f', 6, 64)
	for range 12 - len(ts) {
		buf = append(buf, ' ')
	}
	buf = append(buf, ts...)
	buf = append(buf, "] "...)
	h := uint32(i)*2654435761 + 12345
	words := 5 + int(h%13)
	for w := range words {
		h ^= h << 13
		h ^= h >> 17
		h ^= h << 5
		if w > 0 {
			buf = append(buf, ' ')
		}
		buf = append(buf, logWords[h%uint32(len(logWords))]...)
	}
	return buf
}

// glyphs holds the printable ASCII characters of the 7×13 X11 "fixed"
// font (index r−0x20) as cellW×cellH coverage bitmaps, extracted once.
var glyphs = func() [][cellW * cellH]bool {
	face := basicfont.Face7x13
	g := make([][cellW * cellH]bool, 0x7f-0x20)
	for r := rune(0x20); r < 0x7f; r++ {
		dr, mask, mp, _, ok := face.Glyph(fixed.P(0, face.Ascent), r)
		if !ok {
			continue
		}
		for y := 0; y < dr.Dy() && y+dr.Min.Y < cellH; y++ {
			for x := 0; x < dr.Dx() && x+dr.Min.X < cellW; x++ {
				if color.AlphaModel.Convert(mask.At(mp.X+x, mp.Y+y)).(color.Alpha).A >= 0x80 {
					g[r-0x20][(y+dr.Min.Y)*cellW+x+dr.Min.X] = true
				}
			}
		}
	}
	return g
}()

// drawGlyph paints the set pixels of character ch at (x, y) in fg.
func drawGlyph(c *framebuffer.Canvas, x, y int, ch byte, fg [3]byte) {
	if ch < 0x20 || ch >= 0x7f {
		ch = '?'
	}
	g := &glyphs[ch-0x20]
	for j := range cellH {
		row := c.Row(x, y+j, cellW)
		for i := range cellW {
			if g[j*cellW+i] {
				row[4*i], row[4*i+1], row[4*i+2] = fg[0], fg[1], fg[2]
			}
		}
	}
}

// texture builds the scene's tile: smooth colour waves, periodic in both
// directions, with a lattice of discs (some filled with a fine checker)
// and thin diagonal lines for hard edges.
func texture() []byte {
	t := make([]byte, texW*texH*4)
	const cell = 128
	for y := range texH {
		for x := range texW {
			fx, fy := float64(x)/texW, float64(y)/texH
			r := 120 + 70*math.Sin(2*math.Pi*(2*fx+fy)) + 30*math.Sin(2*math.Pi*5*fy)
			g := 110 + 60*math.Sin(2*math.Pi*(3*fx-2*fy)+1) + 30*math.Cos(2*math.Pi*7*fx)
			b := 130 + 70*math.Cos(2*math.Pi*(fx+3*fy)+2)
			// Discs on a lattice, radius and colour by cell.
			cx, cy := x/cell, y/cell
			dx, dy := x%cell-cell/2, y%cell-cell/2
			k := (cx*7 + cy*13) % 5
			rad := 28 + 6*k
			if dx*dx+dy*dy < rad*rad {
				switch k {
				case 0:
					if (x/4+y/4)%2 == 0 {
						r, g, b = 240, 240, 240
					} else {
						r, g, b = 20, 20, 40
					}
				case 1:
					r, g, b = 230, 60, 40
				case 2:
					r, g, b = 40, 200, 90
				default:
					r, g, b = 255-r, 255-g, 255-b
				}
			}
			if (x+2*y)%64 < 2 {
				r, g, b = 250, 250, 200
			}
			o := (y*texW + x) * 4
			t[o], t[o+1], t[o+2], t[o+3] = sat(int(r)), sat(int(g)), sat(int(b)), 0xff
		}
	}
	return t
}

// fillRGB paints r in an opaque colour.
func fillRGB(c *framebuffer.Canvas, r framebuffer.Rect, col [3]byte) {
	c.Fill(r, uint32(col[0])|uint32(col[1])<<8|uint32(col[2])<<16|0xff<<24)
}

func sat(v int) byte {
	return byte(min(max(v, 0), 255))
}

// ReadStamp reads the frame number off a picture of the scene (modulo
// 2^StampBits). It averages the luma of the middle 8×8 pixels of each
// block; ok is false when the picture is too small or a block disagrees
// with its complement.
func ReadStamp(c *framebuffer.Canvas) (n int, ok bool) {
	sr := StampRect()
	if c.W < sr.W || c.H < sr.H {
		return 0, false
	}
	for i := range StampBits {
		a := blockLuma(c, i*StampBlock)
		b := blockLuma(c, (StampBits+i)*StampBlock)
		if (a > 128) == (b > 128) {
			return 0, false
		}
		n <<= 1
		if a > 128 {
			n |= 1
		}
	}
	return n, true
}

// blockLuma is the mean luma of the middle of the stamp block at x.
func blockLuma(c *framebuffer.Canvas, x int) int {
	const q = StampBlock / 4
	sum := 0
	for y := q; y < StampBlock-q; y++ {
		row := c.Row(x+q, y, StampBlock-2*q)
		for i := 0; i < len(row); i += 4 {
			sum += 299*int(row[i]) + 587*int(row[i+1]) + 114*int(row[i+2])
		}
	}
	return sum / 1000 / ((StampBlock - 2*q) * (StampBlock - 2*q))
}
