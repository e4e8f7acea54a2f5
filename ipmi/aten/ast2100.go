package aten

//go:generate go run gen_tables.go -in ../../../shared/data/ast2100/quant-tables.json -out ast2100_tables.go

import (
	"encoding/binary"
	"fmt"

	"kvmgate/framebuffer"
)

// The AST2100 bitstream, as the ASPEED video engine writes it and as ATEN
// forwards it in an encoding 0x57 rectangle:
//
//	byte 0      JPEG table selector (0..11)
//	byte 1      advance table selector (0..11), for low-quality and pass-2 blocks
//	bytes 2..3  subsampling, big-endian: 0x01a6 (422, meaning 4:2:0) or 0x01bc (444)
//	bytes 4..   the block stream, in little-endian 32-bit words; bits are read
//	            from the most significant bit of each word down
//
// The block stream is a sequence of blocks, each starting with a 4-bit code.
// Codes with bit 3 set (except 9 and 11) are followed by an 8-bit MCU column
// and an 8-bit MCU row that move the write position; the others use the MCU
// after the previous block (row-major, wrapping to the top):
//
//	0, 8      JPEG MCU with the selector's tables: Y (four Y blocks in 4:2:0),
//	          Cb, Cr; standard Huffman coding, DC predicted across the frame
//	4, 12     the same with the advance selector's tables ("low quality")
//	2, 10     pass 2: a 4:4:4 JPEG MCU with the advance tables whose samples,
//	          minus 128, are added to the Y/Cb/Cr kept from the previous pass
//	5, 13     VQ, one colour: the whole 8×8 block in one codebook colour
//	6, 14     VQ, two colours: then 64 one-bit indices
//	7, 15     VQ, four colours: then 64 two-bit indices
//	9         end of frame
//
// A VQ block first names its colours: per colour a 1-bit "new colour" flag, a
// 2-bit codebook slot and, when the flag is set, the slot's new 24-bit
// Y/Cb/Cr value. The codebook starts as black, white and two greys.
//
// Where the public decoders differ, this one follows ASPEED's reference
// decoder (aspeed_codec src/decoder.c): the header's first byte selects both
// the luma and the chroma table (kelleyk's noVNC reads it as luma and the
// second byte as chroma; frames seen so far carry the same value in both);
// the VQ codebook is reset at each frame start unless PersistCodebook is
// set; pass-2 blocks in 4:2:0 are parsed and ignored, as there. The 4-byte
// header is not part of the block stream (noVNC skips it too): the reference
// picture of shared/data/ast2100/frame4.hex was made by feeding it to the
// reference decoder as stream bits, which shifts and tints that picture;
// frame4_test.go reproduces it exactly that way.

// AST2100 frame limits. MCU positions are 8-bit, so 256 MCUs of 16 pixels is
// the largest frame the stream can address.
const (
	AST2100MaxWidth  = 4096
	AST2100MaxHeight = 4096
)

// Subsampling is the chroma layout an AST2100 frame header announces.
type Subsampling uint16

// The two subsampling values ATEN sends. ATEN calls 4:2:0 "422".
const (
	Subsampling420 Subsampling = 0x01a6 // 422 decimal: 16×16 MCUs, chroma halved both ways
	Subsampling444 Subsampling = 0x01bc // 444 decimal: 8×8 MCUs, full chroma
)

func (s Subsampling) String() string {
	switch s {
	case Subsampling420:
		return "4:2:0"
	case Subsampling444:
		return "4:4:4"
	}
	return fmt.Sprintf("Subsampling(%#04x)", uint16(s))
}

// AST2100Header is the 4-byte header in front of an AST2100 block stream.
type AST2100Header struct {
	// Selector picks the luma and chroma quantisation tables (0..11, higher
	// is finer) for ordinary JPEG blocks.
	Selector uint8
	// AdvanceSelector picks the tables of low-quality and pass-2 blocks.
	AdvanceSelector uint8
	// Subsampling is Subsampling420 or Subsampling444.
	Subsampling Subsampling
}

// ParseAST2100Header reads and checks the header at the start of data.
func ParseAST2100Header(data []byte) (AST2100Header, error) {
	if len(data) < 4 {
		return AST2100Header{}, FormatError(fmt.Sprintf("ast2100: %d bytes, shorter than the 4-byte header", len(data)))
	}
	h := AST2100Header{
		Selector:        data[0],
		AdvanceSelector: data[1],
		Subsampling:     Subsampling(binary.BigEndian.Uint16(data[2:4])),
	}
	if h.Selector >= uint8(len(astLumaQuant)) || h.AdvanceSelector >= uint8(len(astLumaQuant)) {
		return h, FormatError(fmt.Sprintf("ast2100: quantisation selectors %d/%d out of range 0..%d", h.Selector, h.AdvanceSelector, len(astLumaQuant)-1))
	}
	if h.Subsampling != Subsampling420 && h.Subsampling != Subsampling444 {
		return h, FormatError(fmt.Sprintf("ast2100: unknown subsampling %#04x", uint16(h.Subsampling)))
	}
	return h, nil
}

// Block codes (the 4-bit header of each block).
const (
	codeJPEG     = 0x0
	codePass2    = 0x2
	codeLowJPEG  = 0x4
	codeVQ1      = 0x5
	codeVQ2      = 0x6
	codeVQ4      = 0x7
	codeFrameEnd = 0x9
	codeJumpFlag = 0x8 // set in the codes that carry an MCU position
)

// AST2100Decoder decodes AST2100 frames into a canvas. ATEN sends a full
// frame first and then incremental frames that only carry changed MCUs, so
// one decoder must see every frame of a connection in order: it keeps the
// Y/Cb/Cr of the last pass (for pass-2 refinement) and, if asked, the VQ
// codebook. The zero value is ready to use. It is not safe for concurrent
// use; the connection's reader goroutine owns it.
type AST2100Decoder struct {
	// PersistCodebook keeps the VQ codebook from one frame to the next
	// instead of resetting it to its initial colours at each frame start.
	PersistCodebook bool

	w, h     int
	yuv      []byte    // w×h Y,Cb,Cr triples kept for pass 2 (4:4:4 only), allocated on first use
	codebook [4]uint32 // VQ colours as Y<<16 | Cb<<8 | Cr
	started  bool      // codebook initialised

	br    bitReader
	quant [4]*[64]int64 // Y, C for the selector; Y, C for the advance selector
	dc    [3]int16      // DC predictors of Y, Cb, Cr
	coef  [64]int16
	blk   [6][64]uint8 // decoded samples: Y0..Y3 (4:2:0) or Y, Cb, Cr (4:4:4), then Cb, Cr
	runs  damageRuns
}

// Reset forgets all state carried between frames, as after a reconnect.
func (d *AST2100Decoder) Reset() {
	d.w, d.h = 0, 0
	d.yuv = nil
	d.started = false
}

// Decode decodes one AST2100 frame (the header and its block stream) into
// dst, whose size is the frame's size. Blocks the frame does not carry keep
// their pixels. Repainted areas are recorded in damage when it is not nil,
// also when decoding stops at an error part-way through the frame.
func (d *AST2100Decoder) Decode(dst *framebuffer.Canvas, data []byte, damage *framebuffer.Batch) error {
	hdr, err := ParseAST2100Header(data)
	if err != nil {
		return err
	}
	w, h := dst.W, dst.H
	if w <= 0 || h <= 0 || w > AST2100MaxWidth || h > AST2100MaxHeight || len(dst.Pix) < dst.Stride*h || dst.Stride < w*framebuffer.BytesPerPixel {
		return FormatError(fmt.Sprintf("ast2100: frame size %dx%d out of range (1..%d x 1..%d)", w, h, AST2100MaxWidth, AST2100MaxHeight))
	}
	if w != d.w || h != d.h {
		d.w, d.h = w, h
		d.yuv = nil
	}
	if !d.started || !d.PersistCodebook {
		d.codebook = [4]uint32{0x008080, 0xff8080, 0x808080, 0xc08080}
		d.started = true
	}
	d.quant = [4]*[64]int64{
		&scaledLumaQuant[hdr.Selector], &scaledChromaQuant[hdr.Selector],
		&scaledLumaQuant[hdr.AdvanceSelector], &scaledChromaQuant[hdr.AdvanceSelector],
	}
	d.dc = [3]int16{}
	mode420 := hdr.Subsampling == Subsampling420
	if !mode420 && d.yuv == nil {
		d.yuv = make([]byte, 3*w*h)
	}
	mcu := 8
	if mode420 {
		mcu = 16
	}
	mbw, mbh := (w+mcu-1)/mcu, (h+mcu-1)/mcu

	d.runs.start(damage)
	defer d.runs.finish()
	d.br.reset(data[4:])
	mbx, mby := 0, 0
	for n := 0; ; n++ {
		if d.br.overrun() {
			return FormatError(fmt.Sprintf("ast2100: stream ends without an end-of-frame code after %d blocks", n))
		}
		code := d.br.peek(4)
		if code == codeFrameEnd {
			return nil
		}
		if code&codeJumpFlag != 0 {
			if code == 0xb {
				return FormatError(fmt.Sprintf("ast2100: unknown block code %#x at block %d", code, n))
			}
			v := d.br.peek(20)
			mbx, mby = int(v>>8&0xff), int(v&0xff)
			d.br.skip(20)
		} else {
			d.br.skip(4)
		}
		switch kind := code &^ codeJumpFlag; kind {
		case codeJPEG, codeLowJPEG:
			tables := 0
			if kind == codeLowJPEG {
				tables = 2
			}
			if mode420 {
				err = d.jpeg420(dst, mbx, mby, tables)
			} else {
				err = d.jpeg444(dst, mbx, mby, tables)
			}
		case codePass2:
			err = d.pass2(dst, mbx, mby, mode420)
		case codeVQ1, codeVQ2, codeVQ4:
			if mode420 {
				return FormatError(fmt.Sprintf("ast2100: VQ block (code %#x) in a 4:2:0 frame at MCU %d,%d", code, mbx, mby))
			}
			d.vq(dst, mbx, mby, int(kind-codeVQ1))
		default:
			return FormatError(fmt.Sprintf("ast2100: unknown block code %#x at block %d", code, n))
		}
		if err != nil {
			msg := err.Error()
			if fe, ok := err.(FormatError); ok {
				msg = string(fe)
			}
			return FormatError(fmt.Sprintf("%s (block %d, code %#x, MCU %d,%d)", msg, n, code, mbx, mby))
		}
		mbx++
		if mbx >= mbw {
			mbx = 0
			mby++
			if mby >= mbh {
				mby = 0
			}
		}
	}
}

// dataUnit decodes one Huffman-coded 8×8 block of component comp (0 Y, 1 Cb,
// 2 Cr) and writes its samples, dequantised with q, to out.
func (d *AST2100Decoder) dataUnit(comp int, q *[64]int64, out *[64]uint8) error {
	dcTab, acTab := &huffDCLuma, &huffACLuma
	if comp > 0 {
		dcTab, acTab = &huffDCChroma, &huffACChroma
	}
	d.coef = [64]int16{}
	size, err := dcTab.decode(&d.br)
	if err != nil {
		return err
	}
	if size > 0 {
		if size > 15 {
			return FormatError(fmt.Sprintf("ast2100: DC size %d", size))
		}
		d.dc[comp] += d.br.receive(uint(size))
	}
	d.coef[0] = d.dc[comp]
	flat := true
	for k := 1; k < 64; {
		sym, err := acTab.decode(&d.br)
		if err != nil {
			return err
		}
		run, size := int(sym>>4), uint(sym&15)
		if size == 0 {
			if run != 15 {
				break // end of block
			}
			k += 16
			continue
		}
		k += run
		// The reference decoder lets a run that overshoots the block land
		// on the last coefficient; do the same rather than fail.
		pos := 63
		if k < 64 {
			pos = int(unzigzag[k])
		}
		d.coef[pos] = d.br.receive(size)
		flat = false
		k++
	}
	if flat {
		// DC only: what idct computes through its all-zero shortcuts.
		v := idctOut[(int32(int64(d.coef[0])*q[0]>>16)>>3)&1023]
		for i := range out {
			out[i] = v
		}
		return nil
	}
	idct(&d.coef, q, out)
	return nil
}

// jpeg444 decodes a 4:4:4 JPEG MCU (Y, Cb, Cr) at MCU (mbx, mby) with the
// tables starting at index tables (0 normal, 2 advance).
func (d *AST2100Decoder) jpeg444(dst *framebuffer.Canvas, mbx, mby, tables int) error {
	for c := 0; c < 3; c++ {
		q := d.quant[tables]
		if c > 0 {
			q = d.quant[tables+1]
		}
		if err := d.dataUnit(c, q, &d.blk[c]); err != nil {
			return err
		}
	}
	d.put444(dst, mbx, mby, &d.blk[0], &d.blk[1], &d.blk[2])
	return nil
}

// jpeg420 decodes a 4:2:0 JPEG MCU: four Y blocks (top left, top right,
// bottom left, bottom right), then Cb and Cr for the whole 16×16 area.
func (d *AST2100Decoder) jpeg420(dst *framebuffer.Canvas, mbx, mby, tables int) error {
	for i := 0; i < 6; i++ {
		comp, q := 0, d.quant[tables]
		if i >= 4 {
			comp, q = i-3, d.quant[tables+1]
		}
		if err := d.dataUnit(comp, q, &d.blk[i]); err != nil {
			return err
		}
	}
	x0, y0 := mbx*16, mby*16
	if x0 >= d.w || y0 >= d.h {
		return nil
	}
	// Each chroma sample covers 2×2 pixels: convert it once.
	var rT, gT, bT [64]int32
	for i := 0; i < 64; i++ {
		cb, cr := d.blk[4][i], d.blk[5][i]
		rT[i] = int32(crRLut[cr]) + clampBias
		gT[i] = int32(cbGLut[cb]) + int32(crGLut[cr]) + clampBias
		bT[i] = int32(cbBLut[cb]) + clampBias
	}
	// At a right edge that cuts an MCU at other than 8 pixels the reference
	// decoder reads the Y blocks misaligned; this one samples them in place.
	cw, ch := min(16, d.w-x0), min(16, d.h-y0)
	for j := 0; j < ch; j++ {
		off := (y0+j)*dst.Stride + x0*4
		row := dst.Pix[off : off+cw*4 : off+cw*4]
		crow := (j >> 1) * 8
		for i := 0; i < cw; i++ {
			y := d.blk[(j>>3)*2+i>>3][(j&7)*8+i&7]
			c := (crow + i>>1) & 63
			yy := int32(yLut[y])
			px := uint32(clampLut[(yy+rT[c])&1023]) |
				uint32(clampLut[(yy+gT[c])&1023])<<8 |
				uint32(clampLut[(yy+bT[c])&1023])<<16 | 0xff<<24
			binary.LittleEndian.PutUint32(row[i*4:], px)
		}
	}
	d.runs.add(framebuffer.Rect{X: x0, Y: y0, W: cw, H: ch})
	return nil
}

// pass2 decodes a refinement MCU: a 4:4:4 JPEG MCU with the advance tables
// whose samples, less 128, are added (modulo 256) to the kept Y/Cb/Cr. In a
// 4:2:0 frame the block is parsed and dropped, as the reference does.
func (d *AST2100Decoder) pass2(dst *framebuffer.Canvas, mbx, mby int, mode420 bool) error {
	for c := 0; c < 3; c++ {
		q := d.quant[2]
		if c > 0 {
			q = d.quant[3]
		}
		if err := d.dataUnit(c, q, &d.blk[c]); err != nil {
			return err
		}
	}
	x0, y0 := mbx*8, mby*8
	if mode420 || x0 >= d.w || y0 >= d.h {
		return nil
	}
	cw, ch := min(8, d.w-x0), min(8, d.h-y0)
	for j := 0; j < ch; j++ {
		row := dst.Pix[(y0+j)*dst.Stride+x0*4:]
		keep := d.yuv[((y0+j)*d.w+x0)*3:]
		for i := 0; i < cw; i++ {
			m := j*8 + i
			k := keep[i*3 : i*3+3]
			k[0] += d.blk[0][m] - 128
			k[1] += d.blk[1][m] - 128
			k[2] += d.blk[2][m] - 128
			putRGB(row[i*4:i*4+4], k[0], k[1], k[2])
		}
	}
	d.runs.add(framebuffer.Rect{X: x0, Y: y0, W: cw, H: ch})
	return nil
}

// vq decodes a VQ block with 1<<bits colours (bits 0, 1 or 2).
func (d *AST2100Decoder) vq(dst *framebuffer.Canvas, mbx, mby int, bits int) {
	var slots [4]uint8
	for i := 0; i < 1<<bits; i++ {
		v := d.br.peek(3)
		slots[i] = uint8(v & 3)
		if v&4 != 0 {
			d.codebook[slots[i]] = d.br.peek(27) & 0xffffff
			d.br.skip(27)
		} else {
			d.br.skip(3)
		}
	}
	for m := 0; m < 64; m++ {
		idx := uint32(0)
		if bits > 0 {
			idx = d.br.peek(uint(bits))
			d.br.skip(uint(bits))
		}
		c := d.codebook[slots[idx]]
		d.blk[0][m], d.blk[1][m], d.blk[2][m] = uint8(c>>16), uint8(c>>8), uint8(c)
	}
	d.put444(dst, mbx, mby, &d.blk[0], &d.blk[1], &d.blk[2])
}

// put444 writes an 8×8 Y/Cb/Cr block at MCU (mbx, mby), clipped to the
// frame, and keeps its samples for pass 2.
func (d *AST2100Decoder) put444(dst *framebuffer.Canvas, mbx, mby int, yb, cb, cr *[64]uint8) {
	x0, y0 := mbx*8, mby*8
	if x0 >= d.w || y0 >= d.h {
		return
	}
	cw, ch := min(8, d.w-x0), min(8, d.h-y0)
	for j := 0; j < ch; j++ {
		row := dst.Pix[(y0+j)*dst.Stride+x0*4:]
		keep := d.yuv[((y0+j)*d.w+x0)*3:]
		for i := 0; i < cw; i++ {
			m := j*8 + i
			keep[i*3], keep[i*3+1], keep[i*3+2] = yb[m], cb[m], cr[m]
			putRGB(row[i*4:i*4+4], yb[m], cb[m], cr[m])
		}
	}
	d.runs.add(framebuffer.Rect{X: x0, Y: y0, W: cw, H: ch})
}

// putRGB converts one Y/Cb/Cr sample to an opaque RGBA pixel with the
// reference decoder's integer tables.
func putRGB(p []byte, y, cb, cr uint8) {
	yy := int32(yLut[y]) + clampBias
	p[0] = clampLut[(yy+int32(crRLut[cr]))&1023]
	p[1] = clampLut[(yy+int32(cbGLut[cb])+int32(crGLut[cr]))&1023]
	p[2] = clampLut[(yy+int32(cbBLut[cb]))&1023]
	p[3] = 0xff
}

// idct dequantises in with q (AAN-scaled, 16 fraction bits) and writes the
// inverse DCT, level-shifted by 128 and clamped, to out. It is the AAN
// fast IDCT in the integer form of the reference decoder (8 fraction bits
// for the multipliers, no rounding), so that results match it bit for bit.
// One difference: the reference skips a column's odd part when rows 1..6
// are zero even if row 7 is not (its test lacks "== 0" there), dropping that
// coefficient; this decoder keeps it. Frames seen so far never hit the case.
func idct(in *[64]int16, q *[64]int64, out *[64]uint8) {
	var ws [64]int32
	for c := 0; c < 8; c++ {
		if in[8+c] == 0 && in[16+c] == 0 && in[24+c] == 0 && in[32+c] == 0 &&
			in[40+c] == 0 && in[48+c] == 0 && in[56+c] == 0 {
			v := int32(int64(in[c]) * q[c] >> 16)
			for r := 0; r < 64; r += 8 {
				ws[r+c] = v
			}
			continue
		}
		var x [8]int32
		for r := 0; r < 8; r++ {
			x[r] = int32(int64(in[r*8+c]) * q[r*8+c] >> 16)
		}
		o := idct1D(&x)
		for r := 0; r < 8; r++ {
			ws[r*8+c] = o[r]
		}
	}
	for r := 0; r < 64; r += 8 {
		row := (*[8]int32)(ws[r : r+8])
		if row[1]|row[2]|row[3]|row[4]|row[5]|row[6]|row[7] == 0 {
			v := idctOut[(row[0]>>3)&1023]
			for i := 0; i < 8; i++ {
				out[r+i] = v
			}
			continue
		}
		o := idct1D(row)
		for i := 0; i < 8; i++ {
			out[r+i] = idctOut[(o[i]>>3)&1023]
		}
	}
}

// idct1D is one 8-point AAN inverse DCT pass (Arai, Agui, Nakajima), in
// 32-bit integer arithmetic with multipliers scaled by 256.
func idct1D(x *[8]int32) [8]int32 {
	mul := func(v, c int32) int32 { return v * c >> 8 }
	const (
		c1414 = 362 // √2
		c1847 = 473 // 2·cos(π/8)
		c1082 = 277 // 2·(cos(π/8) − cos(3π/8))
		c2613 = 669 // 2·(cos(π/8) + cos(3π/8))
	)
	// Even half: inputs 0, 2, 4, 6.
	s04, d04 := x[0]+x[4], x[0]-x[4]
	s26 := x[2] + x[6]
	d26 := mul(x[2]-x[6], c1414) - s26
	e0, e3 := s04+s26, s04-s26
	e1, e2 := d04+d26, d04-d26
	// Odd half: inputs 1, 3, 5, 7.
	s53, d53 := x[5]+x[3], x[5]-x[3]
	s17, d17 := x[1]+x[7], x[1]-x[7]
	o7 := s17 + s53
	t11 := mul(s17-s53, c1414)
	z5 := mul(d53+d17, c1847)
	t10 := mul(d17, c1082) - z5
	t12 := mul(d53, -c2613) + z5
	o6 := t12 - o7
	o5 := t11 - o6
	o4 := t10 + o5
	return [8]int32{e0 + o7, e1 + o6, e2 + o5, e3 - o4, e3 + o4, e2 - o5, e1 - o6, e0 - o7}
}

// damageRuns merges the MCUs a frame repaints into few rectangles: blocks
// that continue a row extend it, and a finished row run that sits exactly
// under the previous one extends that.
type damageRuns struct {
	b        *framebuffer.Batch
	cur, pen framebuffer.Rect
}

func (m *damageRuns) start(b *framebuffer.Batch) {
	m.b, m.cur, m.pen = b, framebuffer.Rect{}, framebuffer.Rect{}
}

func (m *damageRuns) add(r framebuffer.Rect) {
	if m.b == nil {
		return
	}
	if !m.cur.Empty() && r.Y == m.cur.Y && r.H == m.cur.H && r.X == m.cur.X+m.cur.W {
		m.cur.W += r.W
		return
	}
	m.flushRun()
	m.cur = r
}

func (m *damageRuns) flushRun() {
	if m.cur.Empty() {
		return
	}
	if !m.pen.Empty() && m.pen.X == m.cur.X && m.pen.W == m.cur.W && m.pen.Y+m.pen.H == m.cur.Y {
		m.pen.H += m.cur.H
	} else {
		if !m.pen.Empty() {
			m.b.Damage(m.pen)
		}
		m.pen = m.cur
	}
	m.cur = framebuffer.Rect{}
}

func (m *damageRuns) finish() {
	if m.b == nil {
		return
	}
	m.flushRun()
	if !m.pen.Empty() {
		m.b.Damage(m.pen)
	}
	m.b, m.pen = nil, framebuffer.Rect{}
}

// bitReader reads the block stream: little-endian 32-bit words, each read
// from its most significant bit down. Past the end it reads zeros and
// overrun reports it, so a frame without an end code stops.
type bitReader struct {
	data     []byte
	pos      int    // next byte to load
	acc      uint64 // bits, left-aligned
	n        uint   // valid bits in acc
	consumed int    // bits skipped so far
}

func (r *bitReader) reset(data []byte) {
	*r = bitReader{data: data}
}

// fill tops acc up to more than 32 bits.
func (r *bitReader) fill() {
	for r.n <= 32 {
		var w uint32
		if r.pos+4 <= len(r.data) {
			w = binary.LittleEndian.Uint32(r.data[r.pos:])
		} else {
			for i := 0; i < 4 && r.pos+i < len(r.data); i++ {
				w |= uint32(r.data[r.pos+i]) << (8 * i)
			}
		}
		r.pos += 4
		r.acc |= uint64(w) << (32 - r.n)
		r.n += 32
	}
}

// peek returns the next k (1..32) bits without consuming them.
func (r *bitReader) peek(k uint) uint32 {
	if r.n < k {
		r.fill()
	}
	return uint32(r.acc >> (64 - k))
}

// skip consumes k (0..32) bits.
func (r *bitReader) skip(k uint) {
	if r.n < k {
		r.fill()
	}
	r.acc <<= k
	r.n -= k
	r.consumed += int(k)
}

// receive reads a k-bit (1..15) JPEG magnitude and extends its sign: values
// whose top bit is clear are negative (T.81 F.2.2.1 EXTEND).
func (r *bitReader) receive(k uint) int16 {
	v := int32(r.peek(k))
	r.skip(k)
	if v < 1<<(k-1) {
		v -= 1<<k - 1
	}
	return int16(v)
}

// overrun reports whether more bits were consumed than the data holds.
func (r *bitReader) overrun() bool { return r.consumed > 8*len(r.data) }

// huffTable decodes one canonical Huffman code. Codes of up to fastBits
// bits are looked up directly; longer ones are found by length.
type huffTable struct {
	fast    [1 << fastBits]uint16 // length<<8 | symbol; 0 when the code is longer
	maxCode [17]int32             // largest code of each length, -1 if none
	offset  [17]int32             // index in vals of a length's first code, minus that code
	vals    []uint8
}

const fastBits = 9

func newHuffTable(bits *[17]uint8, vals []uint8) huffTable {
	t := huffTable{vals: vals}
	code, k := int32(0), int32(0)
	for l := 1; l <= 16; l++ {
		t.offset[l] = k - code
		for i := 0; i < int(bits[l]); i++ {
			if l <= fastBits {
				first := code << (fastBits - l)
				for j := int32(0); j < 1<<(fastBits-l); j++ {
					t.fast[first+j] = uint16(l)<<8 | uint16(vals[k])
				}
			}
			code++
			k++
		}
		t.maxCode[l] = code - 1
		if bits[l] == 0 {
			t.maxCode[l] = -1
		}
		code <<= 1
	}
	return t
}

func (t *huffTable) decode(r *bitReader) (uint8, error) {
	look := r.peek(16)
	if e := t.fast[look>>(16-fastBits)]; e != 0 {
		r.skip(uint(e >> 8))
		return uint8(e), nil
	}
	for l := fastBits + 1; l <= 16; l++ {
		code := int32(look >> (16 - l))
		if code <= t.maxCode[l] {
			r.skip(uint(l))
			return t.vals[t.offset[l]+code], nil
		}
	}
	return 0, FormatError(fmt.Sprintf("ast2100: invalid Huffman code %016b", look))
}

// unzigzag maps the zigzag position of a coefficient to its natural index.
var unzigzag = [64]uint8{
	0, 1, 8, 16, 9, 2, 3, 10,
	17, 24, 32, 25, 18, 11, 4, 5,
	12, 19, 26, 33, 40, 48, 41, 34,
	27, 20, 13, 6, 7, 14, 21, 28,
	35, 42, 49, 56, 57, 50, 43, 36,
	29, 22, 15, 23, 30, 37, 44, 51,
	58, 59, 52, 45, 38, 31, 39, 46,
	53, 60, 61, 54, 47, 55, 62, 63,
}

// Tables computed once from the data above.
var (
	huffDCLuma, huffDCChroma, huffACLuma, huffACChroma huffTable

	// scaledLumaQuant and scaledChromaQuant are the quantisation tables
	// multiplied by the AAN scale factors of their row and column, with 16
	// fraction bits, in single precision as the reference computes them.
	scaledLumaQuant, scaledChromaQuant [12][64]int64

	// Colour conversion: R = Y' + Cr→R, G = Y' + Cb→G + Cr→G, B = Y' + Cb→B,
	// with Y' = 1.164·(Y−16), each term rounded on its own.
	yLut, crRLut, cbBLut, crGLut, cbGLut [256]int16

	// clampLut saturates a sum in −clampBias..len−clampBias−1 to 0..255.
	clampLut [1024]uint8

	// idctOut maps an IDCT output (descaled, taken modulo 1024 as a 10-bit
	// two's-complement value) to its level-shifted, saturated sample.
	idctOut [1024]uint8
)

const clampBias = 384

func init() {
	huffDCLuma = newHuffTable(&dcLumaBits, dcLumaVals)
	huffDCChroma = newHuffTable(&dcChromaBits, dcChromaVals)
	huffACLuma = newHuffTable(&acLumaBits, acLumaVals)
	huffACChroma = newHuffTable(&acChromaBits, acChromaVals)

	aan := [8]float32{1, 1.387039845, 1.306562965, 1.175875602, 1, 0.785694958, 0.541196100, 0.275899379}
	scale := func(src *[64]uint8, dst *[64]int64) {
		for i, v := range src {
			q := max(int(v), 1) // entry·16/16, clamped to 1..255
			f := float32(q) * aan[i/8]
			f = f * aan[i%8]
			f = f * 65536
			dst[i] = int64(f)
		}
	}
	for s := range astLumaQuant {
		scale(&astLumaQuant[s], &scaledLumaQuant[s])
		scale(&astChromaQuant[s], &scaledChromaQuant[s])
	}

	const one = 1 << 16
	fix := func(x float64) int { return int(x*one + 0.5) }
	for i := 0; i < 256; i++ {
		c := i - 128
		crRLut[i] = int16((fix(1.597656)*c + one/2) >> 16)
		cbBLut[i] = int16((fix(2.015625)*c + one/2) >> 16)
		crGLut[i] = int16((-fix(0.8125)*c + one/2) >> 16)
		cbGLut[i] = int16((-fix(0.390625)*c + one/2) >> 16)
		yLut[i] = int16((fix(1.164)*(i-16) + one/2) >> 16)
	}
	for i := range clampLut {
		clampLut[i] = uint8(min(max(i-clampBias, 0), 255))
	}
	for i := range idctOut {
		v := i
		if v >= 512 {
			v -= 1024
		}
		idctOut[i] = uint8(min(max(v+128, 0), 255))
	}
}
