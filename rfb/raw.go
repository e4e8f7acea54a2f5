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

// rawChunk is about how many wire bytes Raw converts at a time: small
// enough to stay in cache, large enough to amortise the reads.
const rawChunk = 64 << 10

func (rawDecoder) decode(d *decodeContext, r framebuffer.Rect) error {
	rowBytes := r.W * d.conv.bpp
	if rowBytes == 0 {
		return nil
	}
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
