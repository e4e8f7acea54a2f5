package imgmetric

import (
	"math"
	"math/rand/v2"
	"testing"

	"kvmgate/framebuffer"
)

// noise returns a w×h canvas of grey noise from seed.
func noise(t testing.TB, w, h int, seed uint64) *framebuffer.Canvas {
	t.Helper()
	c, err := framebuffer.NewCanvas(w, h)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 1))
	for i := 0; i < len(c.Pix); i += 4 {
		v := byte(r.IntN(256))
		c.Pix[i], c.Pix[i+1], c.Pix[i+2] = v, v, v
	}
	return c
}

// blur returns c with every pixel replaced by the mean of its row
// neighbours (a mild horizontal box blur).
func blur(c *framebuffer.Canvas) *framebuffer.Canvas {
	d := c.Clone()
	for y := 0; y < c.H; y++ {
		src, dst := c.Row(0, y, c.W), d.Row(0, y, d.W)
		for x := 1; x < c.W-1; x++ {
			for k := 0; k < 3; k++ {
				dst[4*x+k] = byte((int(src[4*x-4+k]) + int(src[4*x+k]) + int(src[4*x+4+k])) / 3)
			}
		}
	}
	return d
}

// refSSIM is SSIM written the slow, obvious way: float luma, two-pass
// means and variances per window.
func refSSIM(a, b *framebuffer.Canvas) float64 {
	c1, c2 := math.Pow(0.01*255, 2), math.Pow(0.03*255, 2)
	luma := func(c *framebuffer.Canvas, x, y int) float64 {
		p := c.At(x, y)
		return 0.299*float64(p&0xff) + 0.587*float64(p>>8&0xff) + 0.114*float64(p>>16&0xff)
	}
	var sum float64
	var count int
	for y0 := 0; y0+Window <= a.H; y0 += Window {
		for x0 := 0; x0+Window <= a.W; x0 += Window {
			var ma, mb float64
			for y := y0; y < y0+Window; y++ {
				for x := x0; x < x0+Window; x++ {
					ma += luma(a, x, y)
					mb += luma(b, x, y)
				}
			}
			ma /= Window * Window
			mb /= Window * Window
			var va, vb, cov float64
			for y := y0; y < y0+Window; y++ {
				for x := x0; x < x0+Window; x++ {
					da, db := luma(a, x, y)-ma, luma(b, x, y)-mb
					va += da * da
					vb += db * db
					cov += da * db
				}
			}
			n := float64(Window*Window - 1)
			va, vb, cov = va/n, vb/n, cov/n
			sum += (2*ma*mb + c1) * (2*cov + c2) / ((ma*ma + mb*mb + c1) * (va + vb + c2))
			count++
		}
	}
	return sum / float64(count)
}

func TestSSIM(t *testing.T) {
	a := noise(t, 67, 45, 1) // not a multiple of the window: edges are ignored
	black, _ := framebuffer.NewCanvas(67, 45)
	tests := []struct {
		name     string
		b        *framebuffer.Canvas
		min, max float64
	}{
		{"identical", a.Clone(), 1, 1},
		{"blurred", blur(a), 0.3, 0.9},
		{"unrelated noise", noise(t, 67, 45, 2), -0.1, 0.1},
		{"black", black, -0.01, 0.01},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := SSIM(a, tt.b)
			if got < tt.min || got > tt.max {
				t.Errorf("SSIM = %.4f, want in [%.2f, %.2f]", got, tt.min, tt.max)
			}
			if want := refSSIM(a, tt.b); math.Abs(got-want) > 1e-9 {
				t.Errorf("SSIM = %.12f, the reference computation gives %.12f", got, want)
			}
			if sym := SSIM(tt.b, a); math.Abs(got-sym) > 1e-12 {
				t.Errorf("SSIM(a, b) = %v but SSIM(b, a) = %v", got, sym)
			}
		})
	}
	if got := SSIM(a, &framebuffer.Canvas{}); got != 0 {
		t.Errorf("SSIM against an empty canvas = %v, want 0", got)
	}
}

func TestSub(t *testing.T) {
	a := noise(t, 40, 30, 3)
	b := a.Clone()
	r := framebuffer.Rect{X: 8, Y: 16, W: 24, H: 8}
	b.Fill(framebuffer.Rect{X: 0, Y: 0, W: 40, H: 8}, 0xff000000) // outside r
	if got := SSIM(Sub(a, r), Sub(b, r)); got != 1 {
		t.Errorf("SSIM of a region that did not change = %v, want 1", got)
	}
	s := Sub(b, r)
	if s.W != 24 || s.H != 8 || s.At(0, 0) != a.At(8, 16) || s.At(23, 7) != a.At(31, 23) {
		t.Errorf("Sub does not view the rectangle: %dx%d, corners %08x %08x", s.W, s.H, s.At(0, 0), s.At(23, 7))
	}
	s.Fill(s.Bounds(), 0xff0000ff)
	if b.At(8, 16) != 0xff0000ff || b.At(7, 16) == 0xff0000ff {
		t.Error("writes through Sub do not land inside the rectangle only")
	}
}

func BenchmarkSSIM1080p(b *testing.B) {
	x, y := noise(b, 1920, 1080, 4), noise(b, 1920, 1080, 5)
	b.SetBytes(int64(len(x.Pix)))
	for b.Loop() {
		SSIM(x, y)
	}
}
