package rfb

import (
	"fmt"

	"kvmgate/framebuffer"
)

func init() {
	register(EncodingRaw, func() decoder { return rawDecoder{} })
}

// rawDecoder decodes Raw: the rectangle's pixels in scan order.
type rawDecoder struct{}

// rawChunk is about how many wire bytes Raw reads and converts at a time:
// small enough to stay in cache between the read and the conversion.
const rawChunk = 64 << 10

func (rawDecoder) decode(d *decodeContext, r framebuffer.Rect) error {
	if r.Empty() {
		return nil
	}
	if d.conv.native {
		return rawNative(d, r)
	}
	rowBytes := r.W * d.conv.bpp
	rows := max(1, rawChunk/rowBytes)
	for y := 0; y < r.H; y += rows {
		n := min(rows, r.H-y)
		src, err := d.r.readN(n*rowBytes, max(rawChunk, rowBytes))
		if err != nil {
			return fmt.Errorf("rfb: raw rectangle %v, row %d: %w", r, y, err)
		}
		for i := 0; i < n; i++ {
			d.conv.row(d.canvas.Row(r.X, r.Y+y+i, r.W), src[i*rowBytes:], r.W)
		}
	}
	return nil
}

// rawNative reads NativeFormat pixels, which are canvas pixels but for the
// padding byte, straight into the canvas and then lets the converter set
// alpha in place. Full-width rectangles are read many rows at a time.
func rawNative(d *decodeContext, r framebuffer.Rect) error {
	c := d.canvas
	rowBytes := r.W * framebuffer.BytesPerPixel
	rows := 1
	if c.Stride == rowBytes {
		rows = max(1, 4*rawChunk/rowBytes)
	}
	for y := 0; y < r.H; y += rows {
		n := min(rows, r.H-y)
		o := c.Offset(r.X, r.Y+y)
		b := c.Pix[o : o+(n-1)*c.Stride+rowBytes]
		err := d.r.full(b)
		// Even after a short read: the canvas keeps alpha 255 throughout.
		d.conv.row(b, b, len(b)/framebuffer.BytesPerPixel)
		if err != nil {
			return fmt.Errorf("rfb: raw rectangle %v, row %d: %w", r, y, err)
		}
	}
	return nil
}
