package spice

import (
	"encoding/binary"
	"fmt"

	"kvmgate/framebuffer"
)

// lz4MaxRatio bounds how much output one input byte may claim: an LZ4 match
// grows by 255 bytes per length byte, so a stream shorter than out/256 is
// lying about its size.
const lz4MaxRatio = 256

// DecodeLZ4 decodes a SPICE LZ4 image of w×h pixels (the size comes from the
// image descriptor) to an RGBA canvas.
//
// The stream is a top-down flag byte, a SPICE bitmap format byte (16, 24,
// 32 bit or RGBA) and a sequence of blocks, each a big-endian uint32 length
// and an LZ4 block. The blocks are linked: a match may reach back into the
// output of earlier blocks. Together they decompress to the image rows,
// packed (width × bytes per pixel each), in memory order: bottom row first
// unless the flag says top-down.
func DecodeLZ4(data []byte, w, h int) (*framebuffer.Canvas, error) {
	if len(data) < 2 {
		return nil, FormatError(fmt.Sprintf("LZ4 image of %d bytes", len(data)))
	}
	if w <= 0 || h <= 0 || framebuffer.CheckSize(w, h) != nil {
		return nil, FormatError(fmt.Sprintf("LZ4 image of %dx%d", w, h))
	}
	topDown, format := data[0] != 0, BitmapFormat(data[1])
	var bpp int
	switch format {
	case Bitmap16Bit:
		bpp = 2
	case Bitmap24Bit:
		bpp = 3
	case Bitmap32Bit, BitmapRGBA:
		bpp = 4
	default:
		return nil, FormatError(fmt.Sprintf("LZ4 image in bitmap format %d", format))
	}
	stride := w * bpp
	size := stride * h
	if uint64(size) > lz4MaxRatio*uint64(len(data)) {
		return nil, FormatError(fmt.Sprintf("LZ4 image of %dx%d in %d bytes", w, h, len(data)))
	}
	// 32-bit pixels decompress straight into the canvas and are swizzled
	// in place; the other formats go through a buffer and DecodeBitmap.
	var c *framebuffer.Canvas
	var out []byte
	if bpp == 4 {
		var err error
		if c, err = framebuffer.NewCanvas(w, h); err != nil {
			return nil, err
		}
		if c.Stride != stride {
			c = nil
		} else {
			out = c.Pix[:0:size]
		}
	}
	if out == nil {
		out = make([]byte, 0, size)
	}
	src := data[2:]
	for blk := 0; len(src) > 0; blk++ {
		if len(src) < 4 {
			return nil, FormatError(fmt.Sprintf("LZ4 block %d: truncated length", blk))
		}
		n := binary.BigEndian.Uint32(src)
		src = src[4:]
		if uint64(n) > uint64(len(src)) {
			return nil, FormatError(fmt.Sprintf("LZ4 block %d of %d bytes, %d left", blk, n, len(src)))
		}
		var err error
		if out, err = lz4Block(out, src[:n]); err != nil {
			return nil, fmt.Errorf("spice: LZ4 block %d: %w", blk, err)
		}
		src = src[n:]
	}
	if len(out) != size {
		return nil, FormatError(fmt.Sprintf("LZ4 image of %dx%d decompressed to %d bytes, want %d", w, h, len(out), size))
	}
	if c == nil {
		return DecodeBitmap(format, w, h, stride, topDown, out, nil)
	}
	p := c.Pix[:size]
	if format == BitmapRGBA {
		for i := 0; i+3 < len(p); i += 4 {
			p[i], p[i+2] = p[i+2], p[i]
		}
	} else {
		for i := 0; i+3 < len(p); i += 4 {
			p[i], p[i+2], p[i+3] = p[i+2], p[i], 0xff
		}
	}
	if !topDown {
		flipRows(c)
	}
	return c, nil
}

// lz4Block decompresses one LZ4 block, appending to out, whose earlier
// bytes matches may refer to. It never grows out beyond its capacity.
func lz4Block(out, src []byte) ([]byte, error) {
	p := 0
	for {
		if p >= len(src) {
			return nil, FormatError("block ends before its last sequence")
		}
		token := src[p]
		p++
		lit := int(token >> 4)
		if lit == 15 {
			var err error
			if lit, p, err = lz4Length(src, p, lit); err != nil {
				return nil, err
			}
		}
		if lit > len(src)-p {
			return nil, FormatError(fmt.Sprintf("%d literals with %d bytes left", lit, len(src)-p))
		}
		if lit > cap(out)-len(out) {
			return nil, FormatError(fmt.Sprintf("%d literals past the image end", lit))
		}
		out = append(out, src[p:p+lit]...)
		p += lit
		if p == len(src) {
			return out, nil // the last sequence has literals only
		}
		if len(src)-p < 2 {
			return nil, FormatError("truncated match offset")
		}
		off := int(src[p]) | int(src[p+1])<<8
		p += 2
		if off == 0 || off > len(out) {
			return nil, FormatError(fmt.Sprintf("match offset %d with %d bytes decoded", off, len(out)))
		}
		ml := int(token & 15)
		if ml == 15 {
			var err error
			if ml, p, err = lz4Length(src, p, ml); err != nil {
				return nil, err
			}
		}
		ml += 4
		if ml > cap(out)-len(out) {
			return nil, FormatError(fmt.Sprintf("match of %d bytes past the image end", ml))
		}
		start := len(out) - off
		if off >= ml {
			out = append(out, out[start:start+ml]...)
			continue
		}
		// Overlapping match: the bytes from start on repeat with period
		// off, and so does any multiple of off of them, so the copy can
		// double each time.
		for ml > 0 {
			k := min(len(out)-start, ml)
			out = append(out, out[start:start+k]...)
			ml -= k
		}
	}
}

// lz4Length reads the extra bytes of a literal or match length that started
// at 15: each byte adds itself, and 255 means another byte follows.
func lz4Length(src []byte, p, n int) (int, int, error) {
	for {
		if p >= len(src) {
			return 0, p, FormatError("truncated length")
		}
		b := src[p]
		p++
		n += int(b)
		if n > 1<<30 {
			return 0, p, FormatError("length overflow")
		}
		if b != 255 {
			return n, p, nil
		}
	}
}
