package aten

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"kvmgate/framebuffer"
)

// rgb555 packs 5-bit channels the way HERMON sends them.
func rgb555(r, g, b uint8) uint16 { return uint16(r)<<10 | uint16(g)<<5 | uint16(b) }

// widen is the expected 5→8-bit expansion: the five bits, then their top
// three again (0 → 0, 16 → 132, 31 → 255).
func widen(v uint8) uint8 { return v*8 + v/4 }

// hermonBody assembles a HERMON body of the given type around payload.
func hermonBody(kind byte, count uint32, payload []byte) []byte {
	b := make([]byte, hermonHeaderLen, hermonHeaderLen+len(payload))
	b[0] = kind
	binary.BigEndian.PutUint32(b[2:], count)
	binary.BigEndian.PutUint32(b[6:], uint32(hermonHeaderLen+len(payload)))
	return append(b, payload...)
}

// tile is one HERMON tile for tests: its position in tiles and a pixel
// function of the pixel's place inside it.
type tile struct {
	tx, ty int
	pix    func(x, y int) (r, g, b uint8)
}

func (t tile) bytes() []byte {
	b := []byte{0xde, 0xad, 0xbe, 0xef, byte(t.ty), byte(t.tx)}
	for y := 0; y < 16; y++ {
		for x := 0; x < 16; x++ {
			b = binary.LittleEndian.AppendUint16(b, rgb555(t.pix(x, y)))
		}
	}
	return b
}

func TestHermonTiles(t *testing.T) {
	// A 40×24 screen (tiles cut at the right and bottom) and a rectangle
	// at 0,0 covering it; the tiles paint gradients that tell pixels apart.
	const w, h = 40, 24
	tiles := []tile{
		{0, 0, func(x, y int) (uint8, uint8, uint8) { return uint8(x), uint8(y), 31 }},
		{2, 0, func(x, y int) (uint8, uint8, uint8) { return 31, uint8(x + y), uint8(x) }},
		{1, 1, func(x, y int) (uint8, uint8, uint8) { return uint8(y), 0, uint8(15 + x) }},
		{9, 9, func(x, y int) (uint8, uint8, uint8) { return 31, 31, 31 }}, // outside: ignored
	}
	var payload []byte
	m := newWant(w, h)
	for _, tl := range tiles {
		payload = append(payload, tl.bytes()...)
		for y := 0; y < 16; y++ {
			for x := 0; x < 16; x++ {
				r, g, b := tl.pix(x, y)
				m.set(tl.tx*16+x, tl.ty*16+y, [3]uint8{widen(r), widen(g), widen(b)})
			}
		}
	}
	c, _ := framebuffer.NewCanvas(w, h)
	var b framebuffer.Batch
	if err := DecodeHermon(c, c.Bounds(), hermonBody(0, uint32(len(tiles)), payload), &b); err != nil {
		t.Fatal(err)
	}
	// The tile at 9,9 lies outside the screen; m.set dropped it too.
	checkCanvas(t, c, m)
	if b.Len() != 3 { // three tiles, none adjacent to the one before
		t.Errorf("damage has %d rectangles, want 3", b.Len())
	}
}

func TestHermonRaw(t *testing.T) {
	const w, h = 24, 10
	r := framebuffer.Rect{X: 4, Y: 3, W: 13, H: 5}
	var payload []byte
	m := newWant(w, h)
	for y := 0; y < r.H; y++ {
		for x := 0; x < r.W; x++ {
			cr, cg, cb := uint8(x*2), uint8(31-y*3), uint8((x+y)%32)
			payload = binary.LittleEndian.AppendUint16(payload, rgb555(cr, cg, cb)|0x8000) // bit 15 unused
			m.set(r.X+x, r.Y+y, [3]uint8{widen(cr), widen(cg), widen(cb)})
		}
	}
	c, _ := framebuffer.NewCanvas(w, h)
	var b framebuffer.Batch
	if err := DecodeHermon(c, r, hermonBody(1, 0, payload), &b); err != nil {
		t.Fatal(err)
	}
	checkCanvas(t, c, m)
	if b.Len() != 1 {
		t.Errorf("damage has %d rectangles, want 1", b.Len())
	}
}

func TestHermonTilesRelativeToRect(t *testing.T) {
	// Tile positions count from the rectangle's corner and are clipped to
	// the rectangle, not only to the screen.
	c, _ := framebuffer.NewCanvas(64, 64)
	r := framebuffer.Rect{X: 16, Y: 8, W: 24, H: 20}
	white := tile{1, 1, func(int, int) (uint8, uint8, uint8) { return 31, 31, 31 }}
	if err := DecodeHermon(c, r, hermonBody(0, 1, white.bytes()), nil); err != nil {
		t.Fatal(err)
	}
	m := newWant(64, 64)
	for y := 24; y < 28; y++ { // tile 1,1 starts at 32,24; r ends at x 40, y 28
		for x := 32; x < 40; x++ {
			m.set(x, y, [3]uint8{255, 255, 255})
		}
	}
	checkCanvas(t, c, m)
}

func TestHermonEmptyBody(t *testing.T) {
	c, _ := framebuffer.NewCanvas(8, 8)
	if err := DecodeHermon(c, c.Bounds(), nil, nil); err != nil {
		t.Fatal(err)
	}
}

func TestHermonErrors(t *testing.T) {
	white := tile{0, 0, func(int, int) (uint8, uint8, uint8) { return 31, 31, 31 }}
	badLen := hermonBody(0, 1, white.bytes())
	binary.BigEndian.PutUint32(badLen[6:], 9999)
	screen := framebuffer.Rect{W: 32, H: 32}
	for _, tc := range []struct {
		name string
		r    framebuffer.Rect
		body []byte
		want string
	}{
		{"short header", screen, []byte{0, 0, 0, 0}, "header"},
		{"length mismatch", screen, badLen, "says"},
		{"too many tiles", screen, hermonBody(0, 2, white.bytes()), "tiles need"},
		{"hostile tile count", screen, hermonBody(0, 0xffffffff, white.bytes()), "tiles need"},
		{"raw too short", screen, hermonBody(1, 0, make([]byte, 32*32*2-1)), "raw"},
		{"unknown type", screen, hermonBody(7, 0, nil), "type 7"},
		{"rect outside screen", framebuffer.Rect{X: 20, W: 20, H: 4}, hermonBody(1, 0, make([]byte, 160)), "outside"},
		{"hostile rect", framebuffer.Rect{W: 1 << 30, H: 1 << 30}, hermonBody(1, 0, nil), "outside"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := framebuffer.NewCanvas(32, 32)
			err := DecodeHermon(c, tc.r, tc.body, nil)
			var fe FormatError
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("DecodeHermon = %v, want a FormatError mentioning %q", err, tc.want)
			}
		})
	}
}
