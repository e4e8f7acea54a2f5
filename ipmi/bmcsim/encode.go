package bmcsim

import (
	"encoding/binary"

	"kvmgate/framebuffer"
)

// rgb555 packs the pixel at p (R, G, B, A) as ATEN's little-endian RGB555.
func rgb555(p []byte) uint16 {
	return uint16(p[0]>>3)<<10 | uint16(p[1]>>3)<<5 | uint16(p[2]>>3)
}

// HermonRaw encodes the whole canvas as a HERMON raw body (type 1).
func HermonRaw(c *framebuffer.Canvas) []byte {
	n := 10 + c.W*c.H*2
	b := make([]byte, 10, n)
	b[0] = 1
	binary.BigEndian.PutUint32(b[6:10], uint32(n))
	for y := 0; y < c.H; y++ {
		row := c.Row(0, y, c.W)
		for x := 0; x < c.W; x++ {
			b = binary.LittleEndian.AppendUint16(b, rgb555(row[x*4:]))
		}
	}
	return b
}

// HermonTiles encodes the given 16×16 tiles (column, row in tile units) of
// the canvas as a HERMON tile body (type 0). Pixels outside the canvas are
// black.
func HermonTiles(c *framebuffer.Canvas, tiles [][2]int) []byte {
	n := 10 + len(tiles)*(6+512)
	b := make([]byte, 10, n)
	binary.BigEndian.PutUint32(b[2:6], uint32(len(tiles)))
	binary.BigEndian.PutUint32(b[6:10], uint32(n))
	for _, t := range tiles {
		b = append(b, 0, 0, 0, 0, byte(t[1]), byte(t[0]))
		for y := 0; y < 16; y++ {
			for x := 0; x < 16; x++ {
				px, py := t[0]*16+x, t[1]*16+y
				var v uint16
				if px < c.W && py < c.H {
					v = rgb555(c.Pix[c.Offset(px, py):])
				}
				b = binary.LittleEndian.AppendUint16(b, v)
			}
		}
	}
	return b
}

// bitWriter writes the AST2100 block stream: bits from the most
// significant down into 32-bit words stored little-endian.
type bitWriter struct {
	out []byte
	acc uint64
	n   uint
}

func (w *bitWriter) put(v uint32, k uint) {
	w.acc = w.acc<<k | uint64(v)&(1<<k-1)
	w.n += k
	for w.n >= 32 {
		w.out = binary.LittleEndian.AppendUint32(w.out, uint32(w.acc>>(w.n-32)))
		w.n -= 32
	}
}

func (w *bitWriter) flush() []byte {
	if w.n > 0 {
		w.put(0, 32-w.n)
	}
	// A word of padding: decoders look ahead.
	return binary.LittleEndian.AppendUint32(w.out, 0)
}

// ycc converts RGB to the full-range JFIF Y, Cb, Cr the ASPEED engine uses.
func ycc(r, g, b int) uint32 {
	y := (77*r + 150*g + 29*b + 128) >> 8
	cb := (-43*r - 85*g + 128*b + 128 + 128<<8) >> 8
	cr := (128*r - 107*g - 21*b + 128 + 128<<8) >> 8
	cl := func(v int) uint32 { return uint32(max(0, min(255, v))) }
	return cl(y)<<16 | cl(cb)<<8 | cl(cr)
}

// AST2100VQ encodes the canvas as an AST2100 frame (4:4:4) made only of
// one-colour VQ blocks, each the average colour of its 8×8 block, each with
// a position jump. Only the blocks listed are sent; nil means all. This is
// the encoder side of the simplest frames the ASPEED engine produces
// (flat areas); the decoder's JPEG paths are tested in ipmi/aten.
func AST2100VQ(c *framebuffer.Canvas, blocks [][2]int) []byte {
	if blocks == nil {
		for by := 0; by < (c.H+7)/8; by++ {
			for bx := 0; bx < (c.W+7)/8; bx++ {
				blocks = append(blocks, [2]int{bx, by})
			}
		}
	}
	var w bitWriter
	w.out = []byte{4, 4, 0x01, 0xbc} // selectors 4/4, 4:4:4
	for _, bl := range blocks {
		var r, g, b, n int
		for y := bl[1] * 8; y < min(c.H, bl[1]*8+8); y++ {
			for x := bl[0] * 8; x < min(c.W, bl[0]*8+8); x++ {
				p := c.Pix[c.Offset(x, y):]
				r, g, b, n = r+int(p[0]), g+int(p[1]), b+int(p[2]), n+1
			}
		}
		if n == 0 {
			continue
		}
		w.put(0x5|0x8, 4) // VQ, one colour, with a position
		w.put(uint32(bl[0]), 8)
		w.put(uint32(bl[1]), 8)
		w.put(1, 1) // new colour
		w.put(0, 2) // slot 0
		w.put(ycc(r/n, g/n, b/n), 24)
	}
	w.put(0x9, 4) // end of frame
	return w.flush()
}
