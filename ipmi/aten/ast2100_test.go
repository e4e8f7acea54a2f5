package aten

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kvmgate/framebuffer"
)

// bitWriter collects bits most significant first and packs them the way the
// AST2100 stream stores them: 32-bit words written little-endian.
type bitWriter struct {
	bits []uint8
}

func (w *bitWriter) put(v uint32, n int) {
	for i := n - 1; i >= 0; i-- {
		w.bits = append(w.bits, uint8(v>>i&1))
	}
}

func (w *bitWriter) bytes() []byte {
	n := (len(w.bits) + 31) / 32
	out := make([]byte, 4*n)
	for i := 0; i < n; i++ {
		var word uint32
		for j := 0; j < 32; j++ {
			word <<= 1
			if k := 32*i + j; k < len(w.bits) {
				word |= uint32(w.bits[k])
			}
		}
		binary.LittleEndian.PutUint32(out[4*i:], word)
	}
	return out
}

// huffCode is one code of an encoder-side Huffman table.
type huffCode struct {
	code uint32
	n    int
}

// canonicalCodes assigns the T.81 Annex C codes to the symbols of a table.
func canonicalCodes(bits *[17]uint8, vals []uint8) map[uint8]huffCode {
	m := map[uint8]huffCode{}
	code, k := uint32(0), 0
	for l := 1; l <= 16; l++ {
		for i := 0; i < int(bits[l]); i++ {
			m[vals[k]] = huffCode{code, l}
			code++
			k++
		}
		code <<= 1
	}
	return m
}

var (
	encDC = [2]map[uint8]huffCode{canonicalCodes(&dcLumaBits, dcLumaVals), canonicalCodes(&dcChromaBits, dcChromaVals)}
	encAC = [2]map[uint8]huffCode{canonicalCodes(&acLumaBits, acLumaVals), canonicalCodes(&acChromaBits, acChromaVals)}
)

// frameBuilder writes AST2100 frames for tests.
type frameBuilder struct {
	w        bitWriter
	sel, adv uint8
	sub      Subsampling
	dc       [3]int // DC predictors of Y, Cb, Cr
}

func newFrame(sel, adv uint8, sub Subsampling) *frameBuilder {
	return &frameBuilder{sel: sel, adv: adv, sub: sub}
}

// code starts a block at the next MCU.
func (f *frameBuilder) code(c uint32) { f.w.put(c, 4) }

// jump starts a block with a position (code must have bit 3 set).
func (f *frameBuilder) jump(c uint32, x, y int) {
	f.w.put(c, 4)
	f.w.put(uint32(x), 8)
	f.w.put(uint32(y), 8)
}

// magnitude returns the JPEG size category and bits of v.
func magnitude(v int) (uint32, int) {
	if v == 0 {
		return 0, 0
	}
	a := v
	if a < 0 {
		a = -a
	}
	n := 0
	for a>>n != 0 {
		n++
	}
	if v < 0 {
		return uint32(v + 1<<n - 1), n
	}
	return uint32(v), n
}

// flat writes a data unit of component comp (0 Y, 1 Cb, 2 Cr) whose only
// coefficient is DC dc.
func (f *frameBuilder) flat(comp, dc int) {
	t := min(comp, 1)
	diff := dc - f.dc[comp]
	f.dc[comp] = dc
	bits, n := magnitude(diff)
	c := encDC[t][uint8(n)]
	f.w.put(c.code, c.n)
	f.w.put(bits, n)
	eob := encAC[t][0x00]
	f.w.put(eob.code, eob.n)
}

// vqColour names one colour of a VQ block: a codebook slot, with a new
// Y/Cb/Cr value when set is true.
func (f *frameBuilder) vqColour(slot int, set bool, ycc uint32) {
	if set {
		f.w.put(1, 1)
		f.w.put(uint32(slot), 2)
		f.w.put(ycc, 24)
		return
	}
	f.w.put(0, 1)
	f.w.put(uint32(slot), 2)
}

// finish appends the end code and returns the header and stream.
func (f *frameBuilder) finish() []byte {
	f.code(codeFrameEnd)
	hdr := []byte{f.sel, f.adv, byte(f.sub >> 8), byte(f.sub)}
	return append(hdr, f.w.bytes()...)
}

// ycc2rgb is the colour conversion written out independently of the
// decoder's tables: each term rounded half up on its own, then clamped.
func ycc2rgb(y, cb, cr uint8) [3]uint8 {
	round := func(v float64) int { return int(math.Floor(v + 0.5)) }
	yy := round(1.164 * float64(int(y)-16))
	b, r := float64(int(cb)-128), float64(int(cr)-128)
	clamp := func(v int) uint8 { return uint8(min(max(v, 0), 255)) }
	return [3]uint8{
		clamp(yy + round(1.597656*r)),
		clamp(yy + round(-0.390625*b) + round(-0.8125*r)),
		clamp(yy + round(2.015625*b)),
	}
}

// sample returns the pixel a flat data unit with DC dc decodes to under a
// quantisation table whose first entry is q0: the AAN DC scale is 1, so the
// sample is 128 + dc·q0/8 (the tests pick dc so that this is whole).
func sample(dc, q0 int) uint8 { return uint8(min(max(128+dc*q0/8, 0), 255)) }

// want is the expected picture: a canvas painted by the test's own model.
type want struct{ c *framebuffer.Canvas }

func newWant(w, h int) want {
	c, _ := framebuffer.NewCanvas(w, h)
	return want{c}
}

func (m want) set(x, y int, rgb [3]uint8) {
	if x < m.c.W && y < m.c.H {
		copy(m.c.Pix[y*m.c.Stride+x*4:], rgb[:])
	}
}

func (m want) block(x0, y0, size int, rgb [3]uint8) {
	for y := y0; y < y0+size; y++ {
		for x := x0; x < x0+size; x++ {
			m.set(x, y, rgb)
		}
	}
}

// checkCanvas fails the test at the first pixel where got and want differ.
func checkCanvas(t *testing.T, got *framebuffer.Canvas, w want) {
	t.Helper()
	for y := 0; y < got.H; y++ {
		for x := 0; x < got.W; x++ {
			if g, e := got.At(x, y), w.c.At(x, y); g != e {
				t.Fatalf("pixel %d,%d = %08x, want %08x", x, y, g, e)
			}
		}
	}
}

// dcFor returns the DC coefficient that makes a flat block decode to s with
// a table whose first entry is q0 (s−128 must be a multiple of q0/gcd(q0,8)).
func dcFor(s, q0 int) int { return (s - 128) * 8 / q0 }

func TestAST2100DCOnly444(t *testing.T) {
	// 20×12 pixels: 3×2 MCUs of 8×8, the last column and row cut short.
	const w, h = 20, 12
	q0 := int(astLumaQuant[11][0]) // 1: every DC value is a whole sample
	if q0 != 1 || astChromaQuant[11][0] != 1 {
		t.Fatalf("selector 11 tables start with %d/%d, want 1/1", q0, astChromaQuant[11][0])
	}
	colours := [][3]uint8{{235, 128, 128}, {16, 128, 128}, {81, 90, 240}, {145, 54, 34}, {41, 240, 110}, {170, 166, 16}}
	f := newFrame(11, 0, Subsampling444)
	m := newWant(w, h)
	for i, ycc := range colours {
		f.code(codeJPEG)
		for comp := 0; comp < 3; comp++ {
			f.flat(comp, dcFor(int(ycc[comp]), 1))
		}
		m.block(i%3*8, i/3*8, 8, ycc2rgb(ycc[0], ycc[1], ycc[2]))
	}
	c, _ := framebuffer.NewCanvas(w, h)
	var d AST2100Decoder
	var b framebuffer.Batch
	if err := d.Decode(c, f.finish(), &b); err != nil {
		t.Fatal(err)
	}
	checkCanvas(t, c, m)
	if b.Len() != 1 {
		t.Errorf("damage has %d rectangles, want the whole frame as 1", b.Len())
	}
}

func TestAST2100DCOnly420(t *testing.T) {
	// 40×24: 3×2 MCUs of 16×16; the third column has 8 pixels, the second
	// row 8 lines. Each MCU has four different Y blocks and its own chroma.
	const w, h = 40, 24
	f := newFrame(11, 11, Subsampling420)
	m := newWant(w, h)
	for mcu := 0; mcu < 6; mcu++ {
		mx, my := mcu%3*16, mcu/3*16
		cb, cr := uint8(60+mcu*30), uint8(200-mcu*25)
		f.code(codeJPEG)
		var ys [4]uint8
		for i := range ys {
			ys[i] = uint8(20 + mcu*35 + i*9)
			f.flat(0, dcFor(int(ys[i]), 1))
		}
		f.flat(1, dcFor(int(cb), 1))
		f.flat(2, dcFor(int(cr), 1))
		for i, y := range ys {
			m.block(mx+i%2*8, my+i/2*8, 8, ycc2rgb(y, cb, cr))
		}
	}
	c, _ := framebuffer.NewCanvas(w, h)
	var d AST2100Decoder
	if err := d.Decode(c, f.finish(), nil); err != nil {
		t.Fatal(err)
	}
	checkCanvas(t, c, m)
}

func TestAST2100LowQualityUsesAdvanceTables(t *testing.T) {
	// Code 4 decodes with the advance selector's tables: selector 0 has
	// luma DC quantiser 20 and chroma 31, so DC 2 → 128+5, DC 8 → 128+31.
	if astLumaQuant[0][0] != 20 || astChromaQuant[0][0] != 31 {
		t.Fatalf("selector 0 tables start with %d/%d, want 20/31", astLumaQuant[0][0], astChromaQuant[0][0])
	}
	f := newFrame(11, 0, Subsampling444)
	f.code(codeLowJPEG)
	f.flat(0, 2)
	f.flat(1, 8)
	f.flat(2, -8)
	f.code(codeJPEG) // the same DCs through selector 11: 128+0 (2·1/8 = 0), 129, 127
	f.flat(0, 2)
	f.flat(1, 8)
	f.flat(2, -8)
	m := newWant(16, 8)
	m.block(0, 0, 8, ycc2rgb(sample(2, 20), sample(8, 31), sample(-8, 31)))
	m.block(8, 0, 8, ycc2rgb(sample(2, 1), sample(8, 1), sample(-8, 1)))
	c, _ := framebuffer.NewCanvas(16, 8)
	var d AST2100Decoder
	if err := d.Decode(c, f.finish(), nil); err != nil {
		t.Fatal(err)
	}
	checkCanvas(t, c, m)
}

func TestAST2100VQ(t *testing.T) {
	// 24×16 in 4:4:4, six VQ blocks exercising 1, 2 and 4 colours, codebook
	// updates, slots reused within the frame and a position jump.
	const w, h = 24, 16
	red, blue := uint32(81)<<16|90<<8|240, uint32(41)<<16|240<<8|110
	rgb := func(c uint32) [3]uint8 { return ycc2rgb(uint8(c>>16), uint8(c>>8), uint8(c)) }
	white, grey, lgrey := uint32(0xff8080), uint32(0x808080), uint32(0xc08080)

	f := newFrame(5, 5, Subsampling444)
	m := newWant(w, h)
	// MCU 0,0: one colour, slot 0 set to red.
	f.code(codeVQ1)
	f.vqColour(0, true, red)
	m.block(0, 0, 8, rgb(red))
	// MCU 1,0: two colours from the initial codebook (white, light grey),
	// a checkerboard.
	f.code(codeVQ2)
	f.vqColour(1, false, 0)
	f.vqColour(3, false, 0)
	for i := 0; i < 64; i++ {
		bit := uint32((i/8 + i%8) & 1)
		f.w.put(bit, 1)
		m.set(8+i%8, i/8, rgb([]uint32{white, lgrey}[bit]))
	}
	// MCU 2,0: four colours, slot 2 set to blue; slot 0 is still red from
	// the first block. Index i%4 per pixel.
	f.code(codeVQ4)
	f.vqColour(0, false, 0)
	f.vqColour(1, false, 0)
	f.vqColour(2, true, blue)
	f.vqColour(3, false, 0)
	for i := 0; i < 64; i++ {
		f.w.put(uint32(i%4), 2)
		m.set(16+i%8, i/8, rgb([]uint32{red, white, blue, lgrey}[i%4]))
	}
	// Jump to MCU 2,1 with a one-colour block of slot 2 (still blue), then
	// jump back to MCU 0,1 and set slot 3 to grey.
	f.jump(codeVQ1|codeJumpFlag, 2, 1)
	f.vqColour(2, false, 0)
	m.block(16, 8, 8, rgb(blue))
	f.jump(codeVQ1|codeJumpFlag, 0, 1)
	f.vqColour(3, true, grey)
	m.block(0, 8, 8, rgb(grey))
	// MCU 1,1 (next after the jump): slot 3 is grey now.
	f.code(codeVQ1)
	f.vqColour(3, false, 0)
	m.block(8, 8, 8, rgb(grey))

	c, _ := framebuffer.NewCanvas(w, h)
	var d AST2100Decoder
	if err := d.Decode(c, f.finish(), nil); err != nil {
		t.Fatal(err)
	}
	checkCanvas(t, c, m)
}

// vqFrame returns a 4:4:4 frame whose blocks are one-colour VQ blocks at
// the given MCUs, each setting slot 0 to its colour.
func vqFrame(blocks map[[2]int]uint32) []byte {
	f := newFrame(5, 5, Subsampling444)
	for pos, c := range blocks {
		f.jump(codeVQ1|codeJumpFlag, pos[0], pos[1])
		f.vqColour(0, true, c)
	}
	return f.finish()
}

func TestAST2100Incremental(t *testing.T) {
	const w, h = 32, 24 // 4×3 MCUs
	c, _ := framebuffer.NewCanvas(w, h)
	var d AST2100Decoder
	m := newWant(w, h)

	// Frame 1 paints every MCU a different grey.
	f := newFrame(5, 5, Subsampling444)
	for i := 0; i < 12; i++ {
		f.code(codeVQ1)
		y := uint32(30 + i*15)
		f.vqColour(i%4, true, y<<16|0x8080)
		m.block(i%4*8, i/4*8, 8, ycc2rgb(uint8(y), 128, 128))
	}
	if err := d.Decode(c, f.finish(), nil); err != nil {
		t.Fatal(err)
	}
	checkCanvas(t, c, m)

	// Frame 2 changes MCUs 1,1 and 3,2 only; the rest keeps frame 1.
	red := uint32(81)<<16 | 90<<8 | 240
	var b framebuffer.Batch
	if err := d.Decode(c, vqFrame(map[[2]int]uint32{{1, 1}: red}), &b); err != nil {
		t.Fatal(err)
	}
	m.block(8, 8, 8, ycc2rgb(81, 90, 240))
	checkCanvas(t, c, m)
	if b.Len() != 1 {
		t.Fatalf("damage has %d rectangles, want 1", b.Len())
	}

	// Frame 3: a JPEG block by position jump (DC predictors start again at
	// zero in each frame), then the next MCU in sequence.
	f = newFrame(11, 11, Subsampling444)
	f.jump(codeJPEG|codeJumpFlag, 3, 2)
	f.flat(0, dcFor(200, 1))
	f.flat(1, dcFor(128, 1))
	f.flat(2, dcFor(128, 1))
	m.block(24, 16, 8, ycc2rgb(200, 128, 128))
	f.code(codeJPEG) // wraps to MCU 0,0
	f.flat(0, dcFor(100, 1))
	f.flat(1, dcFor(128, 1))
	f.flat(2, dcFor(128, 1))
	m.block(0, 0, 8, ycc2rgb(100, 128, 128))
	if err := d.Decode(c, f.finish(), nil); err != nil {
		t.Fatal(err)
	}
	checkCanvas(t, c, m)
}

func TestAST2100Pass2(t *testing.T) {
	// A pass-2 block adds its samples less 128 (advance tables) to the
	// Y/Cb/Cr the MCU had, modulo 256.
	const w, h = 16, 8
	c, _ := framebuffer.NewCanvas(w, h)
	var d AST2100Decoder
	f := newFrame(11, 11, Subsampling444)
	f.code(codeVQ1)
	f.vqColour(0, true, 100<<16|120<<8|140)
	f.code(codeVQ1)
	f.vqColour(1, true, 250<<16|128<<8|128)
	if err := d.Decode(c, f.finish(), nil); err != nil {
		t.Fatal(err)
	}
	f = newFrame(11, 11, Subsampling444)
	f.code(codePass2)
	f.flat(0, dcFor(128+20, 1))
	f.flat(1, dcFor(128-10, 1))
	f.flat(2, dcFor(128+5, 1))
	f.jump(codePass2|codeJumpFlag, 1, 0)
	f.flat(0, dcFor(128+10, 1)) // 250+10 wraps to 4
	f.flat(1, dcFor(128, 1))
	f.flat(2, dcFor(128, 1))
	var b framebuffer.Batch
	if err := d.Decode(c, f.finish(), &b); err != nil {
		t.Fatal(err)
	}
	m := newWant(w, h)
	m.block(0, 0, 8, ycc2rgb(120, 110, 145))
	m.block(8, 0, 8, ycc2rgb(4, 128, 128))
	checkCanvas(t, c, m)
	if b.Len() != 1 {
		t.Errorf("damage has %d rectangles, want 1", b.Len())
	}
}

func TestAST2100CodebookAcrossFrames(t *testing.T) {
	// Frame 1 sets slot 0 to red; frame 2 uses slot 0 without setting it.
	red := uint32(81)<<16 | 90<<8 | 240
	frame1 := newFrame(5, 5, Subsampling444)
	frame1.code(codeVQ1)
	frame1.vqColour(0, true, red)
	frame2 := newFrame(5, 5, Subsampling444)
	frame2.code(codeVQ1)
	frame2.vqColour(0, false, 0)
	f1, f2 := frame1.finish(), frame2.finish()
	for _, tc := range []struct {
		persist bool
		want    [3]uint8
	}{
		{false, ycc2rgb(0, 128, 128)}, // reset: slot 0 is black again
		{true, ycc2rgb(81, 90, 240)},
	} {
		c, _ := framebuffer.NewCanvas(8, 8)
		d := AST2100Decoder{PersistCodebook: tc.persist}
		if err := d.Decode(c, f1, nil); err != nil {
			t.Fatal(err)
		}
		if err := d.Decode(c, f2, nil); err != nil {
			t.Fatal(err)
		}
		m := newWant(8, 8)
		m.block(0, 0, 8, tc.want)
		checkCanvas(t, c, m)
	}
}

func TestAST2100JumpOutsideFrameIsClipped(t *testing.T) {
	c, _ := framebuffer.NewCanvas(16, 16)
	var d AST2100Decoder
	var b framebuffer.Batch
	if err := d.Decode(c, vqFrame(map[[2]int]uint32{{200, 3}: 0xff8080}), &b); err != nil {
		t.Fatal(err)
	}
	checkCanvas(t, c, newWant(16, 16))
	if b.Len() != 0 {
		t.Errorf("damage has %d rectangles for a block outside the frame", b.Len())
	}
}

func TestAST2100Errors(t *testing.T) {
	good := vqFrame(map[[2]int]uint32{{0, 0}: 0xff8080})
	noEnd := good[:len(good)-4] // the end code sits in the last word
	var unknown = func(code uint32) []byte {
		f := newFrame(5, 5, Subsampling444)
		f.code(code)
		return f.finish()
	}
	vq420 := newFrame(5, 5, Subsampling420)
	vq420.code(codeVQ1)
	vq420.vqColour(0, false, 0)
	badHuff := newFrame(5, 5, Subsampling444)
	badHuff.code(codeJPEG)
	badHuff.w.put(0xffff, 16) // no luma DC code is all ones
	for _, tc := range []struct {
		name string
		w, h int
		data []byte
		want string
	}{
		{"short header", 8, 8, []byte{5, 5, 1}, "header"},
		{"selector", 8, 8, append([]byte{12, 5}, good[2:]...), "selectors"},
		{"advance selector", 8, 8, append([]byte{5, 200}, good[2:]...), "selectors"},
		{"subsampling", 8, 8, append([]byte{5, 5, 1, 0xa7}, good[4:]...), "subsampling"},
		{"no end code", 8, 8, noEnd, "end-of-frame"},
		{"header only", 8, 8, good[:4], "end-of-frame"},
		{"code 1", 8, 8, unknown(1), "unknown block code"},
		{"code 3", 8, 8, unknown(3), "unknown block code"},
		{"code 11", 8, 8, unknown(11), "unknown block code"},
		{"VQ in 4:2:0", 16, 16, vq420.finish(), "VQ block"},
		{"bad Huffman code", 8, 8, badHuff.finish(), "Huffman"},
		{"too wide", AST2100MaxWidth + 1, 8, good, "frame size"},
		{"too tall", 8, AST2100MaxHeight + 1, good, "frame size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := framebuffer.NewCanvas(tc.w, tc.h)
			if err != nil {
				t.Fatal(err)
			}
			var d AST2100Decoder
			err = d.Decode(c, tc.data, nil)
			var fe FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("Decode = %v, want a FormatError", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Decode = %q, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestAST2100ZeroCanvas(t *testing.T) {
	var d AST2100Decoder
	good := vqFrame(map[[2]int]uint32{{0, 0}: 0xff8080})
	if err := d.Decode(&framebuffer.Canvas{}, good, nil); err == nil {
		t.Fatal("Decode into a 0×0 canvas succeeded")
	}
}

func TestParseAST2100Header(t *testing.T) {
	h, err := ParseAST2100Header([]byte{5, 4, 0x01, 0xbc})
	if err != nil {
		t.Fatal(err)
	}
	if h != (AST2100Header{Selector: 5, AdvanceSelector: 4, Subsampling: Subsampling444}) {
		t.Fatalf("got %+v", h)
	}
	if s := h.Subsampling.String(); s != "4:4:4" {
		t.Errorf("String = %q", s)
	}
}

// TestGeneratedTablesMatchJSON checks ast2100_tables.go against the shared
// quant-tables.json it was generated from (go generate rewrites it).
func TestGeneratedTablesMatchJSON(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(sharedAST2100, "quant-tables.json"))
	if err != nil {
		t.Fatalf("quant-tables.json missing (shared data expected at %s): %v", sharedAST2100, err)
	}
	var q struct{ Luma, Chroma [][]int }
	if err := json.Unmarshal(raw, &q); err != nil {
		t.Fatal(err)
	}
	if len(q.Luma) != 12 || len(q.Chroma) != 12 {
		t.Fatalf("JSON has %d/%d tables", len(q.Luma), len(q.Chroma))
	}
	for s := 0; s < 12; s++ {
		for i := 0; i < 64; i++ {
			if int(astLumaQuant[s][i]) != q.Luma[s][i] || int(astChromaQuant[s][i]) != q.Chroma[s][i] {
				t.Fatalf("selector %d entry %d: Go %d/%d, JSON %d/%d; run go generate", s, i,
					astLumaQuant[s][i], astChromaQuant[s][i], q.Luma[s][i], q.Chroma[s][i])
			}
		}
	}
}

func TestHuffmanTablesDecodeEveryCode(t *testing.T) {
	tables := []struct {
		dec  *huffTable
		bits *[17]uint8
		vals []uint8
	}{
		{&huffDCLuma, &dcLumaBits, dcLumaVals},
		{&huffDCChroma, &dcChromaBits, dcChromaVals},
		{&huffACLuma, &acLumaBits, acLumaVals},
		{&huffACChroma, &acChromaBits, acChromaVals},
	}
	for ti, tc := range tables {
		for sym, code := range canonicalCodes(tc.bits, tc.vals) {
			var w bitWriter
			w.put(code.code, code.n)
			w.put(0x5a5a5a5a, 32) // what follows must stay unread
			var r bitReader
			r.reset(w.bytes())
			got, err := tc.dec.decode(&r)
			if err != nil || got != sym || r.consumed != code.n {
				t.Fatalf("table %d symbol %#x (code %0*b): got %#x after %d bits, %v", ti, sym, code.n, code.code, got, r.consumed, err)
			}
		}
	}
}
