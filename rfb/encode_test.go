package rfb

// A small test-only RFB encoder: it turns pictures of wire pixel values into
// Raw, RRE, Hextile, ZRLE and TRLE payloads, written from the specification
// independently of the decoders, so decoding its output and comparing
// pixels checks the decoders.

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"kvmgate/framebuffer"
)

// testPic is a picture of wire pixel values in some PixelFormat, in canvas
// coordinates.
type testPic struct {
	w, h int
	pix  []uint32
}

func (p *testPic) at(x, y int) uint32 { return p.pix[y*p.w+x] }

// testFormats are the pixel formats every decoder is tested with.
var testFormats = []struct {
	name string
	pf   PixelFormat
}{
	{"native", NativeFormat},
	{"native-depth32", func() PixelFormat { pf := NativeFormat; pf.Depth = 32; return pf }()},
	{"rgb565le", Format16},
	{"rgb565be", func() PixelFormat { pf := Format16; pf.BigEndian = true; return pf }()},
	{"bgr233", Format8},
	{"xrgb32be", PixelFormat{BitsPerPixel: 32, Depth: 24, BigEndian: true, TrueColour: true,
		RedMax: 255, GreenMax: 255, BlueMax: 255, RedShift: 16, GreenShift: 8, BlueShift: 0}},
	{"rgbx32le-high", PixelFormat{BitsPerPixel: 32, Depth: 24, TrueColour: true,
		RedMax: 255, GreenMax: 255, BlueMax: 255, RedShift: 24, GreenShift: 16, BlueShift: 8}},
	{"bgr555be", PixelFormat{BitsPerPixel: 16, Depth: 15, BigEndian: true, TrueColour: true,
		RedMax: 31, GreenMax: 31, BlueMax: 31, RedShift: 0, GreenShift: 5, BlueShift: 10}},
}

// testEncValue returns the pixel value of pf nearest to the 8-bit colour
// r, g, b.
func testEncValue(pf *PixelFormat, r, g, b uint32) uint32 {
	return (r*uint32(pf.RedMax)+127)/255<<pf.RedShift |
		(g*uint32(pf.GreenMax)+127)/255<<pf.GreenShift |
		(b*uint32(pf.BlueMax)+127)/255<<pf.BlueShift
}

// testEncExpect returns the canvas RGBA a decoder must produce for v.
func testEncExpect(pf *PixelFormat, v uint32) uint32 {
	comp := func(shift uint8, mx uint16) uint32 {
		c := v >> shift & uint32(mx)
		return (c*255 + uint32(mx)/2) / uint32(mx)
	}
	return comp(pf.RedShift, pf.RedMax) | comp(pf.GreenShift, pf.GreenMax)<<8 |
		comp(pf.BlueShift, pf.BlueMax)<<16 | 0xff000000
}

// testEncPixel appends the wire bytes of pixel value v.
func testEncPixel(dst []byte, pf *PixelFormat, v uint32) []byte {
	switch pf.BitsPerPixel {
	case 8:
		return append(dst, byte(v))
	case 16:
		if pf.BigEndian {
			return binary.BigEndian.AppendUint16(dst, uint16(v))
		}
		return binary.LittleEndian.AppendUint16(dst, uint16(v))
	}
	if pf.BigEndian {
		return binary.BigEndian.AppendUint32(dst, v)
	}
	return binary.LittleEndian.AppendUint32(dst, v)
}

// testEncCPixel appends the ZRLE/TRLE CPIXEL of v: the three bytes of a
// 32-bit true-colour pixel of depth ≤ 24 that hold its colour bits (the
// low three when both would do), else the whole pixel.
func testEncCPixel(dst []byte, pf *PixelFormat, v uint32) []byte {
	full := testEncPixel(nil, pf, v)
	if pf.BitsPerPixel == 32 && pf.TrueColour && pf.Depth <= 24 {
		used := uint32(pf.RedMax)<<pf.RedShift | uint32(pf.GreenMax)<<pf.GreenShift | uint32(pf.BlueMax)<<pf.BlueShift
		// In wire order, the least significant byte is first for
		// little-endian and last for big-endian.
		lowFirst := !pf.BigEndian
		switch {
		case used&0xff000000 == 0 && lowFirst, used&0xff000000 != 0 && used&0xff == 0 && !lowFirst:
			full = full[:3]
		case used&0xff000000 == 0, used&0xff == 0:
			full = full[1:]
		}
	}
	return append(dst, full...)
}

// testEncCanvas returns a canvas whose pixels all differ from what the
// test pictures hold (alpha 0x7f), so stray and missing writes show.
func testEncCanvas(t testing.TB, w, h int) *framebuffer.Canvas {
	t.Helper()
	c, err := framebuffer.NewCanvas(w, h)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(c.Pix); i += 4 {
		c.Pix[i], c.Pix[i+1], c.Pix[i+2], c.Pix[i+3] = byte(i), byte(i>>8), byte(i>>16), 0x7f
	}
	return c
}

// testEncWant returns a copy of base with the rectangles rs painted from pic.
func testEncWant(base *framebuffer.Canvas, pf *PixelFormat, pic *testPic, rs ...framebuffer.Rect) *framebuffer.Canvas {
	c := base.Clone()
	for _, r := range rs {
		for y := r.Y; y < r.Y+r.H; y++ {
			for x := r.X; x < r.X+r.W; x++ {
				binary.LittleEndian.PutUint32(c.Pix[c.Offset(x, y):], testEncExpect(pf, pic.at(x, y)))
			}
		}
	}
	return c
}

// testEncCompare fails t at the first pixel where got and want differ.
func testEncCompare(t testing.TB, got, want *framebuffer.Canvas) {
	t.Helper()
	if got.Equal(want) {
		return
	}
	for y := 0; y < want.H; y++ {
		for x := 0; x < want.W; x++ {
			if g, w := got.At(x, y), want.At(x, y); g != w {
				t.Fatalf("pixel %d,%d = %#08x, want %#08x", x, y, g, w)
			}
		}
	}
}

// testEncDecode decodes payload as the rectangles rs of encoding e in
// order, with one decoder instance as a connection would, and checks that
// the whole payload was consumed.
func testEncDecode(e Encoding, pf PixelFormat, c *framebuffer.Canvas, batch *framebuffer.Batch, payload []byte, rs ...framebuffer.Rect) error {
	d := newDecodeContext(newReader(bytes.NewReader(payload)), pf, nil, c, batch)
	dec, err := d.decoder(e)
	if err != nil {
		return err
	}
	for _, r := range rs {
		if err := dec.decode(d, r); err != nil {
			return err
		}
	}
	if d.r.n != int64(len(payload)) {
		return fmt.Errorf("decoded %d of %d payload bytes", d.r.n, len(payload))
	}
	return nil
}

// testEncPicture returns a w×h picture made of blocks of different
// character: solid, a few colours scattered (2 to 20), horizontal runs, a
// gradient, and noise of many colours. Every tile subencoding finds tiles
// it suits.
func testEncPicture(rng *rand.Rand, pf *PixelFormat, w, h int) *testPic {
	p := &testPic{w: w, h: h, pix: make([]uint32, w*h)}
	colour := func() uint32 { return testEncValue(pf, rng.Uint32()&255, rng.Uint32()&255, rng.Uint32()&255) }
	for by := 0; by < h; {
		bh := min(h-by, 4+rng.Intn(60))
		for bx := 0; bx < w; {
			bw := min(w-bx, 4+rng.Intn(90))
			kind := rng.Intn(6)
			pal := make([]uint32, 2+rng.Intn(19))
			for i := range pal {
				pal[i] = colour()
			}
			run, runV := 0, pal[0]
			for y := by; y < by+bh; y++ {
				for x := bx; x < bx+bw; x++ {
					var v uint32
					switch kind {
					case 0:
						v = pal[0]
					case 1:
						v = pal[rng.Intn(len(pal))]
					case 2:
						if run == 0 {
							run, runV = 1+rng.Intn(300), pal[rng.Intn(len(pal))]
						}
						run--
						v = runV
					case 3:
						v = testEncValue(pf, uint32(x*255/w), uint32(y*255/h), uint32((x+y)&255))
					case 4:
						v = colour()
					default:
						v = pal[rng.Intn(2)]
					}
					p.pix[y*w+x] = v
				}
			}
			bx += bw
		}
		by += bh
	}
	return p
}

// testEncDesktop returns a w×h picture like a desktop: flat backgrounds,
// windows with title bars, lines of anti-aliased glyphs, and a photo-like
// gradient with noise.
func testEncDesktop(pf *PixelFormat, w, h int) *testPic {
	rng := rand.New(rand.NewSource(1))
	p := &testPic{w: w, h: h, pix: make([]uint32, w*h)}
	fill := func(x, y, fw, fh int, v uint32) {
		for j := max(y, 0); j < min(y+fh, h); j++ {
			for i := max(x, 0); i < min(x+fw, w); i++ {
				p.pix[j*w+i] = v
			}
		}
	}
	fill(0, 0, w, h, testEncValue(pf, 58, 110, 165))
	fill(0, h-32, w, 32, testEncValue(pf, 40, 40, 40))
	ink := []uint32{testEncValue(pf, 0, 0, 0), testEncValue(pf, 90, 90, 90), testEncValue(pf, 170, 170, 170)}
	windows := []framebuffer.Rect{{X: 40, Y: 40, W: 900, H: 700}, {X: 700, Y: 120, W: 1100, H: 820}, {X: 100, Y: 600, W: 500, H: 400}}
	for wi, r := range windows {
		paper := testEncValue(pf, 250, 250, 250)
		fill(r.X, r.Y, r.W, r.H, paper)
		fill(r.X, r.Y, r.W, 28, testEncValue(pf, 200, 210, 225))
		if wi == 1 {
			// A photo: a gradient with noise.
			px, py, pw, ph := r.X+40, r.Y+60, 640, 400
			for j := py; j < min(py+ph, h); j++ {
				for i := px; i < min(px+pw, w); i++ {
					n := uint32(rng.Intn(24))
					p.pix[j*w+i] = testEncValue(pf, uint32((i-px)*200/pw)+n, uint32((j-py)*180/ph)+n, uint32(120+n))
				}
			}
			continue
		}
		// Lines of 7×14 glyphs, 80 % of cells inked.
		for ly := r.Y + 40; ly+14 < r.Y+r.H; ly += 18 {
			for gx := r.X + 10; gx+7 < r.X+r.W-10; gx += 8 {
				if rng.Intn(5) == 0 {
					continue
				}
				for j := 2; j < 12; j++ {
					for i := 0; i < 6; i++ {
						if rng.Intn(3) == 0 && ly+j < h && gx+i < w {
							p.pix[(ly+j)*w+gx+i] = ink[rng.Intn(len(ink))]
						}
					}
				}
			}
		}
	}
	return p
}

// testEncRaw encodes r of pic as Raw.
func testEncRaw(pf *PixelFormat, pic *testPic, r framebuffer.Rect) []byte {
	var out []byte
	for y := r.Y; y < r.Y+r.H; y++ {
		for x := r.X; x < r.X+r.W; x++ {
			out = testEncPixel(out, pf, pic.at(x, y))
		}
	}
	return out
}

// testSubrect is a solid subrectangle, relative to its tile or rectangle.
type testSubrect struct {
	x, y, w, h int
	v          uint32
}

// testEncMostCommon returns the most frequent value of the w×h area at x, y.
func testEncMostCommon(pic *testPic, x, y, w, h int) uint32 {
	counts := map[uint32]int{}
	best, bestN := pic.at(x, y), 0
	for j := y; j < y+h; j++ {
		for i := x; i < x+w; i++ {
			v := pic.at(i, j)
			counts[v]++
			if counts[v] > bestN {
				best, bestN = v, counts[v]
			}
		}
	}
	return best
}

// testEncSubrects covers the pixels of the w×h area at x, y that are not
// bg with solid subrectangles of at most maxW×maxH, greedily.
func testEncSubrects(pic *testPic, x, y, w, h int, bg uint32, maxW, maxH int) []testSubrect {
	done := make([]bool, w*h)
	subs := make([]testSubrect, 0, w*h/4)
	for j := 0; j < h; j++ {
		for i := 0; i < w; i++ {
			v := pic.at(x+i, y+j)
			if done[j*w+i] || v == bg {
				continue
			}
			sw := 1
			for i+sw < w && sw < maxW && !done[j*w+i+sw] && pic.at(x+i+sw, y+j) == v {
				sw++
			}
			sh := 1
		grow:
			for j+sh < h && sh < maxH {
				for k := i; k < i+sw; k++ {
					if done[(j+sh)*w+k] || pic.at(x+k, y+j+sh) != v {
						break grow
					}
				}
				sh++
			}
			for jj := j; jj < j+sh; jj++ {
				for ii := i; ii < i+sw; ii++ {
					done[jj*w+ii] = true
				}
			}
			subs = append(subs, testSubrect{i, j, sw, sh, v})
		}
	}
	return subs
}

// testEncRRE encodes r of pic as RRE.
func testEncRRE(pf *PixelFormat, pic *testPic, r framebuffer.Rect) []byte {
	bg := testEncMostCommon(pic, r.X, r.Y, r.W, r.H)
	subs := testEncSubrects(pic, r.X, r.Y, r.W, r.H, bg, 1<<16-1, 1<<16-1)
	out := binary.BigEndian.AppendUint32(nil, uint32(len(subs)))
	out = testEncPixel(out, pf, bg)
	for _, s := range subs {
		out = testEncPixel(out, pf, s.v)
		for _, n := range []int{s.x, s.y, s.w, s.h} {
			out = binary.BigEndian.AppendUint16(out, uint16(n))
		}
	}
	return out
}

// testHextileEnc encodes Hextile. With rng set it also makes choices a
// size-minded encoder would not (raw tiles, repeated colours), so every
// flag combination occurs; stats counts the subencoding bytes used.
type testHextileEnc struct {
	pf    *PixelFormat
	rng   *rand.Rand
	stats map[byte]int
}

func (e *testHextileEnc) rect(pic *testPic, r framebuffer.Rect) []byte {
	var out []byte
	var bg, fg uint32
	haveBG, haveFG := false, false
	bpp := int(e.pf.BitsPerPixel / 8)
	chance := func(n int) bool { return e.rng != nil && e.rng.Intn(n) == 0 }
	for ty := r.Y; ty < r.Y+r.H; ty += 16 {
		th := min(16, r.Y+r.H-ty)
		for tx := r.X; tx < r.X+r.W; tx += 16 {
			tw := min(16, r.X+r.W-tx)
			tbg := testEncMostCommon(pic, tx, ty, tw, th)
			subs := testEncSubrects(pic, tx, ty, tw, th, tbg, 16, 16)
			mono := true
			for _, s := range subs {
				mono = mono && s.v == subs[0].v
			}
			size := 2 + bpp
			if mono {
				size = 2
			}
			if chance(6) || 2+2*bpp+len(subs)*size >= tw*th*bpp {
				out = append(out, hextileRaw)
				for y := ty; y < ty+th; y++ {
					for x := tx; x < tx+tw; x++ {
						out = testEncPixel(out, e.pf, pic.at(x, y))
					}
				}
				haveBG, haveFG = false, false
				e.stats[hextileRaw]++
				continue
			}
			var flags byte
			var extra []byte
			if !haveBG || bg != tbg || chance(4) {
				flags |= hextileBackground
				extra = testEncPixel(extra, e.pf, tbg)
				bg, haveBG = tbg, true
			}
			if len(subs) > 0 {
				flags |= hextileAnySubrects
				if mono {
					if !haveFG || fg != subs[0].v || chance(4) {
						flags |= hextileForeground
						extra = testEncPixel(extra, e.pf, subs[0].v)
						fg, haveFG = subs[0].v, true
					}
				} else {
					flags |= hextileSubrectsColoured
					haveFG = false
				}
			}
			out = append(out, flags)
			out = append(out, extra...)
			if len(subs) > 0 {
				out = append(out, byte(len(subs)))
				for _, s := range subs {
					if !mono {
						out = testEncPixel(out, e.pf, s.v)
					}
					out = append(out, byte(s.x<<4|s.y), byte((s.w-1)<<4|(s.h-1)))
				}
			}
			e.stats[flags]++
		}
	}
	return out
}

// testTileEnc encodes ZRLE and TRLE tiles. With rng set it picks a random
// subencoding among those that can encode a tile, else the smallest; stats
// counts the subencodings used. For TRLE it also reuses the last palette
// sent when the tile's colours are all in it.
type testTileEnc struct {
	pf      *PixelFormat
	size    int
	trle    bool
	rng     *rand.Rand
	stats   map[int]int
	prevPal []uint32
}

func (e *testTileEnc) rect(dst []byte, pic *testPic, r framebuffer.Rect) []byte {
	for ty := r.Y; ty < r.Y+r.H; ty += e.size {
		th := min(e.size, r.Y+r.H-ty)
		for tx := r.X; tx < r.X+r.W; tx += e.size {
			tw := min(e.size, r.X+r.W-tx)
			dst = e.tile(dst, pic, tx, ty, tw, th)
		}
	}
	return dst
}

func testEncRunLength(dst []byte, n int) []byte {
	for n--; n >= 255; n -= 255 {
		dst = append(dst, 255)
	}
	return append(dst, byte(n))
}

func (e *testTileEnc) tile(dst []byte, pic *testPic, x, y, w, h int) []byte {
	px := make([]uint32, 0, w*h)
	for j := y; j < y+h; j++ {
		for i := x; i < x+w; i++ {
			px = append(px, pic.at(i, j))
		}
	}
	var pal []uint32
	index := map[uint32]int{}
	for _, v := range px {
		if _, ok := index[v]; !ok && len(pal) < 128 {
			index[v] = len(pal)
			pal = append(pal, v)
		}
	}
	type cand struct {
		sub    int
		data   []byte
		newPal []uint32
	}
	var cands []cand
	raw := []byte{0}
	for _, v := range px {
		raw = testEncCPixel(raw, e.pf, v)
	}
	cands = append(cands, cand{0, raw, nil})
	if len(pal) == 1 {
		cands = append(cands, cand{1, testEncCPixel([]byte{1}, e.pf, pal[0]), nil})
	}
	packed := func(sub int, pal []uint32, idx map[uint32]int, sendPal bool) []byte {
		out := []byte{byte(sub)}
		if sendPal {
			for _, v := range pal {
				out = testEncCPixel(out, e.pf, v)
			}
		}
		bits := 4
		if len(pal) == 2 {
			bits = 1
		} else if len(pal) <= 4 {
			bits = 2
		}
		for j := 0; j < h; j++ {
			var acc byte
			n := 0
			for i := 0; i < w; i++ {
				acc |= byte(idx[px[j*w+i]]) << (8 - bits*(n+1))
				if n++; n == 8/bits {
					out, acc, n = append(out, acc), 0, 0
				}
			}
			if n > 0 {
				out = append(out, acc)
			}
		}
		return out
	}
	runs := func(f func(v uint32, n int)) {
		for i := 0; i < len(px); {
			n := 1
			for i+n < len(px) && px[i+n] == px[i] {
				n++
			}
			f(px[i], n)
			i += n
		}
	}
	paletteRLE := func(sub int, pal []uint32, idx map[uint32]int, sendPal bool) []byte {
		out := []byte{byte(sub)}
		if sendPal {
			for _, v := range pal {
				out = testEncCPixel(out, e.pf, v)
			}
		}
		runs(func(v uint32, n int) {
			if n == 1 {
				out = append(out, byte(idx[v]))
				return
			}
			out = testEncRunLength(append(out, byte(idx[v])|128), n)
		})
		return out
	}
	if len(pal) >= 2 && len(pal) <= 16 {
		cands = append(cands, cand{len(pal), packed(len(pal), pal, index, true), pal})
	}
	plain := []byte{128}
	runs(func(v uint32, n int) { plain = testEncRunLength(testEncCPixel(plain, e.pf, v), n) })
	cands = append(cands, cand{128, plain, nil})
	if len(pal) >= 2 && len(pal) <= 127 {
		cands = append(cands, cand{128 + len(pal), paletteRLE(128+len(pal), pal, index, true), pal})
	}
	if e.trle && len(e.prevPal) > 0 {
		prevIdx := map[uint32]int{}
		for i, v := range e.prevPal {
			prevIdx[v] = i
		}
		all := true
		for _, v := range pal {
			_, ok := prevIdx[v]
			all = all && ok
		}
		if all {
			if len(e.prevPal) >= 2 && len(e.prevPal) <= 16 {
				cands = append(cands, cand{127, packed(127, e.prevPal, prevIdx, false), nil})
			}
			cands = append(cands, cand{129, paletteRLE(129, e.prevPal, prevIdx, false), nil})
		}
	}
	best := cands[0]
	if e.rng != nil {
		best = cands[e.rng.Intn(len(cands))]
	} else {
		for _, c := range cands[1:] {
			if len(c.data) < len(best.data) {
				best = c
			}
		}
	}
	if best.newPal != nil {
		e.prevPal = best.newPal
	}
	if e.stats != nil {
		e.stats[best.sub]++
	}
	return append(dst, best.data...)
}

// testZRLEEnc is the server side of one connection's ZRLE zlib stream.
type testZRLEEnc struct {
	tiles testTileEnc
	buf   bytes.Buffer
	zw    *zlib.Writer
}

func newTestZRLEEnc(pf *PixelFormat, rng *rand.Rand) *testZRLEEnc {
	e := &testZRLEEnc{tiles: testTileEnc{pf: pf, size: 64, rng: rng, stats: map[int]int{}}}
	e.zw = zlib.NewWriter(&e.buf)
	return e
}

// rect returns the ZRLE payload of r: length, then the zlib data of its
// tiles ending in a sync flush, as servers send it.
func (e *testZRLEEnc) rect(pic *testPic, r framebuffer.Rect) []byte {
	raw := e.tiles.rect(nil, pic, r)
	if _, err := e.zw.Write(raw); err != nil {
		panic(err)
	}
	if err := e.zw.Flush(); err != nil {
		panic(err)
	}
	out := binary.BigEndian.AppendUint32(nil, uint32(e.buf.Len()))
	out = append(out, e.buf.Bytes()...)
	e.buf.Reset()
	return out
}

// testEncRectSets are the groups of rectangles each encoding is tested
// with on a 1021×765 canvas: the whole screen, strips along the edges,
// odd sizes that are not multiples of any tile size, and an empty one.
var testEncRectSets = [][]framebuffer.Rect{
	{{X: 0, Y: 0, W: 1021, H: 765}},
	{{X: 5, Y: 5, W: 0, H: 0}, {X: 3, Y: 5, W: 1000, H: 700}, {X: 1020, Y: 764, W: 1, H: 1}, {X: 0, Y: 764, W: 1021, H: 1}, {X: 1020, Y: 0, W: 1, H: 765}},
	{{X: 17, Y: 33, W: 65, H: 63}, {X: 500, Y: 300, W: 129, H: 127}, {X: 64, Y: 64, W: 64, H: 64}, {X: 1, Y: 1, W: 15, H: 17}, {X: 957, Y: 701, W: 64, H: 64}},
}

// testEncRoundTrips encodes each rectangle set with encode (all of a set's
// rectangles in one payload, as one connection sends them), decodes it with
// encoding e in every test pixel format, and compares every pixel of the
// canvas.
func testEncRoundTrips(t *testing.T, e Encoding, encode func(pf *PixelFormat, rng *rand.Rand, pic *testPic, rs []framebuffer.Rect) []byte) {
	for fi, f := range testFormats {
		t.Run(f.name, func(t *testing.T) {
			pf := f.pf
			rng := rand.New(rand.NewSource(int64(len(f.name))))
			pic := testEncPicture(rng, &pf, 1021, 765)
			base := testEncCanvas(t, 1021, 765)
			for i, rs := range testEncRectSets {
				if i == 0 && fi%3 != 0 {
					continue // the whole screen in a third of the formats is enough
				}
				c := base.Clone()
				payload := encode(&pf, rng, pic, rs)
				if err := testEncDecode(e, pf, c, &framebuffer.Batch{}, payload, rs...); err != nil {
					t.Fatalf("set %d: %v", i, err)
				}
				testEncCompare(t, c, testEncWant(base, &pf, pic, rs...))
			}
		})
	}
}

// testEncTruncations checks that every proper prefix of payload fails to
// decode as r, with an error rather than a panic.
func testEncTruncations(t *testing.T, e Encoding, pf PixelFormat, payload []byte, r framebuffer.Rect) {
	t.Helper()
	c := testEncCanvas(t, r.X+r.W, r.Y+r.H)
	step := max(1, len(payload)/300)
	for n := 0; n < len(payload); n += step {
		if err := testEncDecode(e, pf, c, &framebuffer.Batch{}, payload[:n], r); err == nil {
			t.Fatalf("payload cut to %d of %d bytes decoded without error", n, len(payload))
		}
	}
}

// testEncBad is a hand-made payload that must fail to decode.
type testEncBad struct {
	name    string
	payload []byte
	want    string // a part of the error message
}

// testEncBadCases decodes each case as r in NativeFormat and checks the
// error.
func testEncBadCases(t *testing.T, e Encoding, r framebuffer.Rect, cases []testEncBad) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := testEncCanvas(t, r.X+r.W+3, r.Y+r.H+3)
			err := testEncDecode(e, NativeFormat, c, &framebuffer.Batch{}, tc.payload, r)
			if err == nil {
				t.Fatal("decoded without error")
			}
			if !bytes.Contains([]byte(err.Error()), []byte(tc.want)) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

// Fuzzing: an input is one byte choosing the pixel format (low 3 bits) and
// the rectangle's x (high 5 bits), one byte each for its width and height,
// then the payload, decoded up to three times as the same rectangle with
// one decoder instance, on an 80×80 canvas.

const testFuzzCanvas = 80

func testFuzzRect(data []byte) (PixelFormat, framebuffer.Rect, []byte, bool) {
	if len(data) < 3 {
		return PixelFormat{}, framebuffer.Rect{}, nil, false
	}
	pf := testFormats[int(data[0]&7)%len(testFormats)].pf
	w, h := 1+int(data[1])%70, 1+int(data[2])%70
	x := min(int(data[0]>>3), testFuzzCanvas-w)
	return pf, framebuffer.Rect{X: x, Y: testFuzzCanvas - h, W: w, H: h}, data[3:], true
}

func testFuzzDecode(t *testing.T, e Encoding, data []byte) {
	pf, r, payload, ok := testFuzzRect(data)
	if !ok {
		return
	}
	c, err := framebuffer.NewCanvas(testFuzzCanvas, testFuzzCanvas)
	if err != nil {
		t.Fatal(err)
	}
	d := newDecodeContext(newReader(bytes.NewReader(payload)), pf, nil, c, &framebuffer.Batch{})
	dec, err := d.decoder(e)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if dec.decode(d, r) != nil {
			break
		}
	}
	for i := 3; i < len(c.Pix); i += 4 {
		if c.Pix[i] != 0xff {
			t.Fatalf("pixel %d has alpha %#x", i/4, c.Pix[i])
		}
	}
}

// testFuzzSeeds returns seed inputs for encoding e made with the test
// encoder: a few formats and sizes, two rectangles per input.
func testFuzzSeeds(e Encoding) [][]byte {
	var seeds [][]byte
	for i, size := range [][2]int{{1, 1}, {16, 16}, {33, 17}, {64, 64}, {65, 70}} {
		fi := i % len(testFormats)
		pf := testFormats[fi].pf
		rng := rand.New(rand.NewSource(int64(i)))
		pic := testEncPicture(rng, &pf, testFuzzCanvas, testFuzzCanvas)
		w, h := size[0], size[1]
		r := framebuffer.Rect{X: min(3*i, testFuzzCanvas-w), Y: testFuzzCanvas - h, W: w, H: h}
		seed := []byte{byte(fi) | byte(r.X)<<3, byte(w - 1), byte(h - 1)}
		switch e {
		case EncodingRaw:
			seed = append(seed, testEncRaw(&pf, pic, r)...)
		case EncodingCopyRect:
			seed = append(seed, 0, byte(i), 0, byte(2*i))
		case EncodingRRE:
			seed = append(seed, testEncRRE(&pf, pic, r)...)
			seed = append(seed, testEncRRE(&pf, pic, r)...)
		case EncodingHextile:
			he := &testHextileEnc{pf: &pf, rng: rng, stats: map[byte]int{}}
			seed = append(seed, he.rect(pic, r)...)
			seed = append(seed, he.rect(pic, r)...)
		case EncodingZRLE:
			ze := newTestZRLEEnc(&pf, rng)
			seed = append(seed, ze.rect(pic, r)...)
			seed = append(seed, ze.rect(pic, r)...)
		case EncodingTRLE:
			te := &testTileEnc{pf: &pf, size: 16, trle: true, rng: rng}
			seed = te.rect(seed, pic, r)
			seed = te.rect(seed, pic, r)
		}
		seeds = append(seeds, seed)
	}
	return seeds
}

// TestFuzzSeedFiles writes the seed corpora under testdata/fuzz when
// RFB_WRITE_FUZZ_SEEDS is set; otherwise it checks they exist.
func TestFuzzSeedFiles(t *testing.T) {
	targets := map[string]Encoding{
		"FuzzRaw": EncodingRaw, "FuzzCopyRect": EncodingCopyRect, "FuzzRRE": EncodingRRE,
		"FuzzHextile": EncodingHextile, "FuzzZRLE": EncodingZRLE, "FuzzTRLE": EncodingTRLE,
	}
	for name, e := range targets {
		dir := filepath.Join("testdata", "fuzz", name)
		if os.Getenv("RFB_WRITE_FUZZ_SEEDS") == "" {
			if ents, err := os.ReadDir(dir); err != nil || len(ents) == 0 {
				t.Errorf("%s: no seed corpus (%v); run with RFB_WRITE_FUZZ_SEEDS=1", dir, err)
			}
			continue
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, s := range testFuzzSeeds(e) {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed%d", i)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
