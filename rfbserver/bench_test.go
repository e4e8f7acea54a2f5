package rfbserver

import (
	"testing"

	"kvmgate/framebuffer"
	"kvmgate/rfb"
)

// desktop paints 1920×1080 content resembling a desktop: a flat
// background, windows with text-like strokes, and a smooth "photo".
func desktop() *framebuffer.Canvas {
	c, _ := framebuffer.NewCanvas(1920, 1080)
	c.Fill(c.Bounds(), 0xff6b4a2d)
	for i, win := range []framebuffer.Rect{{X: 60, Y: 40, W: 900, H: 700}, {X: 700, Y: 300, W: 1100, H: 700}} {
		c.Fill(win, 0xfff0f0f0)
		c.Fill(framebuffer.Rect{X: win.X, Y: win.Y, W: win.W, H: 28}, 0xff803010+uint32(i)*0x20)
		for y := win.Y + 40; y < win.Y+win.H-10; y++ {
			if (y-win.Y)%16 > 11 {
				continue
			}
			row := c.Row(win.X+10, y, win.W-20)
			for x := 0; x < len(row)/4; x++ {
				if (x*7+y*3)%11 < 3 && x%90 < 70 {
					row[4*x], row[4*x+1], row[4*x+2] = 20, 20, 30
				}
			}
		}
	}
	photo := framebuffer.Rect{X: 1000, Y: 60, W: 640, H: 200}
	for y := photo.Y; y < photo.Y+photo.H; y++ {
		row := c.Row(photo.X, y, photo.W)
		for x := 0; x < photo.W; x++ {
			row[4*x], row[4*x+1], row[4*x+2] = byte(x/3+y), byte(y*2-x/5), byte(x^y)
		}
	}
	return c
}

func benchmarkEncoder(b *testing.B, enc rfb.Encoding, pf rfb.PixelFormat) {
	c := desktop()
	e := encoderFactories[enc]()
	pw := newPixelWriter(pf)
	var buf []byte
	var err error
	b.ResetTimer()
	for b.Loop() {
		buf = buf[:0]
		for y := 0; y < c.H; y += 128 {
			buf, err = e.encode(buf, c, framebuffer.Rect{X: 0, Y: y, W: c.W, H: min(128, c.H-y)}, pw)
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	px := float64(c.W * c.H)
	b.SetBytes(int64(c.W * c.H * 4))
	b.ReportMetric(px*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpixel/s")
	b.ReportMetric(float64(len(buf)), "bytes/frame")
}

func BenchmarkEncodeRaw(b *testing.B)     { benchmarkEncoder(b, rfb.EncodingRaw, rfb.NativeFormat) }
func BenchmarkEncodeHextile(b *testing.B) { benchmarkEncoder(b, rfb.EncodingHextile, rfb.NativeFormat) }
func BenchmarkEncodeZRLE(b *testing.B)    { benchmarkEncoder(b, rfb.EncodingZRLE, rfb.NativeFormat) }
func BenchmarkEncodeHextile16(b *testing.B) {
	benchmarkEncoder(b, rfb.EncodingHextile, rfb.Format16)
}
func BenchmarkEncodeZRLE16(b *testing.B) { benchmarkEncoder(b, rfb.EncodingZRLE, rfb.Format16) }
