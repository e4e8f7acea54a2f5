package tiles

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"image"
	"image/jpeg"

	"kvmgate/framebuffer"
)

// TileSize is the edge of the square tiles each rectangle is classified in.
// Tile boundaries lie on multiples of TileSize in screen coordinates.
const TileSize = 64

// Quality tells the encoder how much it may lose.
type Quality struct {
	// Lossy allows JPEG for photo-like tiles (many colours, little
	// repetition). Text, flat areas and few-colour tiles stay lossless.
	Lossy bool
	// JPEG is the JPEG quality, 1 to 100; 0 means DefaultJPEGQuality.
	JPEG int
}

// DefaultJPEGQuality is the JPEG quality used when Quality.JPEG is 0.
const DefaultJPEGQuality = 70

// Stats counts what an Encoder produced, for benchmarks and metrics.
type Stats struct {
	Fills, Indexed, RGB, JPEG int // records by kind
	Copies                    int // copy records found by scroll detection
	Pixels                    int // pixels encoded (after skipping unchanged rows)
}

type kind uint8

const (
	kindFill kind = iota
	kindIndexed
	kindRGB
	kindJPEG
)

// photoRepeatRatio is the share of pixels equal to their left neighbour
// below which a tile with more than 256 colours counts as photographic.
const photoRepeatRatio = 0.5

// Encoder turns rectangles of a canvas into wire records. It owns one raw
// deflate stream, so one Encoder serves exactly one WebSocket connection for
// its whole life. It is not safe for concurrent use.
type Encoder struct {
	zbuf bytes.Buffer
	fw   *flate.Writer
	jbuf bytes.Buffer
	raw  []byte  // scratch: pixels to deflate
	pal  palette // the colours of the tile being analyzed
	// runPal is the palette of the pending indexed run.
	runPal palette

	// run is the pending merged record of the current tile row.
	run     framebuffer.Rect
	runKind kind
	runRGB  uint32
	hasRun  bool

	lossy tileSet // tiles whose last pixels went out lossily
	sh    shadow  // what the browser's canvas holds

	// plain collects the records of the batch being built, uncompressed;
	// out is the caller's buffer while Encode runs (JPEG records and
	// finished batches go there).
	plain []byte
	out   []byte
	// copies are copy records queued by Copy for the next batch.
	copies []byte
	bands  []framebuffer.Rect

	// Stats accumulates over the encoder's life.
	Stats Stats
}

// NewEncoder returns an encoder with a fresh deflate stream.
func NewEncoder() *Encoder {
	e := &Encoder{sh: shadow{seed: maphash.MakeSeed()}}
	// The default level finds repeated glyphs across records (text is
	// most of what is sent); BestSpeed sent 1.5 times the bytes on the
	// bench harness's text workloads (docs/benchmarks.md).
	e.fw, _ = flate.NewWriter(&e.zbuf, flate.DefaultCompression)
	return e
}

// Encode appends records that paint rectangle r of src (clipped to src) to
// dst and returns the extended slice. Once the encoder knows what the
// browser shows (after ForgetLossy, see there), it leaves out rows the
// browser already has and sends content that moved vertically inside r as
// a copy record followed by the rows that are still different.
//
// The records go out in batch records (docs/protocol.md): fills, copies
// (those queued by Copy first) and pixels, their headers and pixel bytes
// compressed together in the connection's deflate stream, which is
// sync-flushed at the end of each batch. Only JPEG records stand outside
// (between batches), as deflating them again would gain nothing.
func (e *Encoder) Encode(dst []byte, src *framebuffer.Canvas, r framebuffer.Rect, q Quality) ([]byte, error) {
	e.out = dst
	plain := append(e.plain[:0], e.copies...)
	e.copies = e.copies[:0]
	plain, err := e.encode(plain, src, r, q)
	if err == nil {
		e.out, err = e.batch(e.out, plain)
	}
	e.plain = plain[:0]
	dst, e.out = e.out, nil
	return dst, err
}

// Copy queues a copy record for move m, which the browser applies before
// anything the next Encode call sends, and tells the encoder about it (see
// Moved). Flush sends queued copies when no Encode call follows.
func (e *Encoder) Copy(m framebuffer.Move) {
	e.copies = AppendCopy(e.copies, m)
	e.Moved(m)
}

// Flush appends a batch of the copies Copy queued since the last Encode or
// Flush call, if any, to dst. Call it before a frame end.
func (e *Encoder) Flush(dst []byte) ([]byte, error) {
	dst, err := e.batch(dst, e.copies)
	e.copies = e.copies[:0]
	return dst, err
}

// batch compresses plain, a sequence of records in their batch form, as the
// next part of the stream and appends the batch record to dst.
func (e *Encoder) batch(dst, plain []byte) ([]byte, error) {
	if len(plain) == 0 {
		return dst, nil
	}
	e.zbuf.Reset()
	if _, err := e.fw.Write(plain); err != nil {
		return dst, fmt.Errorf("tiles: deflate: %w", err)
	}
	if err := e.fw.Flush(); err != nil {
		return dst, fmt.Errorf("tiles: deflate flush: %w", err)
	}
	// A sync flush ends with the four bytes of an empty stored block's
	// length; the browser puts them back (as RFC 7692 does).
	z, ok := bytes.CutSuffix(e.zbuf.Bytes(), syncTail)
	if !ok {
		return dst, fmt.Errorf("tiles: deflate flush without its sync marker")
	}
	dst = append(dst, RecordBatch)
	dst = binary.AppendUvarint(dst, uint64(len(plain)))
	dst = binary.AppendUvarint(dst, uint64(len(z)))
	return append(dst, z...), nil
}

func (e *Encoder) encode(dst []byte, src *framebuffer.Canvas, r framebuffer.Rect, q Quality) ([]byte, error) {
	r = r.Intersect(src.Bounds())
	if r.Empty() {
		return dst, nil
	}
	e.lossy.size(src.W, src.H)
	s := &e.sh
	s.sync(src)
	if !s.ok || e.lossy.any(r) {
		dst, err := e.encodeRect(dst, src, r, q)
		if s.ok {
			s.c.CopyFrom(src, r)
			s.touched(r)
		}
		return dst, err
	}
	s.newH = s.hashRows(s.newH, src, r)
	if m, ok := s.scroll(r); ok && !e.lossy.any(m.Src) {
		dst = AppendCopy(dst, m)
		e.Stats.Copies++
		e.Moved(m)
	}
	s.oldH = s.stripRows(r.X, r.W)
	e.bands = s.bands(e.bands[:0], src, r)
	var err error
	for _, b := range e.bands {
		if dst, err = e.encodeRect(dst, src, b, q); err != nil {
			return dst, err
		}
	}
	s.c.CopyFrom(src, r)
	s.touched(r)
	return dst, nil
}

// encodeRect appends records that paint r, which lies inside src.
func (e *Encoder) encodeRect(dst []byte, src *framebuffer.Canvas, r framebuffer.Rect, q Quality) ([]byte, error) {
	e.Stats.Pixels += r.Area()
	var err error
	for y0 := r.Y; y0 < r.Y+r.H; {
		y1 := min((y0/TileSize+1)*TileSize, r.Y+r.H)
		e.hasRun = false
		for x0 := r.X; x0 < r.X+r.W; {
			x1 := min((x0/TileSize+1)*TileSize, r.X+r.W)
			t := framebuffer.Rect{X: x0, Y: y0, W: x1 - x0, H: y1 - y0}
			if dst, err = e.tile(dst, src, t, q); err != nil {
				return dst, err
			}
			x0 = x1
		}
		if dst, err = e.flushRun(dst, src, q); err != nil {
			return dst, err
		}
		y0 = y1
	}
	return dst, nil
}

// tile classifies one tile and either extends the pending run or emits.
func (e *Encoder) tile(dst []byte, src *framebuffer.Canvas, t framebuffer.Rect, q Quality) ([]byte, error) {
	k, colour := e.analyze(src, t, q)
	if e.hasRun && e.runKind == k && (k != kindFill || e.runRGB == colour) &&
		(k != kindIndexed || e.mergePalette()) {
		e.run.W += t.W
		return dst, nil
	}
	var err error
	if dst, err = e.flushRun(dst, src, q); err != nil {
		return dst, err
	}
	if k == kindIndexed {
		// The palette from analyze is still loaded.
		e.runPal.reset()
		for _, c := range e.pal.colours[:e.pal.n] {
			e.runPal.add(c)
		}
	}
	e.run, e.runKind, e.runRGB, e.hasRun = t, k, colour, true
	return dst, nil
}

// mergePalette adds the colours of the tile just analyzed to the pending
// indexed run's palette if the union still fits a packed record (16
// colours); it reports whether it did. A record saved is worth about 20
// bytes of header; wider indices cost less than that once deflated (the
// bench harness's text workloads sent the same bytes when merging only
// tiles of the same index width).
func (e *Encoder) mergePalette() bool {
	rp, tp := &e.runPal, &e.pal
	n := rp.n
	for _, c := range tp.colours[:tp.n] {
		if !rp.has(c) {
			n++
		}
	}
	if n > 16 {
		return false
	}
	for _, c := range tp.colours[:tp.n] {
		rp.add(c)
	}
	return true
}

func (e *Encoder) flushRun(dst []byte, src *framebuffer.Canvas, q Quality) ([]byte, error) {
	if !e.hasRun {
		return dst, nil
	}
	e.hasRun = false
	r := e.run
	switch e.runKind {
	case kindFill:
		e.Stats.Fills++
		e.lossy.clear(r)
		return AppendFill(dst, r, byte(e.runRGB), byte(e.runRGB>>8), byte(e.runRGB>>16)), nil
	case kindJPEG:
		return e.appendJPEG(dst, src, r, q)
	case kindIndexed:
		return e.appendIndexed(dst, src, r)
	default:
		return e.appendRGB(dst, src, r)
	}
}

// analyze scans t once: solid colour, palette of up to 256 colours, and how
// often a pixel repeats its left neighbour.
func (e *Encoder) analyze(src *framebuffer.Canvas, t framebuffer.Rect, q Quality) (kind, uint32) {
	p := &e.pal
	p.reset()
	first := rgbAt(src.Pix, src.Offset(t.X, t.Y))
	p.add(first)
	solid, overflow := true, false
	repeats := 0
	last := first // the colour most recently looked up in the palette
	for y := t.Y; y < t.Y+t.H; y++ {
		row := src.Row(t.X, y, t.W)
		prev := ^uint32(0)
		for i := 0; i < len(row); i += 4 {
			c := uint32(row[i]) | uint32(row[i+1])<<8 | uint32(row[i+2])<<16
			if c == prev {
				repeats++
				continue
			}
			prev = c
			if c != first {
				solid = false
			}
			if overflow || c == last {
				continue
			}
			last = c
			if !p.add(c) {
				overflow = true
				if !q.Lossy {
					return kindRGB, 0
				}
			}
		}
	}
	switch {
	case solid:
		return kindFill, first
	case !overflow:
		return kindIndexed, 0
	case float64(repeats) < photoRepeatRatio*float64(t.Area()):
		return kindJPEG, 0
	default:
		return kindRGB, 0
	}
}

func rgbAt(pix []byte, o int) uint32 {
	return uint32(pix[o]) | uint32(pix[o+1])<<8 | uint32(pix[o+2])<<16
}

// syncTail is how a sync flush ends: LEN 0 and NLEN 0xffff of an empty
// stored block. Batches leave it out.
var syncTail = []byte{0, 0, 0xff, 0xff}

// deflate appends the pixel bytes in e.raw to the batch being built: in a
// batch they follow their record's header uncompressed (the batch is
// compressed as a whole).
func (e *Encoder) deflate(dst []byte) ([]byte, error) {
	return append(dst, e.raw...), nil
}

func (e *Encoder) appendIndexed(dst []byte, src *framebuffer.Canvas, t framebuffer.Rect) ([]byte, error) {
	p := &e.runPal
	e.Stats.Indexed++
	e.lossy.clear(t)
	dst = append(dst, RecordDeflate)
	dst = appendRect(dst, t)
	bits := PackedBits(p.n)
	format := byte(FormatColumns)
	if bits == 0 {
		format = FormatIndexed
	}
	dst = append(dst, format, byte(p.n-1))
	// The palette goes into the deflate stream ahead of the indices: text
	// records repeat the same few colours, which the stream then codes in
	// a byte or two instead of 3 bytes each (docs/protocol.md).
	e.raw = e.raw[:0]
	for _, c := range p.colours[:p.n] {
		e.raw = append(e.raw, byte(c), byte(c>>8), byte(c>>16))
	}
	lastC, lastI := ^uint32(0), byte(0)
	if bits != 0 {
		// Column by column: a glyph is then the same run of bytes
		// wherever it stands on its line, which the stream codes as a
		// match; in rows, glyphs 9 pixels wide start at 8 different bit
		// offsets.
		for x := t.X; x < t.X+t.W; x++ {
			acc, nacc := byte(0), 0
			for y, o := t.Y, src.Offset(x, t.Y); y < t.Y+t.H; y, o = y+1, o+src.Stride {
				c := uint32(src.Pix[o]) | uint32(src.Pix[o+1])<<8 | uint32(src.Pix[o+2])<<16
				if c != lastC {
					lastC, lastI = c, p.index(c)
				}
				acc = acc<<bits | lastI
				if nacc += bits; nacc == 8 {
					e.raw = append(e.raw, acc)
					acc, nacc = 0, 0
				}
			}
			if nacc > 0 {
				e.raw = append(e.raw, acc<<(8-nacc))
			}
		}
		return e.deflate(dst)
	}
	for y := t.Y; y < t.Y+t.H; y++ {
		row := src.Row(t.X, y, t.W)
		acc, nacc := byte(0), 0 // packed bits not yet appended
		for i := 0; i < len(row); i += 4 {
			c := uint32(row[i]) | uint32(row[i+1])<<8 | uint32(row[i+2])<<16
			if c != lastC {
				lastC, lastI = c, p.index(c)
			}
			if bits == 0 {
				e.raw = append(e.raw, lastI)
				continue
			}
			acc = acc<<bits | lastI
			if nacc += bits; nacc == 8 {
				e.raw = append(e.raw, acc)
				acc, nacc = 0, 0
			}
		}
		if nacc > 0 {
			e.raw = append(e.raw, acc<<(8-nacc))
		}
	}
	return e.deflate(dst)
}

func (e *Encoder) appendRGB(dst []byte, src *framebuffer.Canvas, r framebuffer.Rect) ([]byte, error) {
	e.Stats.RGB++
	e.lossy.clear(r)
	dst = append(dst, RecordDeflate)
	dst = appendRect(dst, r)
	dst = append(dst, FormatRGB)
	n := r.W * r.H * 3
	if cap(e.raw) < n {
		e.raw = make([]byte, n)
	}
	e.raw = e.raw[:n]
	o := 0
	for y := r.Y; y < r.Y+r.H; y++ {
		row := src.Row(r.X, y, r.W)
		out := e.raw[o : o+r.W*3]
		for i, j := 0, 0; i < len(row); i, j = i+4, j+3 {
			out[j], out[j+1], out[j+2] = row[i], row[i+1], row[i+2]
		}
		o += r.W * 3
	}
	return e.deflate(dst)
}

func (e *Encoder) appendJPEG(dst []byte, src *framebuffer.Canvas, r framebuffer.Rect, q Quality) ([]byte, error) {
	e.Stats.JPEG++
	e.lossy.mark(r)
	// The batch so far goes out first: records are drawn in order.
	var err error
	if e.out, err = e.batch(e.out, dst); err != nil {
		return dst, err
	}
	dst = dst[:0]
	img := &image.RGBA{
		Pix:    src.Pix[src.Offset(r.X, r.Y):],
		Stride: src.Stride,
		Rect:   image.Rect(0, 0, r.W, r.H),
	}
	quality := q.JPEG
	if quality <= 0 {
		quality = DefaultJPEGQuality
	}
	e.jbuf.Reset()
	if err := jpeg.Encode(&e.jbuf, img, &jpeg.Options{Quality: min(quality, 100)}); err != nil {
		return dst, fmt.Errorf("tiles: jpeg %v: %w", r, err)
	}
	e.out = append(e.out, RecordJPEG)
	e.out = appendRect(e.out, r)
	e.out = appendU32(e.out, uint32(e.jbuf.Len()))
	e.out = append(e.out, e.jbuf.Bytes()...)
	return dst, nil
}

// Moved tells the encoder that the viewer's canvas applied move m (a copy
// record went out), so that lossy pixels copied elsewhere are still known to
// be lossy and the encoder's picture of the browser's canvas stays right.
func (e *Encoder) Moved(m framebuffer.Move) {
	if s := &e.sh; s.ok {
		if s.c.Contains(m.Src) && s.c.Contains(m.Dst()) {
			s.c.Move(m.Src, m.DstX, m.DstY)
			s.touched(m.Dst())
		} else {
			s.ok = false
		}
	}
	if e.lossy.any(m.Src) {
		e.lossy.mark(m.Dst())
	} else {
		e.lossy.clear(m.Dst())
	}
}

// Lossy reports whether some area was sent lossily and not yet refined.
func (e *Encoder) Lossy() bool { return e.lossy.count > 0 }

// LossyRects appends the areas last sent lossily to dst. Encoding them again
// with a lossless Quality refines them.
func (e *Encoder) LossyRects(dst []framebuffer.Rect) []framebuffer.Rect { return e.lossy.rects(dst) }

// ForgetLossy empties the record of lossy areas, as after a full repaint.
// The caller must call it whenever a resize record goes out (which makes the
// browser's canvas black), and should call it only then: from then on the
// encoder assumes the browser's canvas is black wherever it has not sent
// pixels since, and skips what the browser already shows. An encoder that
// never sees ForgetLossy always sends whole rectangles.
func (e *Encoder) ForgetLossy() {
	e.lossy.clearAll()
	e.sh.black = true
}
