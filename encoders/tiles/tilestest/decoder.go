// Package tilestest is a reference decoder for the binary records of the
// browser wire protocol v1 (docs/protocol.md). Tests use it to apply what a
// server sent to a canvas and compare the result with the framebuffer; it
// plays the part of the browser client in Go.
package tilestest

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"

	"kvmgate/encoders/tiles"
	"kvmgate/framebuffer"
)

// Decoder applies records to Canvas. It keeps the connection's raw-deflate
// stream, so one Decoder follows exactly one connection.
type Decoder struct {
	// Canvas is the decoded screen.
	Canvas framebuffer.Canvas
	// Cursor is the last cursor shape; nil when hidden.
	Cursor *framebuffer.Cursor
	// Frames counts frame end records; LastFrame is the latest number.
	Frames    int
	LastFrame uint32
	// Records counts records by type, those inside batches included.
	Records map[byte]int
	// Formats counts deflate records by pixel format.
	Formats map[int]int

	in  feed
	zr  io.ReadCloser
	out []byte
	// inner reads the inflated bytes of the batch record being applied;
	// nil outside batches.
	inner *reader
	batch bytes.Buffer
}

// maxBatch bounds a batch's inflated size: an 8192×8192 RGB record and its
// header.
const maxBatch = 8192*8192*3 + 1024

// feed is the inflater's input: the bytes of all deflate records so far.
// It reports an error instead of blocking when it runs dry, which happens
// only if the server's sync flushes are missing.
type feed struct{ buf []byte }

func (f *feed) ReadByte() (byte, error) {
	if len(f.buf) == 0 {
		return 0, errors.New("tilestest: deflate stream needs bytes beyond the record")
	}
	b := f.buf[0]
	f.buf = f.buf[1:]
	return b, nil
}

func (f *feed) Read(p []byte) (int, error) {
	if len(f.buf) == 0 {
		return 0, errors.New("tilestest: deflate stream needs bytes beyond the record")
	}
	n := copy(p, f.buf)
	f.buf = f.buf[n:]
	return n, nil
}

// NewDecoder returns a decoder with an empty canvas.
func NewDecoder() *Decoder {
	d := &Decoder{Records: map[byte]int{}, Formats: map[int]int{}}
	d.zr = flate.NewReader(&d.in)
	return d
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.err = io.ErrUnexpectedEOF
		return nil
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}

func (r *reader) u8() int {
	p := r.take(1)
	if p == nil {
		return 0
	}
	return int(p[0])
}

func (r *reader) u16() int {
	p := r.take(2)
	if p == nil {
		return 0
	}
	return int(binary.LittleEndian.Uint16(p))
}

func (r *reader) u32() uint32 {
	p := r.take(4)
	if p == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(p)
}

func (r *reader) uvarint() int {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 || v > 1<<40 {
		r.err = errors.New("bad varint")
		return 0
	}
	r.b = r.b[n:]
	return int(v)
}

func (r *reader) rect() framebuffer.Rect {
	return framebuffer.Rect{X: r.u16(), Y: r.u16(), W: r.u16(), H: r.u16()}
}

// Apply decodes one binary message. It returns the number of frame end
// records it held.
//
// The deflate bytes of all deflate records of the message are fed to the
// inflater first: a record's bytes need not end at a flush point, only the
// last deflate record's of the message do (docs/protocol.md).
func (d *Decoder) Apply(msg []byte) (frames int, err error) {
	d.scan(msg)
	r := &reader{b: msg}
	for len(r.b) > 0 {
		typ := byte(r.u8())
		d.Records[typ]++
		if err := d.record(typ, r); err != nil {
			return frames, fmt.Errorf("tilestest: record 0x%02x: %w", typ, err)
		}
		if r.err != nil {
			return frames, fmt.Errorf("tilestest: record 0x%02x: %w", typ, r.err)
		}
		if typ == tiles.RecordFrameEnd || typ == tiles.RecordFrameEndShort {
			frames++
		}
	}
	return frames, nil
}

// scan appends the deflate bytes of msg's records to the inflater's input.
// It stops at the first record it cannot parse; Apply reports that one.
func (d *Decoder) scan(msg []byte) {
	r := &reader{b: msg}
	for len(r.b) > 0 && r.err == nil {
		switch byte(r.u8()) {
		case tiles.RecordResize:
			r.take(4)
		case tiles.RecordFill:
			r.take(11)
		case tiles.RecordCopy:
			r.take(12)
		case tiles.RecordFrameEnd:
			r.take(8)
		case tiles.RecordPNG, tiles.RecordJPEG:
			r.take(8)
			r.take(int(r.u32()))
		case tiles.RecordCursor:
			w, h := r.u16(), r.u16()
			r.take(4 + w*h*4)
		case tiles.RecordDeflate:
			r.take(8)
			if f := r.u8(); f == tiles.FormatIndexed || f == tiles.FormatPacked || f == tiles.FormatColumns {
				r.u8()
			}
			if data := r.take(int(r.u32())); r.err == nil {
				d.in.buf = append(d.in.buf, data...)
			}
		case tiles.RecordBatch:
			r.uvarint()
			if data := r.take(r.uvarint()); r.err == nil {
				// The sync flush's tail the server leaves out.
				d.in.buf = append(append(d.in.buf, data...), 0, 0, 0xff, 0xff)
			}
		case tiles.RecordFrameEndShort:
			r.uvarint()
		default:
			return
		}
	}
}

func (d *Decoder) inside(rect framebuffer.Rect) error {
	if !d.Canvas.Contains(rect) || rect.Empty() {
		return fmt.Errorf("rectangle %v outside %dx%d canvas", rect, d.Canvas.W, d.Canvas.H)
	}
	return nil
}

func (d *Decoder) record(typ byte, r *reader) error {
	switch typ {
	case tiles.RecordResize:
		w, h := r.u16(), r.u16()
		if r.err != nil {
			return r.err
		}
		if err := framebuffer.CheckSize(w, h); err != nil {
			return err
		}
		d.Canvas = framebuffer.Canvas{}
		d.Canvas.Resize(w, h)
	case tiles.RecordFill:
		rect := r.rect()
		c := r.take(3)
		if r.err != nil {
			return r.err
		}
		if err := d.inside(rect); err != nil {
			return err
		}
		d.Canvas.Fill(rect, uint32(c[0])|uint32(c[1])<<8|uint32(c[2])<<16|0xff<<24)
	case tiles.RecordCopy:
		src := r.rect()
		dx, dy := r.u16(), r.u16()
		if r.err != nil {
			return r.err
		}
		if err := d.inside(src); err != nil {
			return err
		}
		if err := d.inside(framebuffer.Rect{X: dx, Y: dy, W: src.W, H: src.H}); err != nil {
			return err
		}
		d.Canvas.Move(src, dx, dy)
	case tiles.RecordPNG, tiles.RecordJPEG:
		rect := r.rect()
		data := r.take(int(r.u32()))
		if r.err != nil {
			return r.err
		}
		if err := d.inside(rect); err != nil {
			return err
		}
		var img image.Image
		var err error
		if typ == tiles.RecordPNG {
			img, err = png.Decode(bytes.NewReader(data))
		} else {
			img, err = jpeg.Decode(bytes.NewReader(data))
		}
		if err != nil {
			return err
		}
		b := img.Bounds()
		if b.Dx() != rect.W || b.Dy() != rect.H {
			return fmt.Errorf("image is %dx%d, record says %v", b.Dx(), b.Dy(), rect)
		}
		for y := 0; y < rect.H; y++ {
			row := d.Canvas.Row(rect.X, rect.Y+y, rect.W)
			for x := 0; x < rect.W; x++ {
				cr, cg, cb, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
				row[4*x], row[4*x+1], row[4*x+2], row[4*x+3] = byte(cr>>8), byte(cg>>8), byte(cb>>8), 0xff
			}
		}
	case tiles.RecordDeflate:
		return d.deflate(r)
	case tiles.RecordBatch:
		return d.applyBatch(r)
	case tiles.RecordCursor:
		w, h, hx, hy := r.u16(), r.u16(), r.u16(), r.u16()
		pix := r.take(w * h * 4)
		if r.err != nil {
			return r.err
		}
		if w == 0 || h == 0 {
			d.Cursor = nil
		} else {
			d.Cursor = &framebuffer.Cursor{W: w, H: h, HotX: hx, HotY: hy, Pix: append([]byte(nil), pix...)}
		}
	case tiles.RecordFrameEnd:
		d.LastFrame = r.u32()
		r.u32()
		d.Frames++
	case tiles.RecordFrameEndShort:
		n := r.uvarint()
		if n > 1<<32-1 {
			return fmt.Errorf("frame number %d", n)
		}
		d.LastFrame = uint32(n)
		d.Frames++
	default:
		return errors.New("unknown record type")
	}
	return nil
}

// applyBatch inflates a batch record's bytes and applies the fill, copy and
// deflate records they hold; a deflate record's pixels follow its header
// there, uncompressed.
func (d *Decoder) applyBatch(r *reader) error {
	if d.inner != nil {
		return errors.New("batch inside a batch")
	}
	n := r.uvarint()
	r.take(r.uvarint()) // the data went to the inflater in scan
	if r.err != nil {
		return r.err
	}
	if n > maxBatch {
		return fmt.Errorf("batch of %d bytes", n)
	}
	d.batch.Reset()
	if _, err := io.CopyN(&d.batch, d.zr, int64(n)); err != nil {
		return fmt.Errorf("inflate batch of %d bytes: %w", n, err)
	}
	in := &reader{b: d.batch.Bytes()}
	d.inner = in
	defer func() { d.inner = nil }()
	for len(in.b) > 0 {
		typ := byte(in.u8())
		switch typ {
		case tiles.RecordFill, tiles.RecordCopy, tiles.RecordDeflate:
		default:
			return fmt.Errorf("record 0x%02x in a batch", typ)
		}
		d.Records[typ]++
		if err := d.record(typ, in); err != nil {
			return fmt.Errorf("in batch: record 0x%02x: %w", typ, err)
		}
		if in.err != nil {
			return fmt.Errorf("in batch: record 0x%02x: %w", typ, in.err)
		}
	}
	return nil
}

func (d *Decoder) deflate(r *reader) error {
	rect := r.rect()
	format := r.u8()
	d.Formats[format]++
	npal := 0
	switch format {
	case tiles.FormatRGB:
	case tiles.FormatIndexed, tiles.FormatPacked, tiles.FormatColumns:
		n := r.u8() + 1
		npal = n
		if format != tiles.FormatIndexed && tiles.PackedBits(n) == 0 {
			return fmt.Errorf("packed record with %d colours", n)
		}
	default:
		return fmt.Errorf("unknown deflate format %d", format)
	}
	if d.inner == nil {
		r.take(int(r.u32())) // the data went to the inflater in scan
	}
	if r.err != nil {
		return r.err
	}
	if err := d.inside(rect); err != nil {
		return err
	}
	n := rect.W * rect.H
	bits, stride := 8, rect.W
	switch format {
	case tiles.FormatRGB:
		n *= 3
	case tiles.FormatPacked:
		bits = tiles.PackedBits(npal)
		stride = (rect.W*bits + 7) / 8
		n = stride * rect.H
	case tiles.FormatColumns:
		bits = tiles.PackedBits(npal)
		stride = (rect.H*bits + 7) / 8 // bytes per column
		n = stride * rect.W
	}
	// An indexed record's palette comes first in its inflated bytes.
	n += 3 * npal
	if cap(d.out) < n {
		d.out = make([]byte, n)
	}
	out := d.out[:n]
	if d.inner != nil {
		if out = r.take(n); r.err != nil {
			return r.err
		}
	} else if _, err := io.ReadFull(d.zr, out); err != nil {
		return fmt.Errorf("inflate %d bytes: %w", n, err)
	}
	pal := out[:3*npal]
	out = out[3*npal:]
	for y := 0; y < rect.H; y++ {
		row := d.Canvas.Row(rect.X, rect.Y+y, rect.W)
		for x := 0; x < rect.W; x++ {
			var p []byte
			if format == tiles.FormatRGB {
				p = out[3*(y*rect.W+x):]
			} else {
				bit, o := x*bits, y*stride
				if format == tiles.FormatColumns {
					bit, o = y*bits, x*stride
				}
				i := int(out[o+bit/8]>>(8-bits-bit%8)) & (1<<bits - 1)
				if 3*i+3 > len(pal) {
					return fmt.Errorf("palette index %d beyond %d colours", i, len(pal)/3)
				}
				p = pal[3*i:]
			}
			row[4*x], row[4*x+1], row[4*x+2], row[4*x+3] = p[0], p[1], p[2], 0xff
		}
	}
	return nil
}
