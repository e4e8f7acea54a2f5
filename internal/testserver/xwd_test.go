package testserver

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"kvmgate/framebuffer"
)

// xwdSpec describes a dump for makeXWD.
type xwdSpec struct {
	headerLE   bool // header in little-endian order (xwd itself writes big)
	msb        bool // pixel byte order MSBFirst
	bpp        int
	masks      [3]uint32
	pad        int // extra bytes at the end of each line
	ncolors    int
	name       string
	w, h       int
	format     uint32 // 0 means ZPixmap
	visual     uint32 // 0 means TrueColor
	pixelValue func(x, y int) uint32
}

// makeXWD builds an XWD file by hand, following X11/XWDFile.h.
func makeXWD(s xwdSpec) []byte {
	var order binary.ByteOrder = binary.BigEndian
	if s.headerLE {
		order = binary.LittleEndian
	}
	format, visual := s.format, s.visual
	if format == 0 {
		format = xwdZPixmap
	}
	if visual == 0 {
		visual = xwdTrueColor
	}
	name := s.name + "\x00"
	bpl := s.w*s.bpp/8 + s.pad
	byteOrder := uint32(0)
	if s.msb {
		byteOrder = 1
	}
	fields := []uint32{
		uint32(xwdHeaderSize + len(name)), xwdVersion, format, 24,
		uint32(s.w), uint32(s.h), 0, byteOrder, 32, byteOrder, 32,
		uint32(s.bpp), uint32(bpl), visual,
		s.masks[0], s.masks[1], s.masks[2], 8, 256, uint32(s.ncolors),
		uint32(s.w), uint32(s.h), 0, 0, 0,
	}
	var b bytes.Buffer
	for _, f := range fields {
		binary.Write(&b, order, f)
	}
	b.WriteString(name)
	b.Write(make([]byte, xwdColorSize*s.ncolors))
	for y := 0; y < s.h; y++ {
		for x := 0; x < s.w; x++ {
			v := s.pixelValue(x, y)
			px := make([]byte, s.bpp/8)
			for k := range px {
				shift := 8 * k // LSBFirst: least significant byte first
				if s.msb {
					shift = 8 * (len(px) - 1 - k)
				}
				px[k] = byte(v >> shift)
			}
			b.Write(px)
		}
		b.Write(make([]byte, s.pad))
	}
	return b.Bytes()
}

// testColours are exactly representable in 5-6-5 as well as 8-8-8.
var testColours = [][3]byte{{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 255, 255}, {0, 0, 0}}

func colourAt(x, y int) [3]byte { return testColours[(x+2*y)%len(testColours)] }

// packRGB packs c through the masks, scaling 8 bits to each mask's width.
func packRGB(c [3]byte, masks [3]uint32) uint32 {
	var v uint32
	for i, m := range masks {
		ch := newChannel(m)
		v |= (uint32(c[i]) >> (8 - ch.bits)) << ch.shift
	}
	return v
}

func TestParseXWD(t *testing.T) {
	rgb888 := [3]uint32{0xff0000, 0xff00, 0xff}
	bgr888 := [3]uint32{0xff, 0xff00, 0xff0000}
	rgb565 := [3]uint32{0xf800, 0x07e0, 0x001f}
	tests := []struct {
		name string
		spec xwdSpec
	}{
		{"32bpp LSB rgb (fast path)", xwdSpec{bpp: 32, masks: rgb888, ncolors: 256, name: "xwdump"}},
		{"32bpp MSB rgb", xwdSpec{bpp: 32, msb: true, masks: rgb888}},
		{"32bpp LSB bgr", xwdSpec{bpp: 32, masks: bgr888, pad: 4}},
		{"24bpp LSB", xwdSpec{bpp: 24, masks: rgb888, pad: 3}},
		{"24bpp MSB", xwdSpec{bpp: 24, msb: true, masks: rgb888, pad: 1}},
		{"16bpp 565 LSB", xwdSpec{bpp: 16, masks: rgb565, ncolors: 3}},
		{"16bpp 565 MSB", xwdSpec{bpp: 16, msb: true, masks: rgb565, pad: 2}},
		{"little-endian header", xwdSpec{headerLE: true, bpp: 32, masks: rgb888}},
		{"direct colour", xwdSpec{bpp: 32, masks: rgb888, visual: xwdDirectColor}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.spec
			s.w, s.h = 7, 5
			s.pixelValue = func(x, y int) uint32 { return packRGB(colourAt(x, y), s.masks) }
			c, err := ParseXWD(makeXWD(s))
			if err != nil {
				t.Fatal(err)
			}
			if c.W != s.w || c.H != s.h {
				t.Fatalf("size %dx%d, want %dx%d", c.W, c.H, s.w, s.h)
			}
			for y := 0; y < s.h; y++ {
				for x := 0; x < s.w; x++ {
					want := colourAt(x, y)
					wantPx := uint32(want[0]) | uint32(want[1])<<8 | uint32(want[2])<<16 | 0xff<<24
					if got := c.At(x, y); got != wantPx {
						t.Fatalf("pixel %d,%d = %#08x, want %#08x", x, y, got, wantPx)
					}
				}
			}
		})
	}
}

func TestParseXWDErrors(t *testing.T) {
	good := xwdSpec{bpp: 32, masks: [3]uint32{0xff0000, 0xff00, 0xff}, w: 4, h: 3,
		pixelValue: func(x, y int) uint32 { return 0 }}
	valid := makeXWD(good)
	with := func(f func(*xwdSpec)) []byte {
		s := good
		f(&s)
		return makeXWD(s)
	}
	setField := func(i int, v uint32) []byte {
		b := bytes.Clone(valid)
		binary.BigEndian.PutUint32(b[4*i:], v)
		return b
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "shorter than a header"},
		{"bad version", setField(1, 6), "not an XWD version 7"},
		{"XY pixmap", with(func(s *xwdSpec) { s.format = 1 }), "pixmap format"},
		{"pseudo colour", with(func(s *xwdSpec) { s.visual = 3 }), "visual class"},
		{"8 bpp", setField(11, 8), "bits per pixel"},
		{"truncated pixels", valid[:len(valid)-1], "bytes of pixels needed"},
		{"short lines", setField(12, 12), "bytes per line"},
		{"huge", setField(4, 1<<30), "too large"},
		{"zero mask", setField(15, 0), "colour mask"},
		{"header size", setField(0, 20), "header size"},
		{"colormap", setField(19, 1<<20), "colormap entries"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseXWD(tt.data)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func FuzzParseXWD(f *testing.F) {
	f.Add(makeXWD(xwdSpec{bpp: 32, masks: [3]uint32{0xff0000, 0xff00, 0xff}, w: 3, h: 2,
		pixelValue: func(x, y int) uint32 { return uint32(x * y * 77) }}))
	f.Add(makeXWD(xwdSpec{bpp: 16, msb: true, masks: [3]uint32{0xf800, 0x07e0, 0x001f}, w: 2, h: 2, pad: 2,
		pixelValue: func(x, y int) uint32 { return uint32(x + y) }}))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseXWD(data)
		if err != nil {
			return
		}
		if len(c.Pix) != c.Stride*c.H || c.Stride != c.W*framebuffer.BytesPerPixel {
			t.Fatalf("inconsistent canvas %dx%d stride %d len %d", c.W, c.H, c.Stride, len(c.Pix))
		}
	})
}

func BenchmarkParseXWD(b *testing.B) {
	data := makeXWD(xwdSpec{bpp: 32, masks: [3]uint32{0xff0000, 0xff00, 0xff}, w: 1024, h: 768,
		pixelValue: func(x, y int) uint32 { return uint32(x ^ y) }})
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := ParseXWD(data); err != nil {
			b.Fatal(err)
		}
	}
}
