package spice

import (
	"encoding/binary"
	"fmt"

	"kvmgate/framebuffer"
)

// LZ image types (LZ_IMAGE_TYPE_*), as carried in an LZ stream's header.
const (
	lzPLT1LE = 1
	lzPLT1BE = 2
	lzPLT4LE = 3
	lzPLT4BE = 4
	lzPLT8   = 5
	lzRGB16  = 6
	lzRGB24  = 7
	lzRGB32  = 8
	lzRGBA   = 9
	lzXXXA   = 10
	lzA8     = 11

	lzMagic       = 0x20205a4c // "LZ  " read big-endian
	lzVersion     = 0x00010001
	lzHeaderSize  = 28
	lzMaxCopy     = 32
	lzMaxDistance = 8191
)

// DecodeLZ decodes a SPICE LZ image (the LZ_RGB and LZ_PLT image types) to
// an RGBA canvas. pal is the palette for the palette types (nil for RGB).
//
// An LZ stream is a header (magic, version, type, width, height, stride,
// top-down flag, each a big-endian uint32) and a sequence of LZ77 commands
// over pixel units: a control byte below 32 copies that many plus one
// literal units; otherwise its top three bits are a match length and its low
// five the high bits of a distance back into the output.
func DecodeLZ(data []byte, pal []uint32) (*framebuffer.Canvas, error) {
	if len(data) < lzHeaderSize {
		return nil, FormatError(fmt.Sprintf("LZ image of %d bytes", len(data)))
	}
	be := binary.BigEndian
	if m := be.Uint32(data); m != lzMagic {
		return nil, FormatError(fmt.Sprintf("LZ magic %#08x", m))
	}
	if v := be.Uint32(data[4:]); v != lzVersion {
		return nil, FormatError(fmt.Sprintf("LZ version %#08x", v))
	}
	typ := be.Uint32(data[8:])
	w, h := be.Uint32(data[12:]), be.Uint32(data[16:])
	stride := be.Uint32(data[20:])
	topDown := be.Uint32(data[24:]) != 0
	if w == 0 || h == 0 || framebuffer.CheckSize(int(w), int(h)) != nil {
		return nil, FormatError(fmt.Sprintf("LZ image of %dx%d", w, h))
	}
	// One command byte yields at most a few hundred units (a match length
	// grows by 255 per extra byte), which bounds what a short stream can
	// claim to hold.
	units := uint64(w) * uint64(h)
	if typ <= lzPLT8 {
		units = uint64(stride) * uint64(h)
	}
	if units > 256*uint64(len(data)) {
		return nil, FormatError(fmt.Sprintf("LZ image of %dx%d in %d bytes", w, h, len(data)))
	}
	d := lzDecoder{src: data, pos: lzHeaderSize}
	c, err := framebuffer.NewCanvas(int(w), int(h))
	if err != nil {
		return nil, err
	}
	width, height := int(w), int(h)
	n := width * height
	switch typ {
	case lzRGB32, lzRGB24, lzRGBA:
		units, err := d.decompress(n, 3, 1)
		if err != nil {
			return nil, err
		}
		for i, u := range units {
			p := c.Pix[4*i : 4*i+4]
			p[0], p[1], p[2] = byte(u>>16), byte(u>>8), byte(u)
		}
		if typ == lzRGBA {
			alpha, err := d.decompress(n, 1, 3)
			if err != nil {
				return nil, fmt.Errorf("%w (alpha plane)", err)
			}
			for i, a := range alpha {
				c.Pix[4*i+3] = byte(a)
			}
		}
	case lzRGB16:
		units, err := d.decompress(n, 2, 2)
		if err != nil {
			return nil, err
		}
		for i, u := range units {
			put555(c.Pix[4*i:4*i+4], uint16(u&0xff)<<8|uint16(u>>8))
		}
	case lzXXXA, lzA8:
		alpha, err := d.decompress(n, 1, 3)
		if err != nil {
			return nil, err
		}
		for i, a := range alpha {
			p := c.Pix[4*i : 4*i+4]
			p[0], p[1], p[2], p[3] = 0, 0, 0, byte(a)
		}
	case lzPLT1LE, lzPLT1BE, lzPLT4LE, lzPLT4BE, lzPLT8:
		ppb := map[uint32]int{lzPLT1LE: 8, lzPLT1BE: 8, lzPLT4LE: 2, lzPLT4BE: 2, lzPLT8: 1}[typ]
		if int(stride)*ppb < width || int(stride) > width/ppb+64 {
			return nil, FormatError(fmt.Sprintf("LZ palette image %d px wide with stride %d", width, stride))
		}
		if pal == nil {
			return nil, FormatError("LZ palette image without a palette")
		}
		idx, err := d.decompress(int(stride)*height, 1, 3)
		if err != nil {
			return nil, err
		}
		var lut [256][4]byte
		palLUT(&lut, pal, 8)
		bpp := 8 / ppb
		for y := 0; y < height; y++ {
			row := idx[y*int(stride) : (y+1)*int(stride)]
			dst := c.Row(0, y, width)
			for x := 0; x < width; x++ {
				b := byte(row[x/ppb])
				var i byte
				switch typ {
				case lzPLT8:
					i = b
				case lzPLT4BE:
					i = b >> (4 * (1 - uint(x&1))) & 0x0f
				case lzPLT4LE:
					i = b >> (4 * uint(x&1)) & 0x0f
				case lzPLT1BE:
					i = b >> (7 - uint(x&7)) & 1
				case lzPLT1LE:
					i = b >> uint(x&7) & 1
				}
				if bpp == 4 && len(pal) > 0 {
					i %= byte(len(pal)) // as spice-common does for 4-bit palettes
				}
				copy(dst[4*x:4*x+4], lut[i][:])
			}
		}
	default:
		return nil, FormatError(fmt.Sprintf("LZ image type %d", typ))
	}
	if d.pos != len(d.src) {
		return nil, FormatError(fmt.Sprintf("LZ image: %d bytes left after the image", len(d.src)-d.pos))
	}
	if !topDown {
		flipRows(c)
	}
	return c, nil
}

// flipRows turns a bottom-up canvas right side up.
func flipRows(c *framebuffer.Canvas) {
	tmp := make([]byte, c.W*framebuffer.BytesPerPixel)
	for y := 0; y < c.H/2; y++ {
		a, b := c.Row(0, y, c.W), c.Row(0, c.H-1-y, c.W)
		copy(tmp, a)
		copy(a, b)
		copy(b, tmp)
	}
}

// lzDecoder reads LZ commands from src.
type lzDecoder struct {
	src []byte
	pos int
}

var errLZTruncated = FormatError("LZ image truncated")

// decompress decodes n units of unitBytes bytes each (packed first byte in
// the lowest bits). bias is what the stream subtracted from match lengths.
func (d *lzDecoder) decompress(n, unitBytes, bias int) ([]uint32, error) {
	out := make([]uint32, n)
	src := d.src
	p := d.pos
	op := 0
	for op < n {
		if p >= len(src) {
			return nil, errLZTruncated
		}
		ctrl := int(src[p])
		p++
		if ctrl < lzMaxCopy {
			cnt := ctrl + 1
			if op+cnt > n {
				return nil, FormatError(fmt.Sprintf("LZ literal run of %d past the image end (%d of %d)", cnt, op, n))
			}
			if p+cnt*unitBytes > len(src) {
				return nil, errLZTruncated
			}
			switch unitBytes {
			case 1:
				for i := 0; i < cnt; i++ {
					out[op+i] = uint32(src[p+i])
				}
			case 2:
				for i := 0; i < cnt; i++ {
					out[op+i] = uint32(src[p+2*i]) | uint32(src[p+2*i+1])<<8
				}
			case 3:
				for i := 0; i < cnt; i++ {
					s := src[p+3*i : p+3*i+3]
					out[op+i] = uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16
				}
			}
			p += cnt * unitBytes
			op += cnt
			continue
		}
		length := ctrl>>5 - 1
		ofs := (ctrl & 31) << 8
		if length == 6 {
			for {
				if p >= len(src) {
					return nil, errLZTruncated
				}
				code := int(src[p])
				p++
				length += code
				if code != 255 {
					break
				}
			}
		}
		if p >= len(src) {
			return nil, errLZTruncated
		}
		code := int(src[p])
		p++
		ofs += code
		if code == 255 && ofs-code == 31<<8 {
			if p+2 > len(src) {
				return nil, errLZTruncated
			}
			ofs = int(src[p])<<8 | int(src[p+1]) + lzMaxDistance
			p += 2
		}
		length += bias
		ofs++
		ref := op - ofs
		if ref < 0 || op+length > n {
			return nil, FormatError(fmt.Sprintf("LZ match (distance %d, length %d) outside the image at %d of %d", ofs, length, op, n))
		}
		if ofs == 1 {
			v := out[ref]
			run := out[op : op+length]
			for i := range run {
				run[i] = v
			}
		} else {
			for i := 0; i < length; i++ {
				out[op+i] = out[ref+i]
			}
		}
		op += length
	}
	d.pos = p
	return out, nil
}
