package spice

import (
	"fmt"

	"kvmgate/framebuffer"
)

// BitmapFormat is a SPICE bitmap pixel format (SPICE_BITMAP_FMT_*).
type BitmapFormat uint8

// Bitmap formats.
const (
	Bitmap1BitLE BitmapFormat = 1  // palette indexes, least significant bit first
	Bitmap1BitBE BitmapFormat = 2  // palette indexes, most significant bit first
	Bitmap4BitLE BitmapFormat = 3  // palette indexes, low nibble first
	Bitmap4BitBE BitmapFormat = 4  // palette indexes, high nibble first
	Bitmap8Bit   BitmapFormat = 5  // palette indexes
	Bitmap16Bit  BitmapFormat = 6  // x1r5g5b5, little-endian
	Bitmap24Bit  BitmapFormat = 7  // b, g, r bytes
	Bitmap32Bit  BitmapFormat = 8  // b, g, r, x bytes
	BitmapRGBA   BitmapFormat = 9  // b, g, r, a bytes (premultiplied)
	Bitmap8BitA  BitmapFormat = 10 // alpha only
)

// bitsPerPixel returns the size of one pixel of f, 0 if f is unknown.
func (f BitmapFormat) bitsPerPixel() int {
	switch f {
	case Bitmap1BitLE, Bitmap1BitBE:
		return 1
	case Bitmap4BitLE, Bitmap4BitBE:
		return 4
	case Bitmap8Bit, Bitmap8BitA:
		return 8
	case Bitmap16Bit:
		return 16
	case Bitmap24Bit:
		return 24
	case Bitmap32Bit, BitmapRGBA:
		return 32
	}
	return 0
}

// DecodeBitmap converts an uncompressed SPICE bitmap of w×h pixels, rows of
// stride bytes (bottom row first unless topDown), to an RGBA canvas. pal is
// the palette (xRGB entries) for the indexed formats.
func DecodeBitmap(f BitmapFormat, w, h, stride int, topDown bool, data []byte, pal []uint32) (*framebuffer.Canvas, error) {
	bpp := f.bitsPerPixel()
	if bpp == 0 {
		return nil, FormatError(fmt.Sprintf("bitmap format %d", f))
	}
	if err := framebuffer.CheckSize(w, h); err != nil {
		return nil, FormatError(fmt.Sprintf("bitmap of %dx%d", w, h))
	}
	if stride < (w*bpp+7)/8 || len(data) < stride*h {
		return nil, FormatError(fmt.Sprintf("bitmap %dx%d at %d bpp with stride %d in %d bytes", w, h, bpp, stride, len(data)))
	}
	c, err := framebuffer.NewCanvas(w, h)
	if err != nil {
		return nil, err
	}
	var lut [256][4]byte
	if bpp <= 8 && f != Bitmap8BitA {
		palLUT(&lut, pal, bpp)
	}
	for y := 0; y < h; y++ {
		sy := y
		if !topDown {
			sy = h - 1 - y
		}
		src := data[sy*stride : sy*stride+stride]
		dst := c.Row(0, y, w)
		switch f {
		case Bitmap32Bit:
			for x := 0; x < w; x++ {
				s, d := src[4*x:4*x+4], dst[4*x:4*x+4]
				d[0], d[1], d[2], d[3] = s[2], s[1], s[0], 0xff
			}
		case BitmapRGBA:
			for x := 0; x < w; x++ {
				s, d := src[4*x:4*x+4], dst[4*x:4*x+4]
				d[0], d[1], d[2], d[3] = s[2], s[1], s[0], s[3]
			}
		case Bitmap24Bit:
			for x := 0; x < w; x++ {
				s, d := src[3*x:3*x+3], dst[4*x:4*x+4]
				d[0], d[1], d[2], d[3] = s[2], s[1], s[0], 0xff
			}
		case Bitmap16Bit:
			for x := 0; x < w; x++ {
				v := uint16(src[2*x]) | uint16(src[2*x+1])<<8
				put555(dst[4*x:4*x+4], v)
			}
		case Bitmap8BitA:
			for x := 0; x < w; x++ {
				d := dst[4*x : 4*x+4]
				d[0], d[1], d[2], d[3] = 0, 0, 0, src[x]
			}
		case Bitmap8Bit:
			for x := 0; x < w; x++ {
				copy(dst[4*x:4*x+4], lut[src[x]][:])
			}
		case Bitmap4BitBE, Bitmap4BitLE:
			for x := 0; x < w; x++ {
				b := src[x/2]
				var i byte
				if (x&1 == 0) == (f == Bitmap4BitBE) {
					i = b >> 4
				} else {
					i = b & 0x0f
				}
				copy(dst[4*x:4*x+4], lut[i][:])
			}
		case Bitmap1BitBE, Bitmap1BitLE:
			for x := 0; x < w; x++ {
				b := src[x/8]
				var bit byte
				if f == Bitmap1BitBE {
					bit = b >> (7 - uint(x&7)) & 1
				} else {
					bit = b >> uint(x&7) & 1
				}
				copy(dst[4*x:4*x+4], lut[bit][:])
			}
		}
	}
	return c, nil
}

// put555 writes an x1r5g5b5 pixel as RGBA, widening each channel the way
// SPICE does (the top bits repeated into the low bits).
func put555(d []byte, v uint16) {
	r, g, b := byte(v>>10)&0x1f, byte(v>>5)&0x1f, byte(v)&0x1f
	d[0], d[1], d[2], d[3] = r<<3|r>>2, g<<3|g>>2, b<<3|b>>2, 0xff
}

// palLUT fills lut with the RGBA values of pal's entries. Indexes beyond the
// palette are black; a missing 1-bit palette is black and white.
func palLUT(lut *[256][4]byte, pal []uint32, bpp int) {
	for i := range lut {
		lut[i] = [4]byte{0, 0, 0, 0xff}
	}
	if pal == nil && bpp == 1 {
		lut[1] = [4]byte{0xff, 0xff, 0xff, 0xff}
	}
	for i, e := range pal {
		if i >= len(lut) {
			break
		}
		lut[i] = [4]byte{byte(e >> 16), byte(e >> 8), byte(e), 0xff}
	}
}
