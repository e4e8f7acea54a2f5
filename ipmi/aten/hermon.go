package aten

import (
	"encoding/binary"
	"fmt"

	"kvmgate/framebuffer"
)

// The HERMON rectangle body (what follows the 8-byte ATEN prefix, whose
// length field counts all of it):
//
//	byte 0      type: 0 tiles, 1 raw
//	byte 1      padding
//	bytes 2..5  number of tiles, big-endian (type 0)
//	bytes 6..9  the body's length again, big-endian
//	bytes 10..  type 0: tiles, each 2+2 unknown bytes, tile row, tile column
//	            (one byte each, in 16-pixel units from the rectangle's
//	            corner) and 16×16 pixels; type 1: the rectangle's pixels
//	            row by row
//
// Pixels are RGB555 in little-endian 16-bit words: blue in bits 0..4, green
// in 5..9, red in 10..14, bit 15 unused. Whatever pixel format the server
// announced, ATEN sends this one.

// Sizes of the HERMON body's parts.
const (
	hermonHeaderLen = 10
	hermonTileEdge  = 16
	hermonTileLen   = 6 + hermonTileEdge*hermonTileEdge*2
)

// HERMON body types.
const (
	hermonTiles = 0
	hermonRaw   = 1
)

// DecodeHermon decodes the body of one HERMON rectangle r (encoding 0x59, or
// 0x00 from older firmware) into dst and records what it painted in damage
// when that is not nil. Tiles reaching past r are clipped to it. An empty
// body paints nothing.
func DecodeHermon(dst *framebuffer.Canvas, r framebuffer.Rect, body []byte, damage *framebuffer.Batch) error {
	if len(body) == 0 {
		return nil
	}
	if !dst.Contains(r) {
		return FormatError(fmt.Sprintf("hermon: rectangle %v outside the %dx%d screen", r, dst.W, dst.H))
	}
	if len(body) < hermonHeaderLen {
		return FormatError(fmt.Sprintf("hermon: %d-byte body, shorter than its %d-byte header", len(body), hermonHeaderLen))
	}
	kind := body[0]
	count := binary.BigEndian.Uint32(body[2:6])
	if n := binary.BigEndian.Uint32(body[6:10]); int64(n) != int64(len(body)) {
		return FormatError(fmt.Sprintf("hermon: body is %d bytes but says %d", len(body), n))
	}
	payload := body[hermonHeaderLen:]
	switch kind {
	case hermonTiles:
		if int64(count)*hermonTileLen > int64(len(payload)) {
			return FormatError(fmt.Sprintf("hermon: %d tiles need %d bytes, have %d", count, int64(count)*hermonTileLen, len(payload)))
		}
		var runs damageRuns
		runs.start(damage)
		defer runs.finish()
		for i := 0; i < int(count); i++ {
			t := payload[i*hermonTileLen : (i+1)*hermonTileLen]
			tr := framebuffer.Rect{
				X: r.X + int(t[5])*hermonTileEdge,
				Y: r.Y + int(t[4])*hermonTileEdge,
				W: hermonTileEdge, H: hermonTileEdge,
			}.Intersect(r)
			if tr.Empty() {
				continue
			}
			putRGB555(dst, tr, t[6:], hermonTileEdge*2)
			runs.add(tr)
		}
	case hermonRaw:
		need := int64(r.W) * int64(r.H) * 2
		if need > int64(len(payload)) {
			return FormatError(fmt.Sprintf("hermon: raw %dx%d rectangle needs %d bytes, have %d", r.W, r.H, need, len(payload)))
		}
		if r.Empty() {
			return nil
		}
		putRGB555(dst, r, payload, r.W*2)
		if damage != nil {
			damage.Damage(r)
		}
	default:
		return FormatError(fmt.Sprintf("hermon: unknown body type %d", kind))
	}
	return nil
}

// putRGB555 paints rectangle r of dst from RGB555 pixels in src, whose rows
// are stride bytes apart.
func putRGB555(dst *framebuffer.Canvas, r framebuffer.Rect, src []byte, stride int) {
	for y := 0; y < r.H; y++ {
		s := src[y*stride : y*stride+r.W*2]
		d := dst.Row(r.X, r.Y+y, r.W)
		for x := 0; x < r.W; x++ {
			v := uint32(s[2*x]) | uint32(s[2*x+1])<<8
			p := d[4*x : 4*x+4]
			p[0] = expand5[v>>10&31]
			p[1] = expand5[v>>5&31]
			p[2] = expand5[v&31]
			p[3] = 0xff
		}
	}
}

// expand5 widens a 5-bit channel to 8 bits by repeating its top bits, so
// that 31 becomes 255.
var expand5 = func() (t [32]uint8) {
	for i := range t {
		t[i] = uint8(i<<3 | i>>2)
	}
	return t
}()
