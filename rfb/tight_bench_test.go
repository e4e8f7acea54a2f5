package rfb

import (
	"bytes"
	"math/rand"
	"testing"

	"kvmgate/framebuffer"
)

// Decoding benchmarks on a 1920×1080 frame sent as strips of 1920×32 pixels
// (under Tight's 64 Ki pixel rectangle size), as servers split a full
// update. Each op decodes the whole frame; Mpixel/s is the decode rate and
// the bytes/s figure is the wire rate it sustains.

const tightBenchW, tightBenchH, tightBenchStrip = 1920, 1080, 32

// tightBenchTextPic is a two-colour screen of glyph-like cells, like a
// terminal full of text.
func tightBenchTextPic() tightPic {
	rng := rand.New(rand.NewSource(1))
	glyphs := make([][16]byte, 96)
	for i := range glyphs {
		for r := 2; r < 14; r++ {
			a, b := rng.Intn(256), rng.Intn(256) // about a quarter of the bits set
			glyphs[i][r] = byte(a&b) & 0x7e
		}
	}
	cells := make([]int, (tightBenchW/8)*(tightBenchH/16+1))
	for i := range cells {
		cells[i] = rng.Intn(len(glyphs))
	}
	return tightNewPic(tightBenchW, tightBenchH, func(x, y int) uint32 {
		g := glyphs[cells[(y/16)*(tightBenchW/8)+x/8]]
		if g[y%16]&(0x80>>(x%8)) != 0 {
			return 0xd0d0d0
		}
		return 0x202020
	})
}

// tightBenchRun decodes payload, the frame as rects, b.N times with one
// decoder of encoding enc (or a fresh one per frame if fresh is set, for
// encodings whose streams cannot be reset by the server).
func tightBenchRun(b *testing.B, enc Encoding, pf PixelFormat, payload []byte, rects []framebuffer.Rect, fresh bool) {
	cv, _ := framebuffer.NewCanvas(tightBenchW, tightBenchH)
	br := bytes.NewReader(payload)
	d := newDecodeContext(newReader(br), pf, nil, cv, &framebuffer.Batch{})
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		br.Reset(payload)
		d.r.br.Reset(br)
		if fresh {
			clear(d.decoders)
		}
		dec, err := d.decoder(enc)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range rects {
			if err := dec.decode(d, r); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(tightBenchW*tightBenchH)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpixel/s")
}

// tightBenchFrame encodes pic strip by strip with write, which gets the
// strip's picture and whether it is the first strip.
func tightBenchFrame(pf PixelFormat, pic tightPic, write func(e *tightEnc, strip tightPic, first bool)) ([]byte, []framebuffer.Rect) {
	e := tightNewEnc(pf)
	var rects []framebuffer.Rect
	for y := 0; y < pic.h; y += tightBenchStrip {
		h := min(tightBenchStrip, pic.h-y)
		strip := tightPic{w: pic.w, h: h, pix: pic.pix[y*pic.w : (y+h)*pic.w]}
		write(e, strip, y == 0)
		rects = append(rects, framebuffer.Rect{X: 0, Y: y, W: pic.w, H: h})
	}
	return e.out.Bytes(), rects
}

func BenchmarkDecodeTightFill(b *testing.B) {
	// 64×64 solid tiles: a desktop background sent as fills.
	e := tightNewEnc(NativeFormat)
	var rects []framebuffer.Rect
	for y := 0; y < tightBenchH; y += 64 {
		for x := 0; x < tightBenchW; x += 64 {
			e.fill(0, uint32(x*7+y*13))
			rects = append(rects, framebuffer.Rect{X: x, Y: y, W: min(64, tightBenchW-x), H: min(64, tightBenchH-y)})
		}
	}
	tightBenchRun(b, EncodingTight, NativeFormat, e.out.Bytes(), rects, false)
}

func BenchmarkDecodeTightPaletteText(b *testing.B) {
	payload, rects := tightBenchFrame(NativeFormat, tightBenchTextPic(), func(e *tightEnc, s tightPic, first bool) {
		var reset byte
		if first {
			reset = 0x2
		}
		pal, n, data := e.paletteData(s)
		e.basic(reset, 1, tightFilterPalette, pal, n, data)
	})
	tightBenchRun(b, EncodingTight, NativeFormat, payload, rects, false)
}

func BenchmarkDecodeTightPalette16(b *testing.B) {
	// 16 colours, 8-bit indices: a UI with a few flat colours.
	payload, rects := tightBenchFrame(NativeFormat, tightPalettePic(tightBenchW, tightBenchH, 16, 1), func(e *tightEnc, s tightPic, first bool) {
		var reset byte
		if first {
			reset = 0x4
		}
		pal, n, data := e.paletteData(s)
		e.basic(reset, 2, tightFilterPalette, pal, n, data)
	})
	tightBenchRun(b, EncodingTight, NativeFormat, payload, rects, false)
}

func BenchmarkDecodeTightGradient(b *testing.B) {
	payload, rects := tightBenchFrame(NativeFormat, tightSmoothPic(tightBenchW, tightBenchH), func(e *tightEnc, s tightPic, first bool) {
		var reset byte
		if first {
			reset = 0x8
		}
		e.basic(reset, 3, tightFilterGradient, nil, 0, e.gradientData(s))
	})
	tightBenchRun(b, EncodingTight, NativeFormat, payload, rects, false)
}

func BenchmarkDecodeTightGradient16(b *testing.B) {
	payload, rects := tightBenchFrame(Format16, tightSmoothPic(tightBenchW, tightBenchH), func(e *tightEnc, s tightPic, first bool) {
		var reset byte
		if first {
			reset = 0x8
		}
		e.basic(reset, 3, tightFilterGradient, nil, 0, e.gradientData(s))
	})
	tightBenchRun(b, EncodingTight, Format16, payload, rects, false)
}

func BenchmarkDecodeTightCopy(b *testing.B) {
	payload, rects := tightBenchFrame(NativeFormat, tightSmoothPic(tightBenchW, tightBenchH), func(e *tightEnc, s tightPic, first bool) {
		var reset byte
		if first {
			reset = 0x1
		}
		e.basic(reset, 0, tightNoFilterByte, nil, 0, e.copyData(s))
	})
	tightBenchRun(b, EncodingTight, NativeFormat, payload, rects, false)
}

func BenchmarkDecodeTightJPEG(b *testing.B) {
	payload, rects := tightBenchFrame(NativeFormat, tightSmoothPic(tightBenchW, tightBenchH), func(e *tightEnc, s tightPic, first bool) {
		e.image(0, tightJPEG, tightEncodeJPEG(b, s, 80))
	})
	tightBenchRun(b, EncodingTight, NativeFormat, payload, rects, false)
}

func BenchmarkDecodeTightPNG(b *testing.B) {
	payload, rects := tightBenchFrame(NativeFormat, tightBenchTextPic(), func(e *tightEnc, s tightPic, first bool) {
		e.image(0, tightNoZlib, tightEncodePNG(b, tightRGBA(s)))
	})
	tightBenchRun(b, EncodingTightPNG, NativeFormat, payload, rects, false)
}

func BenchmarkDecodeZlib(b *testing.B) {
	pic := tightBenchTextPic()
	var strips []tightPic
	var rects []framebuffer.Rect
	for y := 0; y < pic.h; y += tightBenchStrip {
		h := min(tightBenchStrip, pic.h-y)
		strips = append(strips, tightPic{w: pic.w, h: h, pix: pic.pix[y*pic.w : (y+h)*pic.w]})
		rects = append(rects, framebuffer.Rect{X: 0, Y: y, W: pic.w, H: h})
	}
	tightBenchRun(b, EncodingZlib, NativeFormat, zlibEncRects(NativeFormat, strips), rects, true)
}
