package rfb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"image/jpeg"
	"image/png"

	"kvmgate/framebuffer"
)

// Tight encoding (7) and its TightPNG variant (-260).
//
// Each rectangle starts with a compression-control byte: its low four bits
// ask for zlib streams 0..3 to be reset, its high four bits pick the method:
//
//	0sff  basic compression on zlib stream ff; s: a filter-id byte follows
//	1000  fill: one TPIXEL for the whole rectangle
//	1001  JPEG: compact length, then a JFIF image
//	1010  Tight: basic compression without zlib; TightPNG: a PNG image
//	1110  Tight: basic compression without zlib, filter-id byte follows
//
// Basic compression filters the pixels (copy, palette or gradient), then
// deflates them on the chosen stream, except that fewer than 12 bytes of
// filtered data are sent as they are. A TPIXEL is R, G, B bytes when the
// pixel format is 32 bpp, depth 24 true colour with 8-bit channels, and a
// full pixel otherwise.

func init() {
	register(EncodingTight, func() decoder { return &tightDecoder{} })
}

// Compression methods: the high nibble of the compression-control byte.
const (
	tightFill       = 0x8
	tightJPEG       = 0x9
	tightNoZlib     = 0xa // TightPNG: PNG
	tightNoZlibFilt = 0xe
)

// Filter ids of basic compression.
const (
	tightFilterCopy     = 0
	tightFilterPalette  = 1
	tightFilterGradient = 2
)

// tightMinToCompress is the filtered size from which data is deflated.
const tightMinToCompress = 12

// tightMaxImage bounds a JPEG or PNG payload (the compact length's own
// ceiling is 4 MiB); tightImageBound further bounds it by the rectangle.
const tightMaxImage = 1<<22 - 1

func tightImageBound(r framebuffer.Rect) int {
	return min(8*r.Area()+64<<10, tightMaxImage, maxRectPayload)
}

// tightDecoder decodes Tight rectangles; with png set, TightPNG ones. It
// keeps the connection's four zlib streams and reusable row buffers.
type tightDecoder struct {
	png     bool
	streams [4]zstream
	pal     [256]uint32
	rows    []byte   // filtered data of one row
	prev    []byte   // gradient: previous row, 3 bytes per pixel (24-bit TPIXEL)
	cur     []byte   // gradient: current row (24-bit TPIXEL)
	prevC   []uint16 // gradient: previous row's components (other formats)
	curC    []uint16
}

func (t *tightDecoder) name() string {
	if t.png {
		return "tightpng"
	}
	return "tight"
}

func (t *tightDecoder) decode(d *decodeContext, r framebuffer.Rect) error {
	if err := t.decodeRect(d, r); err != nil {
		return fmt.Errorf("rfb: %s rect %v: %w", t.name(), r, err)
	}
	return nil
}

func (t *tightDecoder) decodeRect(d *decodeContext, r framebuffer.Rect) error {
	ctl, err := d.r.u8()
	if err != nil {
		return err
	}
	for i := range t.streams {
		if ctl&(1<<i) != 0 {
			t.streams[i].reset()
		}
	}
	method := ctl >> 4
	switch {
	case method == tightFill:
		return t.fill(d, r)
	case method == tightJPEG:
		return t.image(d, r, false)
	case method == tightNoZlib && t.png:
		return t.image(d, r, true)
	case method == tightNoZlib:
		return t.basic(d, r, -1, false)
	case method == tightNoZlibFilt && !t.png:
		return t.basic(d, r, -1, true)
	case method < 8:
		// TightPNG forbids basic compression, but it costs nothing to
		// accept it from a server that falls back to it.
		return t.basic(d, r, int(method&3), method&4 != 0)
	}
	return fmt.Errorf("invalid compression control byte %#02x", ctl)
}

// tpixelSize returns the size of a TPIXEL in format pf; 3 means R, G, B.
func tpixelSize(pf *PixelFormat) int {
	if pf.TrueColour && pf.BitsPerPixel == 32 && pf.Depth == 24 &&
		pf.RedMax == 255 && pf.GreenMax == 255 && pf.BlueMax == 255 {
		return 3
	}
	return pf.BytesPerPixel()
}

// tpixel converts one TPIXEL of size ts to packed RGBA.
func tpixel(c *converter, b []byte, ts int) uint32 {
	if ts == 3 {
		return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | 0xff000000
	}
	return c.pixel(b)
}

// tpixelRow converts n TPIXELs of size ts from src to RGBA at dst.
func tpixelRow(c *converter, dst, src []byte, n, ts int) {
	if ts != 3 {
		c.row(dst, src, n)
		return
	}
	dst = dst[:4*n]
	src = src[:3*n]
	for i, j := 0, 0; i < len(dst); i, j = i+4, j+3 {
		dst[i], dst[i+1], dst[i+2], dst[i+3] = src[j], src[j+1], src[j+2], 0xff
	}
}

func (t *tightDecoder) fill(d *decodeContext, r framebuffer.Rect) error {
	ts := tpixelSize(&d.pf)
	b, err := d.r.readN(ts, 4)
	if err != nil {
		return err
	}
	d.canvas.Fill(r, tpixel(d.conv, b, ts))
	return nil
}

// basic decodes basic compression: stream is the zlib stream, or -1 for
// data sent without zlib.
func (t *tightDecoder) basic(d *decodeContext, r framebuffer.Rect, stream int, readFilter bool) error {
	filter := byte(tightFilterCopy)
	if readFilter {
		var err error
		if filter, err = d.r.u8(); err != nil {
			return err
		}
	}
	ts := tpixelSize(&d.pf)
	var rowLen, colours int
	switch filter {
	case tightFilterCopy:
		rowLen = r.W * ts
	case tightFilterPalette:
		n, err := d.r.u8()
		if err != nil {
			return err
		}
		colours = int(n) + 1
		raw, err := d.r.readN(colours*ts, 256*4)
		if err != nil {
			return err
		}
		for i := 0; i < colours; i++ {
			t.pal[i] = tpixel(d.conv, raw[i*ts:], ts)
		}
		if colours == 2 {
			rowLen = (r.W + 7) / 8
		} else {
			rowLen = r.W
		}
	case tightFilterGradient:
		if !d.pf.TrueColour {
			return errors.New("gradient filter with a colour-map pixel format")
		}
		rowLen = r.W * ts
	default:
		return fmt.Errorf("unknown filter id %d", filter)
	}
	size := rowLen * r.H

	// src delivers the filtered data one row at a time.
	var src func([]byte) error
	if stream < 0 || size < tightMinToCompress {
		src = d.r.full
	} else {
		n, err := d.r.compactLength()
		if err != nil {
			return err
		}
		z := &t.streams[stream]
		if err := z.feed(d.r, int64(n), size); err != nil {
			return fmt.Errorf("stream %d: %w", stream, err)
		}
		src = func(p []byte) error {
			if err := z.read(p); err != nil {
				return fmt.Errorf("stream %d: %w", stream, err)
			}
			return nil
		}
	}

	if cap(t.rows) < rowLen {
		t.rows = make([]byte, rowLen)
	}
	row := t.rows[:rowLen]
	switch filter {
	case tightFilterCopy:
		for y := 0; y < r.H; y++ {
			if err := src(row); err != nil {
				return err
			}
			tpixelRow(d.conv, d.canvas.Row(r.X, r.Y+y, r.W), row, r.W, ts)
		}
	case tightFilterPalette:
		for y := 0; y < r.H; y++ {
			if err := src(row); err != nil {
				return err
			}
			dst := d.canvas.Row(r.X, r.Y+y, r.W)
			if colours == 2 {
				t.mono(dst, row, r.W)
			} else if err := t.indexed(dst, row, colours); err != nil {
				return fmt.Errorf("row %d: %w", y, err)
			}
		}
	case tightFilterGradient:
		if ts == 3 {
			return t.gradient24(d, r, src, row)
		}
		return t.gradient(d, r, src, row)
	}
	return nil
}

// mono paints a row of w 1-bit palette indices, most significant bit first.
func (t *tightDecoder) mono(dst, src []byte, w int) {
	c0, c1 := t.pal[0], t.pal[1]
	full := w / 8
	for i := 0; i < full; i++ {
		b := src[i]
		o := dst[32*i : 32*i+32]
		for k := 0; k < 8; k++ {
			c := c0
			if b&(0x80>>k) != 0 {
				c = c1
			}
			binary.LittleEndian.PutUint32(o[4*k:], c)
		}
	}
	for x := full * 8; x < w; x++ {
		c := c0
		if src[x>>3]&(0x80>>(x&7)) != 0 {
			c = c1
		}
		binary.LittleEndian.PutUint32(dst[4*x:], c)
	}
}

// indexed paints a row of 8-bit palette indices.
func (t *tightDecoder) indexed(dst, src []byte, colours int) error {
	dst = dst[:4*len(src)]
	for x, idx := range src {
		if int(idx) >= colours {
			return fmt.Errorf("palette index %d beyond %d colours", idx, colours)
		}
		binary.LittleEndian.PutUint32(dst[4*x:], t.pal[idx])
	}
	return nil
}

// gradient24 undoes the gradient filter for 24-bit TPIXELs: each byte is
// the difference, modulo 256, from the prediction left + above - above-left
// clamped to 0..255, with pixels outside the rectangle taken as zero.
func (t *tightDecoder) gradient24(d *decodeContext, r framebuffer.Rect, src func([]byte) error, row []byte) error {
	n := 3 * r.W
	if cap(t.prev) < n {
		t.prev = make([]byte, n)
		t.cur = make([]byte, n)
	}
	prev, cur := t.prev[:n], t.cur[:n]
	clear(prev)
	for y := 0; y < r.H; y++ {
		if err := src(row); err != nil {
			return err
		}
		dst := d.canvas.Row(r.X, r.Y+y, r.W)
		var lr, lg, lb, ur, ug, ub int // left and upper-left components
		for x, i := 0, 0; i < n; x, i = x+1, i+3 {
			pr := clamp255(int(prev[i]) + lr - ur)
			pg := clamp255(int(prev[i+1]) + lg - ug)
			pb := clamp255(int(prev[i+2]) + lb - ub)
			vr, vg, vb := byte(pr+int(row[i])), byte(pg+int(row[i+1])), byte(pb+int(row[i+2]))
			cur[i], cur[i+1], cur[i+2] = vr, vg, vb
			o := 4 * x
			dst[o], dst[o+1], dst[o+2], dst[o+3] = vr, vg, vb, 0xff
			lr, lg, lb = int(vr), int(vg), int(vb)
			ur, ug, ub = int(prev[i]), int(prev[i+1]), int(prev[i+2])
		}
		prev, cur = cur, prev
	}
	return nil
}

func clamp255(v int) int {
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return v
}

// gradient undoes the gradient filter for full-pixel TPIXELs: the filter
// works on each colour component (0..max) of the pixel value, and each
// filtered pixel holds the differences, modulo max+1, in the same fields.
func (t *tightDecoder) gradient(d *decodeContext, r framebuffer.Rect, src func([]byte) error, row []byte) error {
	n := 3 * r.W
	if cap(t.prevC) < n {
		t.prevC = make([]uint16, n)
		t.curC = make([]uint16, n)
	}
	prev, cur := t.prevC[:n], t.curC[:n]
	clear(prev)
	c := d.conv
	pf := &c.pf
	bpp := c.bpp
	shift := [3]uint8{pf.RedShift, pf.GreenShift, pf.BlueShift}
	maxv := [3]int{int(pf.RedMax), int(pf.GreenMax), int(pf.BlueMax)}
	for y := 0; y < r.H; y++ {
		if err := src(row); err != nil {
			return err
		}
		dst := d.canvas.Row(r.X, r.Y+y, r.W)
		var left, upLeft [3]int
		for x := 0; x < r.W; x++ {
			v := c.value(row[x*bpp:])
			i := 3 * x
			for k := 0; k < 3; k++ {
				p := int(prev[i+k]) + left[k] - upLeft[k]
				if p < 0 {
					p = 0
				} else if p > maxv[k] {
					p = maxv[k]
				}
				diff := int(v>>shift[k]) & maxv[k]
				comp := (p + diff) & maxv[k]
				cur[i+k] = uint16(comp)
				left[k] = comp
				upLeft[k] = int(prev[i+k])
			}
			o := 4 * x
			dst[o], dst[o+1], dst[o+2], dst[o+3] = c.rTab[cur[i]], c.gTab[cur[i+1]], c.bTab[cur[i+2]], 0xff
		}
		prev, cur = cur, prev
	}
	return nil
}

// image decodes a JPEG (or, for TightPNG, PNG) rectangle.
func (t *tightDecoder) image(d *decodeContext, r framebuffer.Rect, isPNG bool) error {
	kind := "jpeg"
	if isPNG {
		kind = "png"
	}
	n, err := d.r.compactLength()
	if err != nil {
		return err
	}
	data, err := d.r.readN(n, tightImageBound(r))
	if err != nil {
		return fmt.Errorf("%s: %w", kind, err)
	}
	// Check the announced size before decoding: the decoders allocate the
	// whole picture from the header.
	var cfg image.Config
	if isPNG {
		cfg, err = png.DecodeConfig(bytes.NewReader(data))
	} else {
		cfg, err = jpeg.DecodeConfig(bytes.NewReader(data))
	}
	if err != nil {
		return fmt.Errorf("%s header: %w", kind, err)
	}
	if cfg.Width != r.W || cfg.Height != r.H {
		return fmt.Errorf("%s is %dx%d, rectangle is %dx%d", kind, cfg.Width, cfg.Height, r.W, r.H)
	}
	var img image.Image
	if isPNG {
		img, err = png.Decode(bytes.NewReader(data))
	} else {
		img, err = jpeg.Decode(bytes.NewReader(data))
	}
	if err != nil {
		return fmt.Errorf("%s: %w", kind, err)
	}
	if b := img.Bounds(); b.Dx() != r.W || b.Dy() != r.H {
		return fmt.Errorf("%s decoded to %dx%d, rectangle is %dx%d", kind, b.Dx(), b.Dy(), r.W, r.H)
	}
	paintImage(d.canvas, r, img)
	return nil
}

// paintImage copies img, the size of r, into the canvas at r, opaque.
func paintImage(cv *framebuffer.Canvas, r framebuffer.Rect, img image.Image) {
	b := img.Bounds()
	switch m := img.(type) {
	case *image.YCbCr:
		if ycbcrToRGBA(cv, r, m) {
			return
		}
	case *image.Gray:
		for y := 0; y < r.H; y++ {
			src := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:r.W]
			dst := cv.Row(r.X, r.Y+y, r.W)
			for x, g := range src {
				dst[4*x], dst[4*x+1], dst[4*x+2], dst[4*x+3] = g, g, g, 0xff
			}
		}
		return
	case *image.RGBA:
		copyOpaque(cv, r, m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride)
		return
	case *image.NRGBA:
		// Servers send opaque pictures; any alpha is dropped.
		copyOpaque(cv, r, m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride)
		return
	case *image.Paletted:
		var pal [256]uint32
		for i, c := range m.Palette {
			if i >= len(pal) {
				break
			}
			cr, cg, cb, _ := c.RGBA()
			pal[i] = cr>>8 | (cg>>8)<<8 | (cb>>8)<<16 | 0xff000000
		}
		for i := len(m.Palette); i < len(pal); i++ {
			pal[i] = 0xff000000
		}
		for y := 0; y < r.H; y++ {
			src := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:r.W]
			dst := cv.Row(r.X, r.Y+y, r.W)
			for x, idx := range src {
				binary.LittleEndian.PutUint32(dst[4*x:], pal[idx])
			}
		}
		return
	}
	// Rare layouts (16-bit PNG, CMYK JPEG...): let image/draw convert.
	tmp := image.NewRGBA(image.Rect(0, 0, r.W, r.H))
	draw.Draw(tmp, tmp.Rect, img, b.Min, draw.Src)
	copyOpaque(cv, r, tmp.Pix, tmp.Stride)
}

// copyOpaque copies r.H rows of RGBA pixels from src (rows stride apart)
// into the canvas at r, setting alpha to 255.
func copyOpaque(cv *framebuffer.Canvas, r framebuffer.Rect, src []byte, stride int) {
	n := 4 * r.W
	for y := 0; y < r.H; y++ {
		dst := cv.Row(r.X, r.Y+y, r.W)
		copy(dst, src[y*stride:y*stride+n])
		for i := 3; i < n; i += 4 {
			dst[i] = 0xff
		}
	}
}

// JFIF YCbCr → RGB in 16.16 fixed point, one table per term.
var ycc = func() (t struct{ crR, cbB, cbG, crG [256]int32 }) {
	for i := range 256 {
		v := int32(i - 128)
		t.crR[i] = 91881 * v  // 1.402
		t.cbB[i] = 116130 * v // 1.772
		t.cbG[i] = -22554 * v // -0.344136
		t.crG[i] = -46802 * v // -0.714136
	}
	return t
}()

func clampFix(v int32) byte {
	v >>= 16
	if uint32(v) > 255 {
		if v < 0 {
			return 0
		}
		return 255
	}
	return byte(v)
}

// ycbcrToRGBA converts a decoded JPEG into the canvas. It reports false
// for a subsampling layout it does not know.
func ycbcrToRGBA(cv *framebuffer.Canvas, r framebuffer.Rect, m *image.YCbCr) bool {
	var hs, vs uint // chroma subsampling shifts
	switch m.SubsampleRatio {
	case image.YCbCrSubsampleRatio444:
	case image.YCbCrSubsampleRatio422:
		hs = 1
	case image.YCbCrSubsampleRatio420:
		hs, vs = 1, 1
	case image.YCbCrSubsampleRatio440:
		vs = 1
	case image.YCbCrSubsampleRatio411:
		hs = 2
	case image.YCbCrSubsampleRatio410:
		hs, vs = 2, 1
	default:
		return false
	}
	if m.Rect.Min != (image.Point{}) {
		return false
	}
	for y := 0; y < r.H; y++ {
		yrow := m.Y[y*m.YStride:][:r.W]
		crow := (y >> vs) * m.CStride
		cbRow := m.Cb[crow:]
		crRow := m.Cr[crow:]
		dst := cv.Row(r.X, r.Y+y, r.W)
		for x, yy := range yrow {
			ci := x >> hs
			cb, cr := cbRow[ci], crRow[ci]
			y1 := int32(yy)<<16 + 1<<15
			o := 4 * x
			dst[o] = clampFix(y1 + ycc.crR[cr])
			dst[o+1] = clampFix(y1 + ycc.cbG[cb] + ycc.crG[cr])
			dst[o+2] = clampFix(y1 + ycc.cbB[cb])
			dst[o+3] = 0xff
		}
	}
	return true
}
