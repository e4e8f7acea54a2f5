package rfbserver

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"

	"kvmgate/framebuffer"
)

// Tight (7) and TightPNG (-260), server side.
//
// Each rectangle is sent with one method, picked from its colours:
//
//	one colour            fill: a single TPIXEL
//	two colours           Tight: palette filter, 1 bit per pixel
//	up to the palette cap Tight: palette filter, 1 byte per pixel
//	more, JPEG allowed    JPEG at the client's quality level
//	more, lossless        Tight: copy filter (TPIXELs)
//
// TightPNG has no basic compression: what Tight sends filtered goes as a
// PNG image instead (paletted when the colours fit). JPEG is allowed only
// when the client sent a quality level pseudo-encoding, the pixel format
// has 24-bit TPIXELs, and the sender has not asked for lossless output
// (refinement of areas sent as JPEG).
//
// Filtered data goes through one of four zlib streams that live as long as
// the connection (0: copy, 1: two-colour palettes, 2: larger palettes), at
// the zlib level matching the client's compression level; less than 12
// bytes are sent as they are.

// Limits of one Tight rectangle, as the decoders expect them.
const (
	tightMaxWidth  = 2048
	tightMaxPixels = 65536
	// tightMinJPEG is the smallest area worth a JPEG (its headers alone
	// are about 600 bytes).
	tightMinJPEG = 256
)

// Compression-control methods (high nibble).
const (
	tightCtlFill    = 0x80
	tightCtlJPEG    = 0x90
	tightCtlPNG     = 0xa0
	tightCtlFilter  = 0x40 // basic compression: a filter byte follows
	tightFilterPal  = 1
	tightMinDeflate = 12
)

// Zlib streams by use.
const (
	tightStreamCopy = 0
	tightStreamMono = 1
	tightStreamPal  = 2
)

// jpegQuality maps the client's quality level 0..9 to a JPEG quality.
var jpegQuality = [10]int{15, 25, 35, 45, 55, 65, 75, 82, 90, 95}

// tightPaletteCap returns the most colours sent as a palette at compression
// level c when JPEG is allowed: low levels favour speed and JPEG, high
// levels palettes. Without JPEG any 256 colours make a palette.
func tightPaletteCap(c int) int {
	switch {
	case c <= 1:
		return 16
	case c <= 5:
		return 32
	default:
		return 96
	}
}

// tightEncoder encodes Tight or (png set) TightPNG rectangles.
type tightEncoder struct {
	png bool

	// Set through setLevels and setLossless before encode.
	quality  int // JPEG quality level 0..9, -1 for none
	compress int // compression level 0..9
	lossless bool

	// lossyOut says whether the last encode sent JPEG.
	lossyOut bool

	streams [4]tightStream

	// Colour analysis of one rectangle.
	colours []uint32 // distinct 0xBBGGRR values in first-seen order
	keys    [512]uint32
	slot    [512]uint16 // index+1 into colours, 0 when empty

	plain []byte
	img   bytes.Buffer
}

// tightStream is one of the connection's four zlib streams.
type tightStream struct {
	zw    *zlib.Writer
	out   bytes.Buffer
	level int
}

func newTightEncoder(pngMode bool) *tightEncoder {
	return &tightEncoder{png: pngMode, quality: -1, compress: 6}
}

// setLevels records the client's quality (-1: none sent) and compression
// levels.
func (e *tightEncoder) setLevels(quality, compress int) {
	e.quality = quality
	if compress < 0 {
		compress = 6
	}
	e.compress = min(compress, 9)
}

// setLossless forbids (or allows again) JPEG.
func (e *tightEncoder) setLossless(on bool) { e.lossless = on }

// lastLossy reports whether the last rectangle went out as JPEG.
func (e *tightEncoder) lastLossy() bool { return e.lossyOut }

// tpixel reports whether pw's pixels travel as 3-byte TPIXELs.
func tpixel(pw *pixelWriter) bool {
	pf := pw.pf
	return pf.TrueColour && pf.BitsPerPixel == 32 && pf.Depth == 24 &&
		pf.RedMax == 255 && pf.GreenMax == 255 && pf.BlueMax == 255
}

// appendTPixel appends the colour c (0xBBGGRR) as a TPIXEL.
func appendTPixel(dst []byte, c uint32, tpx bool, pw *pixelWriter) []byte {
	if tpx {
		return append(dst, byte(c), byte(c>>8), byte(c>>16))
	}
	return pw.appendPixel(dst, pw.r[byte(c)]|pw.g[byte(c>>8)]|pw.b[byte(c>>16)])
}

// appendCompactLen appends Tight's 1–3 byte length.
func appendCompactLen(dst []byte, n int) []byte {
	switch {
	case n < 1<<7:
		return append(dst, byte(n))
	case n < 1<<14:
		return append(dst, byte(n)|0x80, byte(n>>7))
	default:
		return append(dst, byte(n)|0x80, byte(n>>7)|0x80, byte(n>>14))
	}
}

// countColours collects up to limit+1 distinct colours of r into
// e.colours and returns how many it found (limit+1 means "more").
func (e *tightEncoder) countColours(src *framebuffer.Canvas, r framebuffer.Rect, limit int) int {
	e.colours = e.colours[:0]
	clear(e.slot[:])
	last, lastOK := uint32(0), false
	for y := r.Y; y < r.Y+r.H; y++ {
		row := src.Row(r.X, y, r.W)
		for i := 0; i < len(row); i += 4 {
			c := uint32(row[i]) | uint32(row[i+1])<<8 | uint32(row[i+2])<<16
			if lastOK && c == last {
				continue
			}
			last, lastOK = c, true
			if e.index(c, true) < 0 {
				return limit + 1 // the table is full
			}
			if len(e.colours) > limit {
				return len(e.colours)
			}
		}
	}
	return len(e.colours)
}

// index returns c's palette index, adding it when add is set (and the
// table has room); -1 when it is missing and cannot be added.
func (e *tightEncoder) index(c uint32, add bool) int {
	h := (c * 0x9e3779b1) >> 23 // 9 bits
	for range len(e.slot) {
		s := e.slot[h]
		if s == 0 {
			if !add || len(e.colours) >= len(e.slot)/2 {
				return -1
			}
			e.colours = append(e.colours, c)
			e.keys[h] = c
			e.slot[h] = uint16(len(e.colours))
			return len(e.colours) - 1
		}
		if e.keys[h] == c {
			return int(s) - 1
		}
		h = (h + 1) & uint32(len(e.slot)-1)
	}
	return -1
}

func (e *tightEncoder) encode(dst []byte, src *framebuffer.Canvas, r framebuffer.Rect, pw *pixelWriter) ([]byte, error) {
	e.lossyOut = false
	tpx := tpixel(pw)
	jpegOK := e.quality >= 0 && !e.lossless && tpx && r.Area() >= tightMinJPEG
	palCap := 256
	if jpegOK {
		palCap = tightPaletteCap(e.compress)
	}
	n := e.countColours(src, r, palCap)
	switch {
	case n == 1:
		dst = append(dst, tightCtlFill)
		return appendTPixel(dst, e.colours[0], tpx, pw), nil
	case n <= palCap:
		if e.png {
			return e.pngRect(dst, src, r, true)
		}
		return e.paletteRect(dst, src, r, tpx, pw)
	case jpegOK:
		e.lossyOut = true
		return e.jpegRect(dst, src, r)
	case e.png:
		return e.pngRect(dst, src, r, false)
	default:
		return e.copyRect(dst, src, r, tpx, pw)
	}
}

// paletteRect sends r with the palette filter; e.colours holds its colours.
func (e *tightEncoder) paletteRect(dst []byte, src *framebuffer.Canvas, r framebuffer.Rect, tpx bool, pw *pixelWriter) ([]byte, error) {
	n := len(e.colours)
	e.plain = e.plain[:0]
	stream := tightStreamPal
	if n == 2 {
		stream = tightStreamMono
		for y := r.Y; y < r.Y+r.H; y++ {
			row := src.Row(r.X, y, r.W)
			var acc byte
			bit := 0
			for i := 0; i < len(row); i += 4 {
				c := uint32(row[i]) | uint32(row[i+1])<<8 | uint32(row[i+2])<<16
				if c == e.colours[1] {
					acc |= 0x80 >> bit
				}
				if bit++; bit == 8 {
					e.plain = append(e.plain, acc)
					acc, bit = 0, 0
				}
			}
			if bit > 0 {
				e.plain = append(e.plain, acc)
			}
		}
	} else {
		for y := r.Y; y < r.Y+r.H; y++ {
			row := src.Row(r.X, y, r.W)
			for i := 0; i < len(row); i += 4 {
				c := uint32(row[i]) | uint32(row[i+1])<<8 | uint32(row[i+2])<<16
				e.plain = append(e.plain, byte(e.index(c, false)))
			}
		}
	}
	hdr := len(dst)
	dst = append(dst, tightCtlFilter|byte(stream)<<4, tightFilterPal, byte(n-1))
	for _, c := range e.colours {
		dst = appendTPixel(dst, c, tpx, pw)
	}
	return e.deflate(dst, hdr, stream, r)
}

// copyRect sends r with the copy filter (no filter byte).
func (e *tightEncoder) copyRect(dst []byte, src *framebuffer.Canvas, r framebuffer.Rect, tpx bool, pw *pixelWriter) ([]byte, error) {
	e.plain = e.plain[:0]
	for y := r.Y; y < r.Y+r.H; y++ {
		row := src.Row(r.X, y, r.W)
		if tpx {
			for i := 0; i < len(row); i += 4 {
				e.plain = append(e.plain, row[i], row[i+1], row[i+2])
			}
		} else {
			e.plain = pw.appendRow(e.plain, row, r.W)
		}
	}
	hdr := len(dst)
	dst = append(dst, byte(tightStreamCopy)<<4)
	return e.deflate(dst, hdr, tightStreamCopy, r)
}

// deflate appends e.plain, compressed on stream unless it is short; hdr is
// the offset of the compression-control byte, whose reset bit it may set.
func (e *tightEncoder) deflate(dst []byte, hdr, stream int, r framebuffer.Rect) ([]byte, error) {
	if len(e.plain) < tightMinDeflate {
		return append(dst, e.plain...), nil
	}
	level := max(1, e.compress)
	s := &e.streams[stream]
	if s.zw == nil || s.level != level {
		var err error
		if s.zw, err = zlib.NewWriterLevel(&s.out, level); err != nil {
			return dst, fmt.Errorf("rfbserver: tight rect %v: %w", r, err)
		}
		if s.level != 0 {
			dst[hdr] |= 1 << stream // the client resets its stream too
		}
		s.level = level
	}
	s.out.Reset()
	if _, err := s.zw.Write(e.plain); err != nil {
		return dst, fmt.Errorf("rfbserver: tight rect %v: %w", r, err)
	}
	if err := s.zw.Flush(); err != nil {
		return dst, fmt.Errorf("rfbserver: tight rect %v: %w", r, err)
	}
	dst = appendCompactLen(dst, s.out.Len())
	return append(dst, s.out.Bytes()...), nil
}

// rgbaImage wraps r of src as an image without copying.
func rgbaImage(src *framebuffer.Canvas, r framebuffer.Rect) *image.RGBA {
	off := src.Offset(r.X, r.Y)
	end := src.Offset(r.X+r.W-1, r.Y+r.H-1) + framebuffer.BytesPerPixel
	return &image.RGBA{Pix: src.Pix[off:end:end], Stride: src.Stride, Rect: image.Rect(0, 0, r.W, r.H)}
}

// jpegRect sends r as a JPEG image at the client's quality.
func (e *tightEncoder) jpegRect(dst []byte, src *framebuffer.Canvas, r framebuffer.Rect) ([]byte, error) {
	e.img.Reset()
	q := jpegQuality[min(max(e.quality, 0), 9)]
	if err := jpeg.Encode(&e.img, rgbaImage(src, r), &jpeg.Options{Quality: q}); err != nil {
		return dst, fmt.Errorf("rfbserver: tight jpeg rect %v: %w", r, err)
	}
	dst = append(dst, tightCtlJPEG)
	dst = appendCompactLen(dst, e.img.Len())
	return append(dst, e.img.Bytes()...), nil
}

// pngRect sends r as a PNG image, paletted when e.colours holds all its
// colours.
func (e *tightEncoder) pngRect(dst []byte, src *framebuffer.Canvas, r framebuffer.Rect, paletted bool) ([]byte, error) {
	e.img.Reset()
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if e.compress >= 6 {
		enc.CompressionLevel = png.DefaultCompression
	}
	// image/png has fast paths for *image.RGBA and *image.Paletted, and
	// writes 8-bit RGB for an opaque RGBA image.
	var img image.Image = rgbaImage(src, r)
	if paletted {
		p := image.NewPaletted(image.Rect(0, 0, r.W, r.H), nil)
		p.Palette = make(color.Palette, len(e.colours))
		for i, c := range e.colours {
			p.Palette[i] = color.RGBA{byte(c), byte(c >> 8), byte(c >> 16), 255}
		}
		for y := 0; y < r.H; y++ {
			row := src.Row(r.X, r.Y+y, r.W)
			out := p.Pix[y*p.Stride : y*p.Stride+r.W]
			for x := range out {
				i := 4 * x
				out[x] = byte(e.index(uint32(row[i])|uint32(row[i+1])<<8|uint32(row[i+2])<<16, false))
			}
		}
		img = p
	}
	if err := enc.Encode(&e.img, img); err != nil {
		return dst, fmt.Errorf("rfbserver: tightpng rect %v: %w", r, err)
	}
	dst = append(dst, tightCtlPNG)
	dst = appendCompactLen(dst, e.img.Len())
	return append(dst, e.img.Bytes()...), nil
}
