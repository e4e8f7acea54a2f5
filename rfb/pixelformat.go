package rfb

import (
	"encoding/binary"
	"fmt"
)

// PixelFormat is the RFB PIXEL_FORMAT structure: how the server encodes one
// pixel on the wire.
type PixelFormat struct {
	BitsPerPixel uint8
	Depth        uint8
	BigEndian    bool
	TrueColour   bool
	RedMax       uint16
	GreenMax     uint16
	BlueMax      uint16
	RedShift     uint8
	GreenShift   uint8
	BlueShift    uint8
}

// NativeFormat is what kvmgate asks servers for: 32 bits per pixel, depth 24,
// little-endian, red in the lowest byte. Its wire bytes are R, G, B, X, the
// same order as framebuffer.Canvas, so Raw pixels copy straight through.
var NativeFormat = PixelFormat{
	BitsPerPixel: 32, Depth: 24, TrueColour: true,
	RedMax: 255, GreenMax: 255, BlueMax: 255,
	RedShift: 0, GreenShift: 8, BlueShift: 16,
}

// Format16 is RGB565, little-endian.
var Format16 = PixelFormat{
	BitsPerPixel: 16, Depth: 16, TrueColour: true,
	RedMax: 31, GreenMax: 63, BlueMax: 31,
	RedShift: 11, GreenShift: 5, BlueShift: 0,
}

// Format8 is BGR233 (RGB332 in the bit order of the blue-low convention),
// as used by low-colour servers.
var Format8 = PixelFormat{
	BitsPerPixel: 8, Depth: 8, TrueColour: true,
	RedMax: 7, GreenMax: 7, BlueMax: 3,
	RedShift: 0, GreenShift: 3, BlueShift: 6,
}

// BytesPerPixel returns the size of one wire pixel.
func (pf *PixelFormat) BytesPerPixel() int { return int(pf.BitsPerPixel) / 8 }

// Validate reports whether the format is one kvmgate can decode.
func (pf *PixelFormat) Validate() error {
	switch pf.BitsPerPixel {
	case 8, 16, 32:
	default:
		return fmt.Errorf("rfb: unsupported bits-per-pixel %d", pf.BitsPerPixel)
	}
	if pf.Depth == 0 || pf.Depth > pf.BitsPerPixel {
		// Some servers report depth 32 for 32bpp; tolerate depth up to bpp.
		if !(pf.BitsPerPixel == 32 && pf.Depth == 32) {
			return fmt.Errorf("rfb: depth %d does not fit %d bits per pixel", pf.Depth, pf.BitsPerPixel)
		}
	}
	if pf.TrueColour {
		if pf.RedMax == 0 || pf.GreenMax == 0 || pf.BlueMax == 0 {
			return fmt.Errorf("rfb: true-colour format with a zero colour max")
		}
		if pf.RedShift >= pf.BitsPerPixel || pf.GreenShift >= pf.BitsPerPixel || pf.BlueShift >= pf.BitsPerPixel {
			return fmt.Errorf("rfb: colour shift beyond %d bits per pixel", pf.BitsPerPixel)
		}
	}
	return nil
}

// IsNative reports whether pf is byte-for-byte NativeFormat on the wire
// (depth and padding aside).
func (pf *PixelFormat) IsNative() bool {
	return pf.BitsPerPixel == 32 && pf.TrueColour && !pf.BigEndian &&
		pf.RedMax == 255 && pf.GreenMax == 255 && pf.BlueMax == 255 &&
		pf.RedShift == 0 && pf.GreenShift == 8 && pf.BlueShift == 16
}

// Marshal writes the 16-byte PIXEL_FORMAT structure.
func (pf *PixelFormat) Marshal() []byte {
	b := make([]byte, 16)
	b[0], b[1] = pf.BitsPerPixel, pf.Depth
	if pf.BigEndian {
		b[2] = 1
	}
	if pf.TrueColour {
		b[3] = 1
	}
	binary.BigEndian.PutUint16(b[4:], pf.RedMax)
	binary.BigEndian.PutUint16(b[6:], pf.GreenMax)
	binary.BigEndian.PutUint16(b[8:], pf.BlueMax)
	b[10], b[11], b[12] = pf.RedShift, pf.GreenShift, pf.BlueShift
	return b
}

// UnmarshalPixelFormat parses a 16-byte PIXEL_FORMAT structure.
func UnmarshalPixelFormat(b []byte) PixelFormat {
	return PixelFormat{
		BitsPerPixel: b[0], Depth: b[1], BigEndian: b[2] != 0, TrueColour: b[3] != 0,
		RedMax:   binary.BigEndian.Uint16(b[4:]),
		GreenMax: binary.BigEndian.Uint16(b[6:]),
		BlueMax:  binary.BigEndian.Uint16(b[8:]),
		RedShift: b[10], GreenShift: b[11], BlueShift: b[12],
	}
}

func (pf PixelFormat) String() string {
	if !pf.TrueColour {
		return fmt.Sprintf("%dbpp colour-map", pf.BitsPerPixel)
	}
	e := "LE"
	if pf.BigEndian {
		e = "BE"
	}
	return fmt.Sprintf("%dbpp depth %d %s rgb max %d/%d/%d shift %d/%d/%d", pf.BitsPerPixel, pf.Depth, e,
		pf.RedMax, pf.GreenMax, pf.BlueMax, pf.RedShift, pf.GreenShift, pf.BlueShift)
}

// converter turns wire pixels of one PixelFormat into canvas RGBA. It is
// built once per pixel format (and rebuilt when the colour map changes).
type converter struct {
	pf     PixelFormat
	bpp    int
	native bool
	// Lookup tables scaling each component's 0..max to 0..255, for true
	// colour; for colour maps, palette maps a pixel value to RGBA.
	rTab, gTab, bTab []byte
	palette          []uint32
}

func newConverter(pf PixelFormat, palette []uint32) *converter {
	c := &converter{pf: pf, bpp: pf.BytesPerPixel(), native: pf.IsNative(), palette: palette}
	if pf.TrueColour {
		c.rTab = scaleTable(pf.RedMax)
		c.gTab = scaleTable(pf.GreenMax)
		c.bTab = scaleTable(pf.BlueMax)
	}
	return c
}

func scaleTable(max uint16) []byte {
	t := make([]byte, int(max)+1)
	for i := range t {
		t[i] = byte((i*255 + int(max)/2) / int(max))
	}
	return t
}

// value reads one wire pixel value of c.bpp bytes.
func (c *converter) value(b []byte) uint32 {
	switch c.bpp {
	case 1:
		return uint32(b[0])
	case 2:
		if c.pf.BigEndian {
			return uint32(binary.BigEndian.Uint16(b))
		}
		return uint32(binary.LittleEndian.Uint16(b))
	default:
		if c.pf.BigEndian {
			return binary.BigEndian.Uint32(b)
		}
		return binary.LittleEndian.Uint32(b)
	}
}

// rgba converts a pixel value to canvas RGBA packed R | G<<8 | B<<16 | A<<24.
func (c *converter) rgba(v uint32) uint32 {
	if !c.pf.TrueColour {
		if int(v) < len(c.palette) {
			return c.palette[v]
		}
		return 0xff000000
	}
	pf := &c.pf
	r := c.rTab[(v>>pf.RedShift)&uint32(pf.RedMax)]
	g := c.gTab[(v>>pf.GreenShift)&uint32(pf.GreenMax)]
	b := c.bTab[(v>>pf.BlueShift)&uint32(pf.BlueMax)]
	return uint32(r) | uint32(g)<<8 | uint32(b)<<16 | 0xff000000
}

// pixel converts one wire pixel (c.bpp bytes) to packed RGBA.
func (c *converter) pixel(b []byte) uint32 {
	if c.native {
		return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | 0xff000000
	}
	return c.rgba(c.value(b))
}

// row converts n wire pixels from src into RGBA at dst (4n bytes).
func (c *converter) row(dst, src []byte, n int) {
	if c.native {
		copy(dst[:4*n], src[:4*n])
		setOpaque(dst[:4*n])
		return
	}
	for i := 0; i < n; i++ {
		p := c.rgba(c.value(src[i*c.bpp:]))
		binary.LittleEndian.PutUint32(dst[4*i:], p)
	}
}

// cpixelSize is the size of a ZRLE/TRLE CPIXEL: 3 bytes when the format is
// 32bpp true colour of depth ≤ 24 whose colours fit in the low or the high
// three bytes, else a full pixel.
func (pf *PixelFormat) cpixelSize() (size int, highBytes bool) {
	if pf.TrueColour && pf.BitsPerPixel == 32 && pf.Depth <= 24 {
		mask := uint32(pf.RedMax)<<pf.RedShift | uint32(pf.GreenMax)<<pf.GreenShift | uint32(pf.BlueMax)<<pf.BlueShift
		if mask&0xff000000 == 0 {
			return 3, false
		}
		if mask&0x000000ff == 0 {
			return 3, true
		}
	}
	return pf.BytesPerPixel(), false
}

// cpixel converts one CPIXEL of cpixelSize bytes to packed RGBA.
func (c *converter) cpixel(b []byte, size int, high bool) uint32 {
	if size != 3 {
		return c.pixel(b)
	}
	var v uint32
	switch {
	case c.pf.BigEndian && !high:
		v = uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2])
	case c.pf.BigEndian && high:
		v = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8
	case !high:
		v = uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16
	default:
		v = uint32(b[0])<<8 | uint32(b[1])<<16 | uint32(b[2])<<24
	}
	return c.rgba(v)
}

// setOpaque sets the alpha byte of every RGBA pixel in p to 255, two pixels
// per 64-bit word (this pass is half of Raw's decode time otherwise).
func setOpaque(p []byte) {
	i := 0
	for ; i+32 <= len(p); i += 32 {
		q := p[i : i+32 : i+32]
		binary.LittleEndian.PutUint64(q[0:], binary.LittleEndian.Uint64(q[0:])|0xff000000ff000000)
		binary.LittleEndian.PutUint64(q[8:], binary.LittleEndian.Uint64(q[8:])|0xff000000ff000000)
		binary.LittleEndian.PutUint64(q[16:], binary.LittleEndian.Uint64(q[16:])|0xff000000ff000000)
		binary.LittleEndian.PutUint64(q[24:], binary.LittleEndian.Uint64(q[24:])|0xff000000ff000000)
	}
	for ; i+4 <= len(p); i += 4 {
		p[i+3] = 0xff
	}
}
