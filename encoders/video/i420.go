package video

import (
	"math"

	"kvmgate/framebuffer"
)

// Picture is an I420 (YUV 4:2:0, planar) picture: a W×H luma plane and two
// ⌈W/2⌉×⌈H/2⌉ chroma planes. Samples use BT.601 limited range, as VP8
// and H.264 streams without colour information are decoded.
type Picture struct {
	W, H    int
	Y, U, V []byte
	YStride int
	CStride int
}

// NewPicture allocates a w×h picture with tight strides.
func NewPicture(w, h int) *Picture {
	cw, ch := (w+1)/2, (h+1)/2
	buf := make([]byte, w*h+2*cw*ch)
	return &Picture{
		W: w, H: h,
		Y: buf[:w*h], U: buf[w*h : w*h+cw*ch], V: buf[w*h+cw*ch:],
		YStride: w, CStride: cw,
	}
}

// FromRGBA fills p from src. When p is larger than src (a codec that needs
// even sizes) the last column and row are repeated.
func (p *Picture) FromRGBA(src *framebuffer.Canvas) {
	rgbaToI420(p.Y, p.U, p.V, p.YStride, p.CStride, p.W, p.H, src)
}

// rgbaToI420 converts src into planes of a tw×th picture, two rows at a
// time: each 2×2 block gives four luma samples and one chroma pair from the
// block's mean colour.
func rgbaToI420(y, u, v []byte, ys, cs, tw, th int, src *framebuffer.Canvas) {
	if src.W == 0 || src.H == 0 || tw == 0 || th == 0 {
		return
	}
	cw, ch := (tw+1)/2, (th+1)/2
	pix, stride := src.Pix, src.Stride
	lastX := (src.W - 1) * 4
	for cy := 0; cy < ch; cy++ {
		y0, y1 := 2*cy, 2*cy+1
		r0 := pix[min(y0, src.H-1)*stride:]
		r1 := pix[min(y1, src.H-1)*stride:]
		l0 := y[y0*ys : y0*ys+tw]
		var l1 []byte
		if y1 < th {
			l1 = y[y1*ys : y1*ys+tw]
		}
		ur := u[cy*cs : cy*cs+cw]
		vr := v[cy*cs : cy*cs+cw]
		for cx := 0; cx < cw; cx++ {
			xa := min(8*cx, lastX)
			xb := min(8*cx+4, lastX)
			ra, ga, ba := int32(r0[xa]), int32(r0[xa+1]), int32(r0[xa+2])
			rb, gb, bb := int32(r0[xb]), int32(r0[xb+1]), int32(r0[xb+2])
			rc, gc, bc := int32(r1[xa]), int32(r1[xa+1]), int32(r1[xa+2])
			rd, gd, bd := int32(r1[xb]), int32(r1[xb+1]), int32(r1[xb+2])
			x0 := 2 * cx
			l0[x0] = luma(ra, ga, ba)
			if x0+1 < tw {
				l0[x0+1] = luma(rb, gb, bb)
			}
			if l1 != nil {
				l1[x0] = luma(rc, gc, bc)
				if x0+1 < tw {
					l1[x0+1] = luma(rd, gd, bd)
				}
			}
			r := (ra + rb + rc + rd + 2) >> 2
			g := (ga + gb + gc + gd + 2) >> 2
			b := (ba + bb + bc + bd + 2) >> 2
			ur[cx] = byte(((-38*r - 74*g + 112*b + 128) >> 8) + 128)
			vr[cx] = byte(((112*r - 94*g - 18*b + 128) >> 8) + 128)
		}
	}
}

func luma(r, g, b int32) byte { return byte(((66*r + 129*g + 25*b + 128) >> 8) + 16) }

// ToRGBA converts p into dst, which is resized to p's size.
func (p *Picture) ToRGBA(dst *framebuffer.Canvas) {
	dst.Resize(p.W, p.H)
	i420ToRGBA(dst, p.Y, p.U, p.V, p.YStride, p.CStride, p.W, p.H)
}

// i420ToRGBA converts a w×h region of planes into dst's top-left corner.
func i420ToRGBA(dst *framebuffer.Canvas, y, u, v []byte, ys, cs, w, h int) {
	w, h = min(w, dst.W), min(h, dst.H)
	for row := 0; row < h; row++ {
		out := dst.Pix[row*dst.Stride : row*dst.Stride+w*4]
		yr := y[row*ys : row*ys+w]
		ur := u[(row/2)*cs:]
		vr := v[(row/2)*cs:]
		for x := 0; x < w; x++ {
			c := 298 * (int32(yr[x]) - 16)
			d := int32(ur[x/2]) - 128
			e := int32(vr[x/2]) - 128
			o := out[4*x : 4*x+4 : 4*x+4]
			o[0] = clamp8((c + 409*e + 128) >> 8)
			o[1] = clamp8((c - 100*d - 208*e + 128) >> 8)
			o[2] = clamp8((c + 516*d + 128) >> 8)
			o[3] = 0xff
		}
	}
}

func clamp8(x int32) byte {
	if x < 0 {
		return 0
	}
	if x > 255 {
		return 255
	}
	return byte(x)
}

// PSNR returns the peak signal-to-noise ratio in dB between the RGB
// channels of a and b over their common area (+Inf when equal, 0 when
// either is empty).
func PSNR(a, b *framebuffer.Canvas) float64 {
	w, h := min(a.W, b.W), min(a.H, b.H)
	if w == 0 || h == 0 {
		return 0
	}
	var sum uint64
	for y := 0; y < h; y++ {
		ra := a.Pix[y*a.Stride : y*a.Stride+w*4]
		rb := b.Pix[y*b.Stride : y*b.Stride+w*4]
		for i := 0; i < len(ra); i += 4 {
			for c := 0; c < 3; c++ {
				d := int64(ra[i+c]) - int64(rb[i+c])
				sum += uint64(d * d)
			}
		}
	}
	if sum == 0 {
		return math.Inf(1)
	}
	mse := float64(sum) / float64(w*h*3)
	return 10 * math.Log10(255*255/mse)
}
