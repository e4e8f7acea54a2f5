package video_test

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"kvmgate/demo"
	"kvmgate/encoders/video"
	"kvmgate/framebuffer"
)

// textScreen paints a console-like picture: light glyph-like dots on a dark
// background, a title bar, and a coloured box at (bx, by).
func textScreen(w, h, bx, by int, seed uint64) *framebuffer.Canvas {
	c, _ := framebuffer.NewCanvas(w, h)
	c.Fill(c.Bounds(), 0xff201810)
	c.Fill(framebuffer.Rect{W: w, H: 20}, 0xff804020)
	rng := rand.New(rand.NewPCG(seed, 7))
	for cy := 24; cy+16 <= h; cy += 16 {
		for cx := 0; cx+8 <= w; cx += 8 {
			if rng.IntN(3) == 0 {
				continue
			}
			for y := 3; y < 13; y++ {
				bits := rng.Uint32()
				for x := 1; x < 7; x++ {
					if bits&(1<<x) != 0 {
						c.Fill(framebuffer.Rect{X: cx + x, Y: cy + y, W: 1, H: 1}, 0xffd0d0d0)
					}
				}
			}
		}
	}
	c.Fill(framebuffer.Rect{X: bx, Y: by, W: 40, H: 30}, 0xff30c0f0)
	return c
}

// demoScreen is the demo console's first picture.
func demoScreen(t *testing.T, w, h int) *framebuffer.Canvas {
	t.Helper()
	con, err := demo.New(demo.Options{Width: w, Height: h, PauseAnimation: true,
		Now: func() time.Time { return time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	return con.Framebuffer().Snapshot()
}

func available(t *testing.T, codec string) {
	t.Helper()
	if err := video.Available(codec); err != nil {
		var ue *video.UnavailableError
		if !errors.As(err, &ue) {
			t.Fatalf("Available(%s) = %v, want nil or an *UnavailableError", codec, err)
		}
		t.Skipf("%v (this build lacks the %s codec; scripts/test.sh builds with -tags libvpx,openh264)", err, codec)
	}
}

// TestRoundTrip encodes moving then still pictures, decodes every frame
// and checks keyframes, sizes and the quality of the settled picture.
func TestRoundTrip(t *testing.T) {
	cases := []struct {
		codec string
		w, h  int
		kbps  int
	}{
		{video.VP8, 640, 400, 2000},
		{video.VP8, 321, 241, 800},
		{video.H264, 640, 400, 2000},
		{video.H264, 321, 241, 800},
	}
	for _, tc := range cases {
		t.Run(tc.codec+"/"+framebuffer.Rect{W: tc.w, H: tc.h}.String(), func(t *testing.T) {
			available(t, tc.codec)
			enc, err := video.New(tc.codec, video.Options{Width: tc.w, Height: tc.h, Bitrate: tc.kbps * 1000})
			if err != nil {
				t.Fatal(err)
			}
			defer enc.Close()
			if enc.Codec() != tc.codec {
				t.Errorf("Codec() = %q, want %q", enc.Codec(), tc.codec)
			}
			dec, err := video.NewDecoder(tc.codec)
			if err != nil {
				t.Fatal(err)
			}
			defer dec.Close()

			var got framebuffer.Canvas
			var buf []byte
			var pts time.Duration
			var src *framebuffer.Canvas
			frames := 0
			encode := func(key, refine bool) video.Frame {
				t.Helper()
				f, err := enc.Encode(buf[:0], src, pts, key)
				if refine {
					f, err = enc.Refine(buf[:0], src, pts)
				}
				if err != nil {
					t.Fatal(err)
				}
				pts += 33 * time.Millisecond
				if len(f.Data) == 0 {
					t.Fatalf("frame %d: no data", frames)
				}
				pic, err := dec.Decode(f.Data)
				if err != nil {
					t.Fatalf("frame %d: %v", frames, err)
				}
				if pic == nil {
					t.Fatalf("frame %d: decoder gave no picture", frames)
				}
				if pic.W < tc.w || pic.H < tc.h || pic.W > tc.w+1 || pic.H > tc.h+1 {
					t.Fatalf("frame %d: decoded %dx%d, want %dx%d (or one more for even sizes)", frames, pic.W, pic.H, tc.w, tc.h)
				}
				pic.ToRGBA(&got)
				buf = f.Data
				frames++
				return f
			}
			// Motion: the box moves each frame.
			for i := range 10 {
				src = textScreen(tc.w, tc.h, 10+i*7, 40+i*3, 1)
				f := encode(false, false)
				if (i == 0) != f.Keyframe {
					t.Errorf("frame %d: keyframe %v, want %v", i, f.Keyframe, i == 0)
				}
			}
			if err := enc.SetBitrate(tc.kbps * 500); err != nil {
				t.Fatal(err)
			}
			if enc.Bitrate() != tc.kbps*500 {
				t.Errorf("Bitrate() = %d after SetBitrate(%d)", enc.Bitrate(), tc.kbps*500)
			}
			if f := encode(true, false); !f.Keyframe {
				t.Error("a forced keyframe is not a keyframe")
			}
			// The screen went still: a refinement, then the same picture
			// again (which must not lose what the refinement gained).
			if f := encode(false, true); !f.Keyframe {
				t.Error("a refinement is not a keyframe")
			}
			for range 3 {
				encode(false, false)
			}
			if p := video.PSNR(&got, src); p < 30 {
				t.Errorf("settled picture PSNR %.1f dB, want >= 30", p)
			} else {
				t.Logf("settled picture PSNR %.1f dB, last frame %d bytes", p, len(buf))
			}
		})
	}
}

// TestDemoScreenQuality checks the still demo console right after a
// keyframe, the picture the e2e test compares in the browser.
func TestDemoScreenQuality(t *testing.T) {
	src := demoScreen(t, 640, 400)
	for _, codec := range video.Codecs {
		t.Run(codec, func(t *testing.T) {
			available(t, codec)
			enc, err := video.New(codec, video.Options{Width: src.W, Height: src.H})
			if err != nil {
				t.Fatal(err)
			}
			defer enc.Close()
			dec, err := video.NewDecoder(codec)
			if err != nil {
				t.Fatal(err)
			}
			defer dec.Close()
			var got framebuffer.Canvas
			for i := range 3 {
				f, err := enc.Encode(nil, src, time.Duration(i)*100*time.Millisecond, false)
				if err != nil {
					t.Fatal(err)
				}
				pic, err := dec.Decode(f.Data)
				if err != nil || pic == nil {
					t.Fatalf("frame %d: picture %v, error %v", i, pic, err)
				}
				pic.ToRGBA(&got)
				t.Logf("frame %d: %d bytes, keyframe %v, PSNR %.1f dB", i, len(f.Data), f.Keyframe, video.PSNR(&got, src))
			}
			if p := video.PSNR(&got, src); p < 30 {
				t.Errorf("PSNR %.1f dB, want >= 30", p)
			}
		})
	}
}

func TestEncoderRejectsWrongSize(t *testing.T) {
	for _, codec := range video.Codecs {
		t.Run(codec, func(t *testing.T) {
			available(t, codec)
			enc, err := video.New(codec, video.Options{Width: 64, Height: 48})
			if err != nil {
				t.Fatal(err)
			}
			defer enc.Close()
			c, _ := framebuffer.NewCanvas(48, 64)
			if _, err := enc.Encode(nil, c, 0, false); err == nil {
				t.Error("Encode of a 48x64 picture into a 64x48 encoder succeeded")
			}
			enc.Close()
			if _, err := enc.Encode(nil, c, 0, false); err == nil {
				t.Error("Encode after Close succeeded")
			}
		})
	}
}

func TestDecoderRejectsGarbage(t *testing.T) {
	for _, codec := range video.Codecs {
		t.Run(codec, func(t *testing.T) {
			available(t, codec)
			dec, err := video.NewDecoder(codec)
			if err != nil {
				t.Fatal(err)
			}
			defer dec.Close()
			rng := rand.New(rand.NewPCG(3, 4))
			for i := range 50 {
				b := make([]byte, 1+rng.IntN(300))
				for j := range b {
					b[j] = byte(rng.Uint32())
				}
				// Errors are fine; crashes are not, and a picture from
				// garbage must still be a sane size.
				if pic, err := dec.Decode(b); err == nil && pic != nil && (pic.W > 16384 || pic.H > 16384) {
					t.Errorf("input %d: picture %dx%d", i, pic.W, pic.H)
				}
			}
			if _, err := dec.Decode(nil); err == nil {
				t.Error("Decode(nil) succeeded")
			}
		})
	}
}

func TestUnknownCodec(t *testing.T) {
	if _, err := video.New("vp9", video.Options{Width: 8, Height: 8}); !errors.Is(err, video.ErrUnknownCodec) {
		t.Errorf("New(vp9) error = %v, want ErrUnknownCodec", err)
	}
	if err := video.Available("av1"); !errors.Is(err, video.ErrUnknownCodec) {
		t.Errorf("Available(av1) = %v, want ErrUnknownCodec", err)
	}
	if _, err := video.New(video.VP8, video.Options{Width: 0, Height: 8}); err == nil {
		t.Error("New with width 0 succeeded")
	}
}

func TestWebCodecsString(t *testing.T) {
	sps := []byte{0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x28, 0x8c, 0x8d, 0, 0, 0, 1, 0x68, 0xce}
	cases := []struct {
		codec string
		key   []byte
		want  string
	}{
		{video.VP8, nil, "vp8"},
		{video.H264, sps, "avc1.42c028"},
		{video.H264, sps[:6], "avc1.42e01f"},
		{video.H264, []byte{0, 0, 1, 0x65, 1, 2, 3}, "avc1.42e01f"},
	}
	for _, tc := range cases {
		if got := video.WebCodecsString(tc.codec, tc.key); got != tc.want {
			t.Errorf("WebCodecsString(%s, % x) = %q, want %q", tc.codec, tc.key, got, tc.want)
		}
	}
}

func TestI420RoundTrip(t *testing.T) {
	for _, sz := range [][2]int{{64, 48}, {33, 17}, {1, 1}} {
		// Flat areas survive the colour conversion almost exactly.
		src, _ := framebuffer.NewCanvas(sz[0], sz[1])
		src.Fill(src.Bounds(), 0xff336699)
		pic := video.NewPicture(sz[0], sz[1])
		pic.FromRGBA(src)
		var got framebuffer.Canvas
		pic.ToRGBA(&got)
		if p := video.PSNR(&got, src); p < 40 {
			t.Errorf("%dx%d flat picture: PSNR %.1f dB after I420 and back, want >= 40", sz[0], sz[1], p)
		}
	}
	a := textScreen(64, 48, 0, 0, 2)
	if p := video.PSNR(a, a); p < 1000 {
		t.Errorf("PSNR of equal pictures = %v, want +Inf", p)
	}
}

func BenchmarkRGBAToI420(b *testing.B) {
	src := textScreen(1920, 1080, 100, 100, 1)
	pic := video.NewPicture(1920, 1080)
	b.SetBytes(int64(len(src.Pix)))
	for b.Loop() {
		pic.FromRGBA(src)
	}
}

func benchmarkEncode(b *testing.B, codec string, w, h int) {
	if err := video.Available(codec); err != nil {
		b.Skip(err)
	}
	enc, err := video.New(codec, video.Options{Width: w, Height: h, Bitrate: 4_000_000})
	if err != nil {
		b.Fatal(err)
	}
	defer enc.Close()
	frames := make([]*framebuffer.Canvas, 8)
	for i := range frames {
		frames[i] = textScreen(w, h, 20+i*9, 60+i*5, 1)
	}
	var buf []byte
	var bytes int
	i := 0
	for b.Loop() {
		f, err := enc.Encode(buf[:0], frames[i%len(frames)], time.Duration(i)*33*time.Millisecond, false)
		if err != nil {
			b.Fatal(err)
		}
		buf = f.Data
		bytes += len(f.Data)
		i++
	}
	b.ReportMetric(float64(bytes)/float64(i), "B/frame")
}

func BenchmarkEncodeVP8At1280x800(b *testing.B)  { benchmarkEncode(b, video.VP8, 1280, 800) }
func BenchmarkEncodeH264At1280x800(b *testing.B) { benchmarkEncode(b, video.H264, 1280, 800) }
