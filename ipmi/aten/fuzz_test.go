package aten

import (
	"testing"

	"kvmgate/framebuffer"
)

// FuzzAST2100 decodes arbitrary streams, two frames in a row into one
// decoder, at a size taken from the input. It must never panic; the frame
// size is bounded by the canvas the caller gives, so memory stays bounded.
func FuzzAST2100(f *testing.F) {
	red := uint32(81)<<16 | 90<<8 | 240
	f.Add(uint8(3), uint8(2), vqFrame(map[[2]int]uint32{{1, 1}: red}))
	dc := newFrame(11, 0, Subsampling444)
	dc.code(codeLowJPEG)
	dc.flat(0, 2)
	dc.flat(1, 8)
	dc.flat(2, -8)
	dc.code(codePass2)
	dc.flat(0, 80)
	dc.flat(1, 0)
	dc.flat(2, 0)
	f.Add(uint8(4), uint8(4), dc.finish())
	dc420 := newFrame(5, 5, Subsampling420)
	dc420.code(codeJPEG)
	for i := 0; i < 6; i++ {
		dc420.flat(min(i/4*(i-3), 2), 10*i)
	}
	dc420.jump(codeJPEG|codeJumpFlag, 1, 1)
	for i := 0; i < 6; i++ {
		dc420.flat(min(i/4*(i-3), 2), -10*i)
	}
	f.Add(uint8(3), uint8(3), dc420.finish())
	f.Fuzz(func(t *testing.T, wb, hb uint8, data []byte) {
		w, h := 1+int(wb)%64, 1+int(hb)%64
		c, err := framebuffer.NewCanvas(w, h)
		if err != nil {
			t.Fatal(err)
		}
		var d AST2100Decoder
		var b framebuffer.Batch
		_ = d.Decode(c, data, &b)
		_ = d.Decode(c, data, &b)
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				if c.At(x, y)>>24 != 0xff {
					t.Fatalf("pixel %d,%d not opaque", x, y)
				}
			}
		}
	})
}

// FuzzHermon decodes arbitrary HERMON bodies into a rectangle taken from the
// input. It must never panic or write outside the rectangle.
func FuzzHermon(f *testing.F) {
	white := tile{1, 0, func(int, int) (uint8, uint8, uint8) { return 31, 31, 31 }}
	f.Add(uint8(0), uint8(0), uint8(40), uint8(24), hermonBody(0, 1, white.bytes()))
	raw := make([]byte, 4*3*2)
	for i := range raw {
		raw[i] = byte(i * 37)
	}
	f.Add(uint8(2), uint8(1), uint8(4), uint8(3), hermonBody(1, 0, raw))
	f.Fuzz(func(t *testing.T, x, y, w, h uint8, body []byte) {
		c, _ := framebuffer.NewCanvas(48, 40)
		r := framebuffer.Rect{X: int(x) % 64, Y: int(y) % 64, W: int(w) % 64, H: int(h) % 64}
		var b framebuffer.Batch
		if err := DecodeHermon(c, r, body, &b); err != nil {
			return
		}
		// Nothing outside r may change.
		for py := 0; py < c.H; py++ {
			for px := 0; px < c.W; px++ {
				in := px >= r.X && px < r.X+r.W && py >= r.Y && py < r.Y+r.H
				if !in && c.At(px, py) != 0xff000000 {
					t.Fatalf("pixel %d,%d outside %v painted", px, py, r)
				}
			}
		}
	})
}
