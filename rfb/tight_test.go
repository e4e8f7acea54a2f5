package rfb

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math/rand"
	"strings"
	"testing"

	"kvmgate/framebuffer"
)

// A small Tight encoder for tests: it writes what a server would, from
// pictures given as packed R | G<<8 | B<<16 colours.

// tightPic is a w×h picture of packed RGB colours.
type tightPic struct {
	w, h int
	pix  []uint32
}

func tightNewPic(w, h int, f func(x, y int) uint32) tightPic {
	p := tightPic{w: w, h: h, pix: make([]uint32, w*h)}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			p.pix[y*w+x] = f(x, y) & 0xffffff
		}
	}
	return p
}

// tightPalettePic uses n colours in an irregular pattern.
func tightPalettePic(w, h, n int, seed int64) tightPic {
	rng := rand.New(rand.NewSource(seed))
	cols := make([]uint32, n)
	seen := map[uint32]bool{}
	for i := range cols {
		for {
			c := rng.Uint32() & 0xffffff
			if !seen[c] {
				seen[c] = true
				cols[i] = c
				break
			}
		}
	}
	return tightNewPic(w, h, func(x, y int) uint32 { return cols[rng.Intn(n)] })
}

// tightSmoothPic is photo-like: smooth slopes of colour whatever the size.
func tightSmoothPic(w, h int) tightPic {
	tri := func(v int) uint32 {
		v %= 512
		if v > 255 {
			v = 511 - v
		}
		return uint32(v)
	}
	return tightNewPic(w, h, func(x, y int) uint32 {
		return tri(x*2+40) | tri(y*3+100)<<8 | tri(x+y+7)<<16
	})
}

func tightNoisePic(w, h int, seed int64) tightPic {
	rng := rand.New(rand.NewSource(seed))
	return tightNewPic(w, h, func(x, y int) uint32 { return rng.Uint32() })
}

// tightQuant returns colour c as a pixel value of pf (true colour).
func tightQuant(pf PixelFormat, c uint32) uint32 {
	q := func(v uint32, m uint16) uint32 { return (v*uint32(m) + 127) / 255 }
	return q(c&0xff, pf.RedMax)<<pf.RedShift | q(c>>8&0xff, pf.GreenMax)<<pf.GreenShift | q(c>>16&0xff, pf.BlueMax)<<pf.BlueShift
}

// tightPack writes pixel value v in pf's size and byte order.
func tightPack(pf PixelFormat, v uint32) []byte {
	b := make([]byte, pf.BytesPerPixel())
	switch len(b) {
	case 1:
		b[0] = byte(v)
	case 2:
		if pf.BigEndian {
			binary.BigEndian.PutUint16(b, uint16(v))
		} else {
			binary.LittleEndian.PutUint16(b, uint16(v))
		}
	default:
		if pf.BigEndian {
			binary.BigEndian.PutUint32(b, v)
		} else {
			binary.LittleEndian.PutUint32(b, v)
		}
	}
	return b
}

// tightExpect is what the canvas should hold for colour c sent in pf.
func tightExpect(pf PixelFormat, c uint32) uint32 {
	if tpixelSize(&pf) == 3 {
		return c | 0xff000000
	}
	return newConverter(pf, nil).rgba(tightQuant(pf, c))
}

type tightEnc struct {
	pf    PixelFormat
	level int
	zw    [4]*zlib.Writer
	zb    [4]bytes.Buffer
	out   bytes.Buffer
}

func tightNewEnc(pf PixelFormat) *tightEnc { return &tightEnc{pf: pf, level: 6} }

func (e *tightEnc) tpixel(c uint32) []byte {
	if tpixelSize(&e.pf) == 3 {
		return []byte{byte(c), byte(c >> 8), byte(c >> 16)}
	}
	return tightPack(e.pf, tightQuant(e.pf, c))
}

func tightCompact(n int) []byte {
	switch {
	case n < 128:
		return []byte{byte(n)}
	case n < 16384:
		return []byte{byte(n) | 0x80, byte(n >> 7)}
	default:
		return []byte{byte(n) | 0x80, byte(n>>7) | 0x80, byte(n >> 14)}
	}
}

func (e *tightEnc) fill(reset byte, c uint32) {
	e.resetStreams(reset)
	e.out.WriteByte(0x80 | reset)
	e.out.Write(e.tpixel(c))
}

func (e *tightEnc) resetStreams(reset byte) {
	for i := 0; i < 4; i++ {
		if reset&(1<<i) != 0 {
			e.zw[i] = nil
		}
	}
}

// deflate compresses data on stream s, ending with a sync flush.
func (e *tightEnc) deflate(s int, data []byte) []byte {
	if e.zw[s] == nil {
		e.zb[s].Reset()
		e.zw[s], _ = zlib.NewWriterLevel(&e.zb[s], e.level)
	}
	e.zw[s].Write(data)
	e.zw[s].Flush()
	out := bytes.Clone(e.zb[s].Bytes())
	e.zb[s].Reset()
	return out
}

// Filters, producing the data basic compression sends.
const tightNoFilterByte = -1

func (e *tightEnc) copyData(p tightPic) []byte {
	var b []byte
	for _, c := range p.pix {
		b = append(b, e.tpixel(c)...)
	}
	return b
}

// paletteData returns the TPIXEL palette and the index data.
func (e *tightEnc) paletteData(p tightPic) (pal []byte, n int, data []byte) {
	idx := map[uint32]int{}
	var cols []uint32
	for _, c := range p.pix {
		if _, ok := idx[c]; !ok {
			idx[c] = len(cols)
			cols = append(cols, c)
		}
	}
	for _, c := range cols {
		pal = append(pal, e.tpixel(c)...)
	}
	if len(cols) == 2 {
		rowLen := (p.w + 7) / 8
		data = make([]byte, rowLen*p.h)
		for y := 0; y < p.h; y++ {
			for x := 0; x < p.w; x++ {
				if idx[p.pix[y*p.w+x]] == 1 {
					data[y*rowLen+x/8] |= 0x80 >> (x % 8)
				}
			}
		}
	} else {
		for _, c := range p.pix {
			data = append(data, byte(idx[c]))
		}
	}
	return pal, len(cols), data
}

func (e *tightEnc) gradientData(p tightPic) []byte {
	var comps func(c uint32) [3]int
	var maxv [3]int
	ts := tpixelSize(&e.pf)
	if ts == 3 {
		maxv = [3]int{255, 255, 255}
		comps = func(c uint32) [3]int { return [3]int{int(c & 0xff), int(c >> 8 & 0xff), int(c >> 16 & 0xff)} }
	} else {
		pf := e.pf
		maxv = [3]int{int(pf.RedMax), int(pf.GreenMax), int(pf.BlueMax)}
		comps = func(c uint32) [3]int {
			v := tightQuant(pf, c)
			return [3]int{int(v>>pf.RedShift) & maxv[0], int(v>>pf.GreenShift) & maxv[1], int(v>>pf.BlueShift) & maxv[2]}
		}
	}
	at := func(x, y int) [3]int {
		if x < 0 || y < 0 {
			return [3]int{}
		}
		return comps(p.pix[y*p.w+x])
	}
	var out []byte
	for y := 0; y < p.h; y++ {
		for x := 0; x < p.w; x++ {
			v, l, u, ul := at(x, y), at(x-1, y), at(x, y-1), at(x-1, y-1)
			var d [3]int
			for k := 0; k < 3; k++ {
				pred := min(max(l[k]+u[k]-ul[k], 0), maxv[k])
				d[k] = (v[k] - pred) & maxv[k]
			}
			if ts == 3 {
				out = append(out, byte(d[0]), byte(d[1]), byte(d[2]))
			} else {
				pf := e.pf
				pv := uint32(d[0])<<pf.RedShift | uint32(d[1])<<pf.GreenShift | uint32(d[2])<<pf.BlueShift
				out = append(out, tightPack(pf, pv)...)
			}
		}
	}
	return out
}

// basic writes a basic-compression rectangle. filter is a filter id, or
// tightNoFilterByte for none; pal and n are the palette for the palette
// filter; stream < 0 sends it without zlib.
func (e *tightEnc) basic(reset byte, stream, filter int, pal []byte, n int, data []byte) {
	e.resetStreams(reset)
	var ctl byte
	switch {
	case stream < 0 && filter == tightNoFilterByte:
		ctl = 0xa0
	case stream < 0:
		ctl = 0xe0
	default:
		ctl = byte(stream) << 4
		if filter != tightNoFilterByte {
			ctl |= 0x40
		}
	}
	e.out.WriteByte(ctl | reset)
	if filter != tightNoFilterByte {
		e.out.WriteByte(byte(filter))
	}
	if filter == tightFilterPalette {
		e.out.WriteByte(byte(n - 1))
		e.out.Write(pal)
	}
	if stream < 0 || len(data) < tightMinToCompress {
		e.out.Write(data)
		return
	}
	z := e.deflate(stream, data)
	e.out.Write(tightCompact(len(z)))
	e.out.Write(z)
}

func (e *tightEnc) image(reset byte, method byte, data []byte) {
	e.resetStreams(reset)
	e.out.WriteByte(method<<4 | reset)
	e.out.Write(tightCompact(len(data)))
	e.out.Write(data)
}

func tightRGBA(p tightPic) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, p.w, p.h))
	for i, c := range p.pix {
		binary.LittleEndian.PutUint32(m.Pix[4*i:], c|0xff000000)
	}
	return m
}

func tightEncodeJPEG(t testing.TB, p tightPic, quality int) []byte {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, tightRGBA(p), &jpeg.Options{Quality: quality}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func tightEncodePNG(t testing.TB, m image.Image) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// tightDecodeAll decodes payload as the rectangles rs, in order, with one
// decoder of encoding enc, onto a w×h canvas.
func tightDecodeAll(t testing.TB, enc Encoding, pf PixelFormat, payload []byte, w, h int, rs []framebuffer.Rect) (*framebuffer.Canvas, error) {
	t.Helper()
	cv, err := framebuffer.NewCanvas(w, h)
	if err != nil {
		t.Fatal(err)
	}
	d := newDecodeContext(newReader(bytes.NewReader(payload)), pf, nil, cv, &framebuffer.Batch{})
	dec, err := d.decoder(enc)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if err := dec.decode(d, r); err != nil {
			return cv, err
		}
	}
	if d.r.n != int64(len(payload)) {
		return cv, fmt.Errorf("consumed %d of %d payload bytes", d.r.n, len(payload))
	}
	return cv, nil
}

// tightCheck compares the canvas at r with the picture, exactly.
func tightCheck(t *testing.T, pf PixelFormat, cv *framebuffer.Canvas, r framebuffer.Rect, p tightPic) {
	t.Helper()
	bad := 0
	for y := 0; y < r.H; y++ {
		for x := 0; x < r.W; x++ {
			want := tightExpect(pf, p.pix[y*p.w+x])
			if got := cv.At(r.X+x, r.Y+y); got != want {
				if bad < 5 {
					t.Errorf("rect %v pixel %d,%d = %#08x, want %#08x", r, x, y, got, want)
				}
				bad++
			}
		}
	}
	if bad > 0 {
		t.Errorf("rect %v: %d wrong pixels", r, bad)
	}
}

var tightBGRX = PixelFormat{
	BitsPerPixel: 32, Depth: 24, TrueColour: true,
	RedMax: 255, GreenMax: 255, BlueMax: 255,
	RedShift: 16, GreenShift: 8, BlueShift: 0,
}

var tightBGRXBE = PixelFormat{
	BitsPerPixel: 32, Depth: 24, BigEndian: true, TrueColour: true,
	RedMax: 255, GreenMax: 255, BlueMax: 255,
	RedShift: 16, GreenShift: 8, BlueShift: 0,
}

// tightDepth32 is 32 bpp with depth 32: its TPIXEL is a full 4-byte pixel.
var tightDepth32 = PixelFormat{
	BitsPerPixel: 32, Depth: 32, TrueColour: true,
	RedMax: 255, GreenMax: 255, BlueMax: 255,
	RedShift: 0, GreenShift: 8, BlueShift: 16,
}

var tightFormat16BE = PixelFormat{
	BitsPerPixel: 16, Depth: 16, BigEndian: true, TrueColour: true,
	RedMax: 31, GreenMax: 63, BlueMax: 31,
	RedShift: 11, GreenShift: 5, BlueShift: 0,
}

var tightFormats = []struct {
	name string
	pf   PixelFormat
}{
	{"native", NativeFormat},
	{"bgrx", tightBGRX},
	{"bgrx-be", tightBGRXBE},
	{"depth32", tightDepth32},
	{"rgb565", Format16},
	{"rgb565-be", tightFormat16BE},
	{"bgr233", Format8},
}

func TestTightPixelSize(t *testing.T) {
	tests := []struct {
		pf   PixelFormat
		want int
	}{
		{NativeFormat, 3},
		{tightBGRX, 3},
		{tightBGRXBE, 3},
		{tightDepth32, 4},
		{Format16, 2},
		{Format8, 1},
		{PixelFormat{BitsPerPixel: 32, Depth: 24, TrueColour: true, RedMax: 1023, GreenMax: 1023, BlueMax: 1023}, 4},
		{PixelFormat{BitsPerPixel: 32, Depth: 24}, 4}, // colour map
	}
	for _, tc := range tests {
		if got := tpixelSize(&tc.pf); got != tc.want {
			t.Errorf("tpixelSize(%v) = %d, want %d", tc.pf, got, tc.want)
		}
	}
}

func TestTightCompactLength(t *testing.T) {
	for _, n := range []int{0, 1, 127, 128, 10000, 16383, 16384, 4194303} {
		r := newReader(bytes.NewReader(tightCompact(n)))
		got, err := r.compactLength()
		if err != nil || got != n {
			t.Errorf("compactLength(%x) = %d, %v; want %d", tightCompact(n), got, err, n)
		}
	}
	// The spec's own example: 10000 is 90 4E.
	if got := tightCompact(10000); !bytes.Equal(got, []byte{0x90, 0x4e}) {
		t.Errorf("tightCompact(10000) = % x", got)
	}
}

// TestTightTPixelOrder pins the TPIXEL byte order: R, G, B whatever the
// shifts and endianness of a 32 bpp depth 24 format.
func TestTightTPixelOrder(t *testing.T) {
	for _, pf := range []PixelFormat{NativeFormat, tightBGRX, tightBGRXBE} {
		payload := []byte{0x80, 0x11, 0x22, 0x33}
		cv, err := tightDecodeAll(t, EncodingTight, pf, payload, 4, 4, []framebuffer.Rect{{X: 1, Y: 1, W: 2, H: 2}})
		if err != nil {
			t.Fatal(err)
		}
		if got := cv.At(2, 2); got != 0xff332211 {
			t.Errorf("%v: fill pixel = %#08x, want R=11 G=22 B=33", pf, got)
		}
		if got := cv.At(0, 0); got != 0xff000000 {
			t.Errorf("%v: pixel outside the rect changed to %#08x", pf, got)
		}
	}
}

func TestTightBasic(t *testing.T) {
	type rectCase struct {
		name string
		pic  tightPic
	}
	var cases []rectCase
	for _, w := range []int{1, 7, 8, 9, 13, 1021} {
		h := 5
		if w > 100 {
			h = 3
		}
		cases = append(cases,
			rectCase{fmt.Sprintf("mono-%d", w), tightPalettePic(w, h, 2, int64(w))},
			rectCase{fmt.Sprintf("pal3-%d", w), tightPalettePic(w, h, 3, int64(w))},
		)
	}
	cases = append(cases,
		rectCase{"mono-tiny", tightPalettePic(2, 2, 2, 1)},   // 2 bytes: uncompressed
		rectCase{"pal-tiny", tightPalettePic(3, 3, 3, 2)},    // 9 bytes: uncompressed
		rectCase{"pal17", tightPalettePic(40, 20, 17, 3)},    //
		rectCase{"pal256", tightPalettePic(64, 64, 256, 4)},  //
		rectCase{"smooth", tightSmoothPic(100, 37)},          //
		rectCase{"noise", tightNoisePic(33, 17, 5)},          //
		rectCase{"one-pixel", tightNoisePic(1, 1, 6)},        // below 12 bytes
		rectCase{"two-by-two", tightNoisePic(2, 2, 7)},       // 12 bytes at 3 per pixel
		rectCase{"tall", tightSmoothPic(3, 300)},             //
		rectCase{"wide-smooth", tightSmoothPic(2048, 2)},     //
		rectCase{"wide-noise", tightNoisePic(1021, 2, 8)},    //
		rectCase{"gradient-edge", tightNoisePic(16, 16, 9)},  // clamping exercised
		rectCase{"flat-mono", tightPalettePic(64, 1, 2, 10)}, //
	)
	filters := []struct {
		name   string
		filter int
	}{{"copy-implicit", tightNoFilterByte}, {"copy", tightFilterCopy}, {"palette", tightFilterPalette}, {"gradient", tightFilterGradient}}
	for _, f := range tightFormats {
		for _, fl := range filters {
			for _, nozlib := range []bool{false, true} {
				name := f.name + "/" + fl.name
				if nozlib {
					name += "/nozlib"
				}
				t.Run(name, func(t *testing.T) {
					pf := f.pf
					if fl.filter == tightFilterGradient && pf.BitsPerPixel == 8 {
						t.Skip("gradient needs 16 or 32 bpp")
					}
					e := tightNewEnc(pf)
					var rects []framebuffer.Rect
					var pics []tightPic
					y := 0
					for i, c := range cases {
						p := c.pic
						if fl.filter == tightFilterPalette && pf.BitsPerPixel == 16 {
							// Distinct colours must stay distinct once quantized.
							p = tightQuantPic(pf, p)
						}
						stream := i % 4
						if nozlib {
							stream = -1
						}
						var reset byte
						if i < 4 {
							reset = 1 << i // start each stream afresh once
						}
						switch fl.filter {
						case tightFilterPalette:
							pal, n, data := e.paletteData(p)
							if n > 256 || n < 2 {
								continue
							}
							e.basic(reset, stream, tightFilterPalette, pal, n, data)
						case tightFilterGradient:
							e.basic(reset, stream, tightFilterGradient, nil, 0, e.gradientData(p))
						default:
							e.basic(reset, stream, fl.filter, nil, 0, e.copyData(p))
						}
						rects = append(rects, framebuffer.Rect{X: 3, Y: y, W: p.w, H: p.h})
						pics = append(pics, p)
						y += p.h
					}
					cv, err := tightDecodeAll(t, EncodingTight, pf, e.out.Bytes(), 2100, y, rects)
					if err != nil {
						t.Fatal(err)
					}
					for i, r := range rects {
						tightCheck(t, pf, cv, r, pics[i])
					}
				})
			}
		}
	}
}

// tightQuantPic merges colours that pf cannot tell apart, so a picture's
// palette means the same before and after quantizing.
func tightQuantPic(pf PixelFormat, p tightPic) tightPic {
	first := map[uint32]uint32{}
	q := tightPic{w: p.w, h: p.h, pix: make([]uint32, len(p.pix))}
	for i, c := range p.pix {
		k := tightQuant(pf, c)
		if _, ok := first[k]; !ok {
			first[k] = c
		}
		q.pix[i] = first[k]
	}
	return q
}

// TestTightStreams checks that the four zlib streams carry their state
// across rectangles (a later rectangle refers back to an earlier one's
// data) and are restarted when the control byte asks.
func TestTightStreams(t *testing.T) {
	pf := NativeFormat
	e := tightNewEnc(pf)
	pic := tightNoisePic(40, 10, 1) // incompressible alone, a repeat of an earlier rect is cheap
	var rects []framebuffer.Rect
	y := 0
	add := func(reset byte, stream int) {
		e.basic(reset, stream, tightNoFilterByte, nil, 0, e.copyData(pic))
		rects = append(rects, framebuffer.Rect{X: 0, Y: y, W: pic.w, H: pic.h})
		y += pic.h
	}
	add(0x1, 0)
	add(0x2, 1)
	n0 := e.out.Len()
	add(0, 0) // back-reference into stream 0's window
	if grew := e.out.Len() - n0; grew > 200 {
		t.Fatalf("test encoder did not reuse the stream (%d bytes)", grew)
	}
	add(0, 1)
	add(0x1, 0)           // restart stream 0
	e.fill(0x2, 0x00ff00) // fill also resets stream 1
	rects = append(rects, framebuffer.Rect{X: 0, Y: y, W: pic.w, H: 2})
	y += 2
	add(0, 1)
	add(0xc, 2)
	add(0, 3)
	cv, err := tightDecodeAll(t, EncodingTight, pf, e.out.Bytes(), pic.w, y, rects)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rects {
		if i == 5 {
			if got := cv.At(r.X, r.Y+1); got != 0xff00ff00 {
				t.Errorf("fill = %#08x", got)
			}
			continue
		}
		tightCheck(t, pf, cv, r, pic)
	}

	// A server stream restarted without the reset bit cannot be read.
	e = tightNewEnc(pf)
	e.basic(0x1, 0, tightNoFilterByte, nil, 0, e.copyData(pic))
	first := e.out.Len()
	e.basic(0x1, 0, tightNoFilterByte, nil, 0, e.copyData(pic))
	bad := bytes.Clone(e.out.Bytes())
	bad[first] &^= 0x1
	two := []framebuffer.Rect{{X: 0, Y: 0, W: pic.w, H: pic.h}, {X: 0, Y: pic.h, W: pic.w, H: pic.h}}
	if _, err := tightDecodeAll(t, EncodingTight, pf, e.out.Bytes(), pic.w, 2*pic.h, two); err != nil {
		t.Fatalf("with the reset bit: %v", err)
	}
	if _, err := tightDecodeAll(t, EncodingTight, pf, bad, pic.w, 2*pic.h, two); err == nil {
		t.Error("a new zlib stream without the reset bit decoded without error")
	}
}

func TestTightFill(t *testing.T) {
	for _, f := range tightFormats {
		t.Run(f.name, func(t *testing.T) {
			e := tightNewEnc(f.pf)
			cols := []uint32{0x000000, 0xffffff, 0x123456, 0xabcdef}
			var rects []framebuffer.Rect
			for i, c := range cols {
				e.fill(0, c)
				rects = append(rects, framebuffer.Rect{X: i * 10, Y: 0, W: 10, H: 7})
			}
			cv, err := tightDecodeAll(t, EncodingTight, f.pf, e.out.Bytes(), 40, 7, rects)
			if err != nil {
				t.Fatal(err)
			}
			for i, c := range cols {
				tightCheck(t, f.pf, cv, rects[i], tightNewPic(10, 7, func(x, y int) uint32 { return c }))
			}
		})
	}
}

// tightMeanAbsErr compares canvas pixels at r with p, per component.
func tightMeanAbsErr(cv *framebuffer.Canvas, r framebuffer.Rect, p tightPic) float64 {
	var sum, n float64
	for y := 0; y < r.H; y++ {
		for x := 0; x < r.W; x++ {
			got, want := cv.At(r.X+x, r.Y+y), p.pix[y*p.w+x]
			for s := 0; s < 24; s += 8 {
				d := int(got>>s&0xff) - int(want>>s&0xff)
				sum += float64(max(d, -d))
				n++
			}
			if got>>24 != 0xff {
				return 1e9
			}
		}
	}
	return sum / n
}

func TestTightJPEG(t *testing.T) {
	const tolerance = 3.0 // mean absolute error per component at quality 95
	for _, enc := range []Encoding{EncodingTight, EncodingTightPNG} {
		for _, size := range [][2]int{{1, 1}, {7, 3}, {64, 64}, {333, 97}} {
			pic := tightSmoothPic(size[0], size[1])
			e := tightNewEnc(NativeFormat)
			e.image(0xf, tightJPEG, tightEncodeJPEG(t, pic, 95))
			r := framebuffer.Rect{X: 5, Y: 6, W: pic.w, H: pic.h}
			cv, err := tightDecodeAll(t, enc, NativeFormat, e.out.Bytes(), 400, 120, []framebuffer.Rect{r})
			if err != nil {
				t.Fatalf("%v %dx%d: %v", enc, pic.w, pic.h, err)
			}
			if mae := tightMeanAbsErr(cv, r, pic); mae > tolerance {
				t.Errorf("%v %dx%d: mean abs error %.2f > %.1f", enc, pic.w, pic.h, mae, tolerance)
			}
			if cv.At(4, 6) != 0xff000000 || cv.At(5+pic.w, 6) != 0xff000000 {
				t.Errorf("%v: JPEG painted outside its rect", enc)
			}
		}
	}
	// A greyscale JPEG (TigerVNC's "gray" subsampling) decodes to grey.
	gray := image.NewGray(image.Rect(0, 0, 16, 8))
	for i := range gray.Pix {
		gray.Pix[i] = byte(i * 2)
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, gray, &jpeg.Options{Quality: 100}); err != nil {
		t.Fatal(err)
	}
	e := tightNewEnc(Format16)
	e.image(0, tightJPEG, b.Bytes())
	cv, err := tightDecodeAll(t, EncodingTight, Format16, e.out.Bytes(), 16, 8, []framebuffer.Rect{{W: 16, H: 8}})
	if err != nil {
		t.Fatal(err)
	}
	pic := tightNewPic(16, 8, func(x, y int) uint32 { v := uint32(gray.Pix[y*16+x]); return v * 0x010101 })
	if mae := tightMeanAbsErr(cv, framebuffer.Rect{W: 16, H: 8}, pic); mae > tolerance {
		t.Errorf("grey JPEG: mean abs error %.2f", mae)
	}
}

// TestTightYCbCr checks the fast YCbCr conversion against image/color for
// every subsampling layout.
func TestTightYCbCr(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	ratios := []image.YCbCrSubsampleRatio{
		image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422, image.YCbCrSubsampleRatio420,
		image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410,
	}
	for _, ratio := range ratios {
		m := image.NewYCbCr(image.Rect(0, 0, 13, 11), ratio)
		for _, p := range [][]byte{m.Y, m.Cb, m.Cr} {
			rng.Read(p)
		}
		cv, _ := framebuffer.NewCanvas(13, 11)
		r := framebuffer.Rect{W: 13, H: 11}
		if !ycbcrToRGBA(cv, r, m) {
			t.Fatalf("%v not handled", ratio)
		}
		for y := 0; y < 11; y++ {
			for x := 0; x < 13; x++ {
				c := m.YCbCrAt(x, y)
				wr, wg, wb := color.YCbCrToRGB(c.Y, c.Cb, c.Cr)
				got := cv.At(x, y)
				for i, w := range []byte{wr, wg, wb} {
					g := byte(got >> (8 * i))
					if d := int(g) - int(w); d > 1 || d < -1 {
						t.Fatalf("%v pixel %d,%d component %d = %d, want %d", ratio, x, y, i, g, w)
					}
				}
				if got>>24 != 0xff {
					t.Fatalf("alpha %d", got>>24)
				}
			}
		}
	}
}

func TestTightPNG(t *testing.T) {
	pic := tightNoisePic(37, 21, 3)
	rgba := tightRGBA(pic)
	nrgba := image.NewNRGBA(rgba.Rect)
	copy(nrgba.Pix, rgba.Pix)
	for i := 3; i < len(nrgba.Pix); i += 4 {
		nrgba.Pix[i] = 0x80 // any alpha is dropped
	}
	palPic := tightPalettePic(37, 21, 5, 4)
	paletted := image.NewPaletted(rgba.Rect, nil)
	idx := map[uint32]uint8{}
	for i, c := range palPic.pix {
		if _, ok := idx[c]; !ok {
			idx[c] = uint8(len(paletted.Palette))
			paletted.Palette = append(paletted.Palette, color.RGBA{byte(c), byte(c >> 8), byte(c >> 16), 255})
		}
		paletted.Pix[i] = idx[c]
	}
	gray16 := image.NewGray16(rgba.Rect)
	grayPic := tightNewPic(37, 21, func(x, y int) uint32 {
		v := uint32((x*7 + y) % 256)
		gray16.SetGray16(x, y, color.Gray16{uint16(v * 257)})
		return v * 0x010101
	})
	tests := []struct {
		name string
		img  image.Image
		want tightPic
	}{
		{"rgb", rgba, pic},
		{"rgba", nrgba, pic},
		{"paletted", paletted, palPic},
		{"gray16", gray16, grayPic},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := tightNewEnc(NativeFormat)
			e.image(0, tightNoZlib, tightEncodePNG(t, tc.img))
			r := framebuffer.Rect{X: 2, Y: 1, W: 37, H: 21}
			cv, err := tightDecodeAll(t, EncodingTightPNG, NativeFormat, e.out.Bytes(), 40, 22, []framebuffer.Rect{r})
			if err != nil {
				t.Fatal(err)
			}
			tightCheck(t, NativeFormat, cv, r, tc.want)
		})
	}
}

func TestTightErrors(t *testing.T) {
	pf := NativeFormat
	r := framebuffer.Rect{W: 8, H: 8}
	bigJPEG := tightEncodeJPEG(t, tightSmoothPic(9, 8), 80)
	smallPNG := tightEncodePNG(t, tightRGBA(tightSmoothPic(8, 7)))
	var hugePNG bytes.Buffer
	{
		// A PNG header claiming 60000×60000 pixels, with no data.
		m := tightEncodePNG(t, tightRGBA(tightSmoothPic(1, 1)))
		hugePNG.Write(m[:16])
		binary.Write(&hugePNG, binary.BigEndian, [2]uint32{60000, 60000})
		hugePNG.Write(m[24:])
	}
	e := tightNewEnc(pf)
	valid := e.deflate(0, e.copyData(tightNoisePic(8, 8, 1)))
	tests := []struct {
		name    string
		enc     Encoding
		pf      PixelFormat
		payload []byte
		want    string
	}{
		{"empty", EncodingTight, pf, nil, "EOF"},
		{"bad method", EncodingTight, pf, []byte{0xb0}, "invalid compression control"},
		{"bad method f", EncodingTight, pf, []byte{0xf0}, "invalid compression control"},
		{"png method in tight is nozlib", EncodingTight, pf, []byte{0xa0, 1, 2}, "EOF"},
		{"nozlib filter in tightpng", EncodingTightPNG, pf, []byte{0xe0}, "invalid compression control"},
		{"unknown filter", EncodingTight, pf, []byte{0x40, 3}, "unknown filter id 3"},
		{"fill truncated", EncodingTight, pf, []byte{0x80, 1, 2}, "EOF"},
		{"palette truncated", EncodingTight, pf, []byte{0x40, 1, 255, 1, 2, 3}, "EOF"},
		{"palette index", EncodingTight, pf, append([]byte{0x40, 1, 2, 1, 1, 1, 2, 2, 2, 3, 3, 3, 64}, valid...), "palette index"},
		{"gradient colour map", EncodingTight, PixelFormat{BitsPerPixel: 8, Depth: 8}, []byte{0x40, 2}, "colour-map"},
		{"compressed too long", EncodingTight, pf, append([]byte{0x00}, tightCompact(4194303)...), "exceeds limit"},
		{"zlib truncated", EncodingTight, pf, append(append([]byte{0x00}, tightCompact(len(valid)/2)...), valid[:len(valid)/2]...), "stream 0"},
		{"zlib garbage", EncodingTight, pf, append(append([]byte{0x00}, tightCompact(20)...), bytes.Repeat([]byte{0xff}, 20)...), "zlib"},
		{"zlib short", EncodingTight, pf, append(append([]byte{0x10}, tightCompact(len(valid))...), valid[:len(valid)/2]...), "EOF"},
		{"jpeg size", EncodingTight, pf, append(append([]byte{0x90}, tightCompact(len(bigJPEG))...), bigJPEG...), "jpeg is 9x8, rectangle is 8x8"},
		{"jpeg garbage", EncodingTight, pf, append([]byte{0x90, 10}, bytes.Repeat([]byte{1}, 10)...), "jpeg header"},
		{"jpeg too long", EncodingTight, pf, append([]byte{0x90}, tightCompact(4194303)...), "exceeds limit"},
		{"png size", EncodingTightPNG, pf, append(append([]byte{0xa0}, tightCompact(len(smallPNG))...), smallPNG...), "png is 8x7"},
		{"png huge", EncodingTightPNG, pf, append(append([]byte{0xa0}, tightCompact(hugePNG.Len())...), hugePNG.Bytes()...), "png"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tightDecodeAll(t, tc.enc, tc.pf, tc.payload, 8, 8, []framebuffer.Rect{r})
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "rfb: tight") && !strings.HasPrefix(err.Error(), "consumed") {
				t.Errorf("error %q lacks context", err)
			}
		})
	}
}

// TestTightBrokenStreamStays checks that once a stream failed it keeps
// failing rather than decoding garbage, until the server resets it.
func TestTightBrokenStreamStays(t *testing.T) {
	pf := NativeFormat
	pic := tightNoisePic(8, 8, 2)
	e := tightNewEnc(pf)
	z := e.deflate(0, e.copyData(pic))
	garbage := append(append([]byte{0x00}, tightCompact(20)...), bytes.Repeat([]byte{0xff}, 20)...)
	good := append(append([]byte{0x01}, tightCompact(len(z))...), z...)
	cv, _ := framebuffer.NewCanvas(8, 8)
	d := newDecodeContext(newReader(bytes.NewReader(append(append(garbage, garbage...), good...))), pf, nil, cv, &framebuffer.Batch{})
	dec, _ := d.decoder(EncodingTight)
	r := framebuffer.Rect{W: 8, H: 8}
	if err := dec.decode(d, r); err == nil {
		t.Fatal("garbage decoded")
	}
	if err := dec.decode(d, r); err == nil {
		t.Fatal("broken stream decoded again")
	}
	if err := dec.decode(d, r); err != nil {
		t.Fatalf("after reset: %v", err)
	}
	tightCheck(t, pf, cv, r, pic)
}

// tightFuzzFormats are the pixel formats fuzz inputs choose from.
var tightFuzzFormats = []PixelFormat{NativeFormat, tightBGRXBE, tightDepth32, Format16, tightFormat16BE, Format8, {BitsPerPixel: 8, Depth: 8}}

// tightFuzzDecode decodes data as a fuzz input: byte 0 picks the pixel
// format, bytes 1 and 2 the rectangle's size (1..64), and the rest is the
// payload of up to 8 rectangles of that size on one decoder.
func tightFuzzDecode(t *testing.T, enc Encoding, data []byte) {
	if len(data) < 3 {
		return
	}
	pf := tightFuzzFormats[int(data[0])%len(tightFuzzFormats)]
	r := framebuffer.Rect{X: int(data[0]>>4) % 4, Y: 1, W: int(data[1])%64 + 1, H: int(data[2])%64 + 1}
	cv, _ := framebuffer.NewCanvas(68, 66)
	d := newDecodeContext(newReader(bytes.NewReader(data[3:])), pf, []uint32{0xff0000ff, 0xff00ff00}, cv, &framebuffer.Batch{})
	dec, err := d.decoder(enc)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 8; i++ {
		if err := dec.decode(d, r); err != nil {
			break
		}
	}
	for i := 3; i < len(cv.Pix); i += 4 {
		if cv.Pix[i] != 0xff {
			t.Fatalf("canvas alpha %d at byte %d", cv.Pix[i], i)
		}
	}
}

// tightFuzzSeed is a valid input for tightFuzzDecode holding n rectangles.
type tightFuzzSeed struct {
	data []byte
	n    int
}

// tightFuzzSeeds returns small valid inputs, one method each, so that the
// fuzzer's mutations of most seeds stay cheap to run and to minimize.
func tightFuzzSeeds(t testing.TB, png bool) []tightFuzzSeed {
	var seeds []tightFuzzSeed
	const w, h = 9, 5
	add := func(pfIndex int, n int, write func(e *tightEnc)) {
		e := tightNewEnc(tightFuzzFormats[pfIndex])
		write(e)
		seeds = append(seeds, tightFuzzSeed{append([]byte{byte(pfIndex), w - 1, h - 1}, e.out.Bytes()...), n})
	}
	for pfi := range tightFuzzFormats[:5] {
		add(pfi, 1, func(e *tightEnc) { e.fill(0xf, 0x123456) })
	}
	add(0, 1, func(e *tightEnc) { e.image(0, tightJPEG, tightEncodeJPEG(t, tightSmoothPic(w, h), 50)) })
	if png {
		add(0, 1, func(e *tightEnc) {
			e.image(0, tightNoZlib, tightEncodePNG(t, tightRGBA(tightPalettePic(w, h, 3, 1))))
		})
		return seeds
	}
	for _, pfi := range []int{0, 3, 5} {
		add(pfi, 3, func(e *tightEnc) {
			pal, n, data := e.paletteData(tightPalettePic(w, h, 2, 1))
			e.basic(0x1, 0, tightFilterPalette, pal, n, data)
			pal, n, data = e.paletteData(tightPalettePic(w, h, 5, 1))
			e.basic(0x2, 1, tightFilterPalette, pal, n, data)
			pal, n, data = e.paletteData(tightPalettePic(w, h, 2, 2))
			e.basic(0, 0, tightFilterPalette, pal, n, data)
		})
		add(pfi, 2, func(e *tightEnc) {
			e.basic(0x4, 2, tightNoFilterByte, nil, 0, e.copyData(tightNoisePic(w, h, 2)))
			e.basic(0, -1, tightFilterCopy, nil, 0, e.copyData(tightNoisePic(w, h, 3)))
		})
	}
	for _, pfi := range []int{0, 3, 4} {
		add(pfi, 1, func(e *tightEnc) { e.basic(0x8, 3, tightFilterGradient, nil, 0, e.gradientData(tightSmoothPic(w, h))) })
	}
	return seeds
}

func FuzzTight(f *testing.F) {
	for _, s := range tightFuzzSeeds(f, false) {
		f.Add(s.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) { tightFuzzDecode(t, EncodingTight, data) })
}

// TestTightFuzzSeedsDecode makes sure the generated seeds are valid, so
// fuzzing starts from inputs that reach deep into the decoder.
func TestTightFuzzSeedsDecode(t *testing.T) {
	for _, png := range []bool{false, true} {
		enc := EncodingTight
		if png {
			enc = EncodingTightPNG
		}
		for _, s := range tightFuzzSeeds(t, png) {
			pf := tightFuzzFormats[s.data[0]]
			r := framebuffer.Rect{W: int(s.data[1]) + 1, H: int(s.data[2]) + 1}
			rs := make([]framebuffer.Rect, s.n)
			for i := range rs {
				rs[i] = r
			}
			if _, err := tightDecodeAll(t, enc, pf, s.data[3:], r.W, r.H, rs); err != nil {
				t.Errorf("%v seed for %v: %v", enc, pf, err)
			}
		}
	}
}
