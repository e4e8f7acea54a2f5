package rfb

import (
	"fmt"

	"kvmgate/framebuffer"
)

// decoder decodes the payload of one rectangle of one pixel encoding. Each
// encoding lives in its own file (raw.go, hextile.go, zrle.go, ...) and
// registers a constructor with register; a connection makes one instance of
// each encoding it uses, so decoders may keep state across rectangles (zlib
// streams, Tight's four streams).
type decoder interface {
	// decode reads the rectangle's payload with d.r and paints it into
	// d.canvas. The rectangle has been checked to lie inside the canvas.
	// Only CopyRect records its change in d.batch (as a Move); for every
	// other encoding the caller records r as damage after decode succeeds.
	decode(d *decodeContext, r framebuffer.Rect) error
}

var decoderFactories = map[Encoding]func() decoder{}

// register makes an encoding's decoder known. It is called from init
// functions in each encoding's file.
func register(e Encoding, f func() decoder) {
	decoderFactories[e] = f
}

// SupportedEncoding reports whether kvmgate can decode pixel encoding e.
func SupportedEncoding(e Encoding) bool {
	_, ok := decoderFactories[e]
	return ok
}

// decodeContext is what decoders work with: the connection's reader, the
// pixel format converter, the backend's private canvas and the batch of
// changes to publish.
type decodeContext struct {
	r      *reader
	pf     PixelFormat
	conv   *converter
	canvas *framebuffer.Canvas
	batch  *framebuffer.Batch
	// scratch is a reusable buffer for decoders; they may grow it.
	scratch []byte
	// decoders holds this connection's decoder instances.
	decoders map[Encoding]decoder
}

func newDecodeContext(r *reader, pf PixelFormat, palette []uint32, canvas *framebuffer.Canvas, batch *framebuffer.Batch) *decodeContext {
	return &decodeContext{
		r: r, pf: pf, conv: newConverter(pf, palette),
		canvas: canvas, batch: batch, decoders: make(map[Encoding]decoder),
	}
}

// decoder returns the connection's instance for e.
func (d *decodeContext) decoder(e Encoding) (decoder, error) {
	if dec, ok := d.decoders[e]; ok {
		return dec, nil
	}
	f, ok := decoderFactories[e]
	if !ok {
		return nil, fmt.Errorf("rfb: server sent unsupported encoding %v", e)
	}
	dec := f()
	d.decoders[e] = dec
	return dec, nil
}

// setPixelFormat switches the wire format (after SetPixelFormat or a
// colour-map change).
func (d *decodeContext) setPixelFormat(pf PixelFormat, palette []uint32) {
	d.pf = pf
	d.conv = newConverter(pf, palette)
}

// grow returns d.scratch resized to n bytes.
func (d *decodeContext) grow(n int) []byte {
	if cap(d.scratch) < n {
		d.scratch = make([]byte, n)
	}
	return d.scratch[:n]
}

// maxRectPayload bounds any single compressed payload a server may announce.
const maxRectPayload = 64 << 20
