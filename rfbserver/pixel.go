package rfbserver

import (
	"fmt"

	"kvmgate/rfb"
)

// pixelWriter turns canvas RGBA pixels into the wire pixels of one client
// PixelFormat. It is built once per SetPixelFormat; the tables hold each
// 8-bit component already scaled to the format's maximum and shifted into
// place, so a pixel costs three lookups and two ORs.
type pixelWriter struct {
	pf      rfb.PixelFormat
	bpp     int  // bytes per wire pixel
	native  bool // wire bytes are the canvas's R, G, B, X
	big     bool
	r, g, b [256]uint32

	// cpx is the ZRLE CPIXEL size; cpxHigh says a 3-byte CPIXEL holds the
	// most significant bytes of the pixel value.
	cpx     int
	cpxHigh bool
}

// checkPixelFormat reports whether the server can send pixels in pf.
func checkPixelFormat(pf rfb.PixelFormat) error {
	if !pf.TrueColour {
		return fmt.Errorf("rfbserver: client asked for a colour-map pixel format (%v); only true colour is supported", pf)
	}
	if err := pf.Validate(); err != nil {
		return fmt.Errorf("rfbserver: client pixel format %v: %w", pf, err)
	}
	for _, c := range []struct {
		max   uint16
		shift uint8
	}{{pf.RedMax, pf.RedShift}, {pf.GreenMax, pf.GreenShift}, {pf.BlueMax, pf.BlueShift}} {
		if uint64(c.max)<<c.shift >= 1<<uint(pf.BitsPerPixel) {
			return fmt.Errorf("rfbserver: client pixel format %v: colour component overflows %d bits", pf, pf.BitsPerPixel)
		}
	}
	return nil
}

func newPixelWriter(pf rfb.PixelFormat) *pixelWriter {
	w := &pixelWriter{pf: pf, bpp: pf.BytesPerPixel(), native: pf.IsNative(), big: pf.BigEndian}
	for i := 0; i < 256; i++ {
		w.r[i] = scale(i, pf.RedMax) << pf.RedShift
		w.g[i] = scale(i, pf.GreenMax) << pf.GreenShift
		w.b[i] = scale(i, pf.BlueMax) << pf.BlueShift
	}
	w.cpx = w.bpp
	if pf.BitsPerPixel == 32 && pf.Depth <= 24 {
		mask := w.r[255] | w.g[255] | w.b[255]
		switch {
		case mask&0xff000000 == 0:
			w.cpx = 3
		case mask&0x000000ff == 0:
			w.cpx, w.cpxHigh = 3, true
		}
	}
	return w
}

// scale maps an 8-bit component to 0..max, rounding to nearest.
func scale(v int, max uint16) uint32 {
	return uint32((v*int(max) + 127) / 255)
}

// value returns the wire pixel value of the RGBA pixel at p[0:4].
func (w *pixelWriter) value(p []byte) uint32 {
	return w.r[p[0]] | w.g[p[1]] | w.b[p[2]]
}

// appendPixel appends one wire pixel of value v.
func (w *pixelWriter) appendPixel(dst []byte, v uint32) []byte {
	switch w.bpp {
	case 1:
		return append(dst, byte(v))
	case 2:
		if w.big {
			return append(dst, byte(v>>8), byte(v))
		}
		return append(dst, byte(v), byte(v>>8))
	default:
		if w.big {
			return append(dst, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
		}
		return append(dst, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
	}
}

// appendCPixel appends one ZRLE CPIXEL of value v.
func (w *pixelWriter) appendCPixel(dst []byte, v uint32) []byte {
	if w.cpx != 3 {
		return w.appendPixel(dst, v)
	}
	switch {
	case w.big && !w.cpxHigh:
		return append(dst, byte(v>>16), byte(v>>8), byte(v))
	case w.big:
		return append(dst, byte(v>>24), byte(v>>16), byte(v>>8))
	case !w.cpxHigh:
		return append(dst, byte(v), byte(v>>8), byte(v>>16))
	default:
		return append(dst, byte(v>>8), byte(v>>16), byte(v>>24))
	}
}

// appendRow appends the n RGBA pixels of row as wire pixels.
func (w *pixelWriter) appendRow(dst, row []byte, n int) []byte {
	if w.native {
		return append(dst, row[:4*n]...)
	}
	for i := 0; i < 4*n; i += 4 {
		dst = w.appendPixel(dst, w.value(row[i:i+4]))
	}
	return dst
}
