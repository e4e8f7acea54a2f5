// Package imgmetric measures how close a decoded picture is to the one that
// was encoded: SSIM over luma, and Sub, a view of part of a canvas, so
// that a region (a text area, say) can be scored on its own. PSNR over RGB
// is video.PSNR in kvmgate/encoders/video.
//
// SSIM follows Wang, Bovik, Sheikh and Simoncelli, "Image quality
// assessment: from error visibility to structural similarity" (IEEE TIP
// 2004) with their constants for 8-bit samples (K1 = 0.01, K2 = 0.03), on
// BT.601 luma (0.299 R + 0.587 G + 0.114 B), averaged over non-overlapping
// 8×8 windows rather than the paper's sliding 11×11 Gaussian window.
// Tools that slide their windows or convert RGB to luma differently give
// slightly different figures: compare SSIM only with SSIM measured here.
package imgmetric

import (
	"kvmgate/framebuffer"
)

// Window is the edge in pixels of the square windows SSIM averages over.
const Window = 8

// SSIM returns the mean structural similarity of the luma of a and b over
// the Window×Window windows that fit in their common area, in [-1, 1]
// (1 for identical pictures). It returns 0 when that area holds no window.
// Windows whose pixels are byte-identical count as 1 without arithmetic,
// so mostly still screens are cheap to score.
func SSIM(a, b *framebuffer.Canvas) float64 {
	w, h := min(a.W, b.W), min(a.H, b.H)
	cols, rows := w/Window, h/Window
	if cols == 0 || rows == 0 {
		return 0
	}
	const (
		c1 = (0.01 * 255) * (0.01 * 255)
		c2 = (0.03 * 255) * (0.03 * 255)
		n  = Window * Window
	)
	var total float64
	for wy := 0; wy < rows; wy++ {
		for wx := 0; wx < cols; wx++ {
			x0, y0 := wx*Window, wy*Window
			same := true
			for y := y0; y < y0+Window && same; y++ {
				same = string(a.Row(x0, y, Window)) == string(b.Row(x0, y, Window))
			}
			if same {
				total++
				continue
			}
			// Luma scaled by 1000 keeps the sums in integers.
			var sa, sb, saa, sbb, sab int64
			for y := y0; y < y0+Window; y++ {
				ra, rb := a.Row(x0, y, Window), b.Row(x0, y, Window)
				for i := 0; i < len(ra); i += framebuffer.BytesPerPixel {
					ya := 299*int64(ra[i]) + 587*int64(ra[i+1]) + 114*int64(ra[i+2])
					yb := 299*int64(rb[i]) + 587*int64(rb[i+1]) + 114*int64(rb[i+2])
					sa += ya
					sb += yb
					saa += ya * ya
					sbb += yb * yb
					sab += ya * yb
				}
			}
			const s = 1000.0
			ma, mb := float64(sa)/s/n, float64(sb)/s/n
			// Sample (n−1) variances and covariance, as in the paper's
			// reference code.
			va := (float64(saa)/(s*s) - n*ma*ma) / (n - 1)
			vb := (float64(sbb)/(s*s) - n*mb*mb) / (n - 1)
			cov := (float64(sab)/(s*s) - n*ma*mb) / (n - 1)
			total += ((2*ma*mb + c1) * (2*cov + c2)) / ((ma*ma + mb*mb + c1) * (va + vb + c2))
		}
	}
	return total / float64(cols*rows)
}

// Sub returns a canvas that shares c's pixels inside r, which must lie
// inside c; writes through it change c.
func Sub(c *framebuffer.Canvas, r framebuffer.Rect) *framebuffer.Canvas {
	if r.Empty() {
		return &framebuffer.Canvas{}
	}
	start := c.Offset(r.X, r.Y)
	end := c.Offset(r.X+r.W, r.Y+r.H-1)
	return &framebuffer.Canvas{W: r.W, H: r.H, Stride: c.Stride, Pix: c.Pix[start:end:end]}
}
