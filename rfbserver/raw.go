package rfbserver

import "kvmgate/framebuffer"

// rawEncoder sends pixels as they are, row by row.
type rawEncoder struct{}

func (rawEncoder) encode(dst []byte, src *framebuffer.Canvas, r framebuffer.Rect, pw *pixelWriter) ([]byte, error) {
	for y := r.Y; y < r.Y+r.H; y++ {
		dst = pw.appendRow(dst, src.Row(r.X, y, r.W), r.W)
	}
	return dst, nil
}
