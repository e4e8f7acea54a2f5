package testserver

import (
	"encoding/binary"
	"fmt"
	"math/bits"

	"kvmgate/framebuffer"
)

// XWD constants from X11/XWDFile.h.
const (
	xwdVersion     = 7
	xwdHeaderSize  = 100 // 25 CARD32 fields; the window name follows
	xwdColorSize   = 12  // pixel CARD32, red, green, blue CARD16, flags, pad
	xwdZPixmap     = 2
	xwdLSBFirst    = 0
	xwdTrueColor   = 4
	xwdDirectColor = 5
)

// xwdHeader holds the fields of an XWD file header that ParseXWD uses.
type xwdHeader struct {
	headerSize, version, format, depth, width, height  uint32
	byteOrder, bitsPerPixel, bytesPerLine, visualClass uint32
	redMask, greenMask, blueMask, ncolors              uint32
}

// ParseXWD decodes an X Window Dump (version 7, as written by `xwd`) into an
// opaque RGBA canvas. It handles ZPixmap images of 16, 24 or 32 bits per
// pixel with TrueColor or DirectColor masks, in either byte order; other
// kinds of dump are reported as errors.
func ParseXWD(data []byte) (*framebuffer.Canvas, error) {
	if len(data) < xwdHeaderSize {
		return nil, fmt.Errorf("xwd: file of %d bytes is shorter than a header", len(data))
	}
	// xwd writes the header most significant byte first; accept the other
	// order too, which some writers use.
	var order binary.ByteOrder = binary.BigEndian
	if binary.BigEndian.Uint32(data[4:]) != xwdVersion {
		if binary.LittleEndian.Uint32(data[4:]) != xwdVersion {
			return nil, fmt.Errorf("xwd: not an XWD version 7 file (version field %#x)", binary.BigEndian.Uint32(data[4:]))
		}
		order = binary.LittleEndian
	}
	f := func(i int) uint32 { return order.Uint32(data[4*i:]) }
	h := xwdHeader{
		headerSize: f(0), version: f(1), format: f(2), depth: f(3),
		width: f(4), height: f(5), byteOrder: f(7), bitsPerPixel: f(11),
		bytesPerLine: f(12), visualClass: f(13),
		redMask: f(14), greenMask: f(15), blueMask: f(16), ncolors: f(19),
	}
	if h.format != xwdZPixmap {
		return nil, fmt.Errorf("xwd: pixmap format %d not supported (only ZPixmap)", h.format)
	}
	if h.visualClass != xwdTrueColor && h.visualClass != xwdDirectColor {
		return nil, fmt.Errorf("xwd: visual class %d not supported (only TrueColor and DirectColor)", h.visualClass)
	}
	bpp := int(h.bitsPerPixel)
	if bpp != 16 && bpp != 24 && bpp != 32 {
		return nil, fmt.Errorf("xwd: %d bits per pixel not supported", bpp)
	}
	if h.width > framebuffer.MaxDimension || h.height > framebuffer.MaxDimension {
		return nil, fmt.Errorf("xwd: image size %dx%d too large", h.width, h.height)
	}
	w, ht := int(h.width), int(h.height)
	if err := framebuffer.CheckSize(w, ht); err != nil {
		return nil, fmt.Errorf("xwd: %w", err)
	}
	if h.headerSize < xwdHeaderSize || h.headerSize > 1<<16 {
		return nil, fmt.Errorf("xwd: header size %d out of range", h.headerSize)
	}
	if h.ncolors > 1<<16 {
		return nil, fmt.Errorf("xwd: %d colormap entries out of range", h.ncolors)
	}
	bpl := int(h.bytesPerLine)
	if uint64(h.bytesPerLine) < (uint64(w)*uint64(bpp)+7)/8 || h.bytesPerLine > 1<<20 {
		return nil, fmt.Errorf("xwd: %d bytes per line too few for %d pixels of %d bits", h.bytesPerLine, w, bpp)
	}
	masks := [3]uint32{h.redMask, h.greenMask, h.blueMask}
	for i, m := range masks {
		if m == 0 || (bpp < 32 && m>>uint(bpp) != 0) {
			return nil, fmt.Errorf("xwd: colour mask %d (%#x) empty or wider than %d bits", i, m, bpp)
		}
	}
	off := int(h.headerSize) + int(h.ncolors)*xwdColorSize
	if need := off + bpl*ht; need > len(data) {
		return nil, fmt.Errorf("xwd: %d bytes of pixels needed, file has %d", bpl*ht, len(data)-off)
	}
	c, err := framebuffer.NewCanvas(w, ht)
	if err != nil {
		return nil, fmt.Errorf("xwd: %w", err)
	}
	pix := data[off:]
	lsb := h.byteOrder == xwdLSBFirst
	if bpp == 32 && lsb && masks == [3]uint32{0xff0000, 0xff00, 0xff} {
		// The common case: BGRX bytes from a little-endian server.
		for y := 0; y < ht; y++ {
			src, dst := pix[y*bpl:y*bpl+4*w], c.Row(0, y, w)
			for i := 0; i < len(src); i += 4 {
				dst[i], dst[i+1], dst[i+2] = src[i+2], src[i+1], src[i]
			}
		}
		return c, nil
	}
	var ch [3]channel
	for i, m := range masks {
		ch[i] = newChannel(m)
	}
	bytesPP := bpp / 8
	for y := 0; y < ht; y++ {
		src, dst := pix[y*bpl:y*bpl+bytesPP*w], c.Row(0, y, w)
		for x, j := 0, 0; x < len(src); x, j = x+bytesPP, j+4 {
			var v uint32
			if lsb {
				for k := bytesPP - 1; k >= 0; k-- {
					v = v<<8 | uint32(src[x+k])
				}
			} else {
				for k := 0; k < bytesPP; k++ {
					v = v<<8 | uint32(src[x+k])
				}
			}
			dst[j], dst[j+1], dst[j+2] = ch[0].value(v), ch[1].value(v), ch[2].value(v)
		}
	}
	return c, nil
}

// channel extracts one colour from a pixel value through its mask and
// scales it to 8 bits.
type channel struct {
	mask  uint32
	shift uint
	bits  uint
}

func newChannel(mask uint32) channel {
	shift := uint(bits.TrailingZeros32(mask))
	return channel{mask: mask, shift: shift, bits: uint(bits.Len32(mask >> shift))}
}

func (c channel) value(v uint32) byte {
	v = (v & c.mask) >> c.shift
	switch {
	case c.bits >= 8:
		return byte(v >> (c.bits - 8))
	default:
		m := uint32(1)<<c.bits - 1
		return byte((v*255 + m/2) / m)
	}
}
