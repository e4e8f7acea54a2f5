package rfb

import (
	"fmt"

	"kvmgate/framebuffer"
)

func init() {
	register(EncodingCopyRect, func() decoder { return copyRectDecoder{} })
}

// copyRectDecoder decodes CopyRect: the rectangle is a copy of another
// area of the framebuffer. It is the only decoder that records its own
// change, as a move, so viewers can forward the copy instead of pixels.
type copyRectDecoder struct{}

func (copyRectDecoder) decode(d *decodeContext, r framebuffer.Rect) error {
	sx, err := d.r.u16()
	if err != nil {
		return fmt.Errorf("rfb: copyrect source: %w", err)
	}
	sy, err := d.r.u16()
	if err != nil {
		return fmt.Errorf("rfb: copyrect source: %w", err)
	}
	src := framebuffer.Rect{X: int(sx), Y: int(sy), W: r.W, H: r.H}
	if !d.canvas.Contains(src) {
		return fmt.Errorf("rfb: copyrect source %v outside the %dx%d framebuffer", src, d.canvas.W, d.canvas.H)
	}
	d.canvas.Move(src, r.X, r.Y)
	d.batch.Move(src, r.X, r.Y)
	return nil
}
