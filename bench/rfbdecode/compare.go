package rfbdecode

import (
	"fmt"
	"image"
	"math"

	"kvmgate/framebuffer"
	"kvmgate/rfb"
)

// minLossyPSNR is the least PSNR (dB) against the server's screenshot that
// a lossy (JPEG) stream's decode must reach.
const minLossyPSNR = 30

// Lossy reports whether the stream asked for JPEG (a quality level), so its
// decode can only approximate the server's screen.
func (h *Header) Lossy() bool {
	for _, e := range h.Encodings {
		if e >= rfb.EncodingJPEGQuality0 && e <= rfb.EncodingJPEGQuality0+9 {
			return true
		}
	}
	return false
}

// Diff counts the pixels whose RGB differ between a and b and the PSNR of
// a against b over the RGB channels (+Inf when equal).
type Diff struct {
	Pixels int
	PSNR   float64
}

// compareRGB compares two RGBA pixel buffers of the same size, ignoring
// alpha.
func compareRGB(a []byte, aStride int, b []byte, bStride, w, h int) Diff {
	var d Diff
	var se float64
	for y := 0; y < h; y++ {
		ra, rb := a[y*aStride:y*aStride+4*w], b[y*bStride:y*bStride+4*w]
		for i := 0; i < len(ra); i += 4 {
			if ra[i] != rb[i] || ra[i+1] != rb[i+1] || ra[i+2] != rb[i+2] {
				d.Pixels++
				for c := 0; c < 3; c++ {
					e := float64(ra[i+c]) - float64(rb[i+c])
					se += e * e
				}
			}
		}
	}
	if se == 0 {
		d.PSNR = math.Inf(1)
	} else {
		d.PSNR = 10 * math.Log10(255*255/(se/float64(3*w*h)))
	}
	return d
}

// CompareCanvas compares two canvases of the same size.
func CompareCanvas(a, b *framebuffer.Canvas) (Diff, error) {
	if a.W != b.W || a.H != b.H {
		return Diff{}, fmt.Errorf("rfbdecode: sizes differ: %dx%d and %dx%d", a.W, a.H, b.W, b.H)
	}
	return compareRGB(a.Pix, a.Stride, b.Pix, b.Stride, a.W, a.H), nil
}

// CompareImage compares an RGBA image (vnc2video's picture) with a canvas.
func CompareImage(img *image.RGBA, c *framebuffer.Canvas) (Diff, error) {
	if img.Rect.Dx() != c.W || img.Rect.Dy() != c.H || img.Rect.Min != (image.Point{}) {
		return Diff{}, fmt.Errorf("rfbdecode: sizes differ: %v and %dx%d", img.Rect, c.W, c.H)
	}
	return compareRGB(img.Pix, img.Stride, c.Pix, c.Stride, c.W, c.H), nil
}

// compare checks kvmgate's decode of s against the server's screenshot:
// equal for lossless streams, at least minLossyPSNR for lossy ones.
func compare(s *Stream, got, shot *framebuffer.Canvas) error {
	d, err := CompareCanvas(got, shot)
	if err != nil {
		return err
	}
	if s.Lossy() {
		if d.PSNR < minLossyPSNR {
			return fmt.Errorf("rfbdecode: %s: PSNR %.1f dB against the screenshot, want ≥ %d", s.Name, d.PSNR, minLossyPSNR)
		}
		return nil
	}
	if d.Pixels != 0 {
		return fmt.Errorf("rfbdecode: %s: %d pixels differ from the screenshot (PSNR %.1f dB)", s.Name, d.Pixels, d.PSNR)
	}
	return nil
}
