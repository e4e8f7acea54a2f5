package rfbserver

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"kvmgate/framebuffer"
	"kvmgate/rfb"
)

// TestTightWithRFBClient decodes Tight and TightPNG with kvmgate's own RFB
// client (which implements every Tight method) in several pixel formats
// and quality settings. With a quality level the noisy areas first go as
// JPEG; refinement must still bring the client's picture to exact
// equality.
func TestTightWithRFBClient(t *testing.T) {
	byName := map[string]rfb.PixelFormat{}
	for _, f := range testFormats {
		byName[f.name] = f.pf
	}
	cases := []struct {
		name    string
		enc     rfb.Encoding
		format  string
		quality int
	}{
		{"tight/native/lossless", rfb.EncodingTight, "native", -1},
		{"tight/rgb565/lossless", rfb.EncodingTight, "rgb565", -1},
		{"tight/32-be/lossless", rfb.EncodingTight, "32-be", -1},
		{"tight/native/q5", rfb.EncodingTight, "native", 5},
		{"tight/rgb565/q5", rfb.EncodingTight, "rgb565", 5}, // no JPEG without TPIXELs
		{"tightpng/native/lossless", rfb.EncodingTightPNG, "native", -1},
		{"tightpng/native/q2", rfb.EncodingTightPNG, "native", 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pf, ok := byName[tc.format]
			if !ok {
				t.Fatalf("no test format %q", tc.format)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			be := newBackend(t, 300, 200)
			addr := startServer(t, &Server{FB: be.fb, Logger: slog.New(slog.DiscardHandler)})
			opts := rfb.NewOptions()
			opts.Encodings = []rfb.Encoding{tc.enc, rfb.EncodingCopyRect}
			opts.QualityLevel = tc.quality
			opts.CompressLevel = 2
			opts.PixelFormat = &pf
			cl, err := rfb.Dial(ctx, addr, opts)
			if err != nil {
				t.Fatal(err)
			}
			fb := framebuffer.New()
			done := make(chan error, 1)
			go func() { done <- cl.Run(ctx, fb) }()
			defer func() {
				cl.Close()
				<-done
			}()
			waitPicture(t, ctx, fb, quantized(be.canvas, pf))

			r := framebuffer.Rect{X: 20, Y: 110, W: 90, H: 40}
			be.canvas.Fill(r, 0xff20c0f0)
			be.batch.Damage(r)
			src := framebuffer.Rect{X: 0, Y: 0, W: 300, H: 50}
			be.canvas.Move(src, 0, 60)
			be.batch.Move(src, 0, 60)
			be.fb.Publish(be.canvas, &be.batch)
			waitPicture(t, ctx, fb, quantized(be.canvas, pf))

			st := cl.Stats()
			if st.Rects[tc.enc] == 0 {
				t.Fatalf("rectangles by encoding %v, want %v", st.Rects, tc.enc)
			}
		})
	}
}

// encodeOnce encodes r of c with a fresh Tight encoder.
func encodeOnce(t *testing.T, c *framebuffer.Canvas, r framebuffer.Rect, png bool, quality, compress int) ([]byte, bool) {
	t.Helper()
	e := newTightEncoder(png)
	e.setLevels(quality, compress)
	b, err := e.encode(nil, c, r, newPixelWriter(rfb.NativeFormat))
	if err != nil {
		t.Fatal(err)
	}
	return b, e.lastLossy()
}

// TestTightMethods checks which method each kind of content gets, and that
// the quality level changes the size of JPEG output.
func TestTightMethods(t *testing.T) {
	c, _ := framebuffer.NewCanvas(256, 64)
	pattern(c, 5)
	noise := framebuffer.Rect{X: 160, Y: 32, W: 96, H: 16} // pattern's noise band
	solid, _ := framebuffer.NewCanvas(64, 64)
	solid.Fill(solid.Bounds(), 0xff102030)
	mono, _ := framebuffer.NewCanvas(64, 64)
	mono.Fill(mono.Bounds(), 0xff000000)
	mono.Fill(framebuffer.Rect{X: 3, Y: 3, W: 10, H: 2}, 0xffffffff)

	cases := []struct {
		name    string
		c       *framebuffer.Canvas
		r       framebuffer.Rect
		png     bool
		quality int
		ctl     byte // expected high nibble of the control byte
		lossy   bool
	}{
		{"solid", solid, solid.Bounds(), false, 5, tightCtlFill, false},
		{"mono", mono, mono.Bounds(), false, 5, tightCtlFilter | tightStreamMono<<4, false},
		{"noise lossless", c, noise, false, -1, tightStreamCopy << 4, false},
		{"noise jpeg", c, noise, false, 5, tightCtlJPEG, true},
		{"noise png", c, noise, true, -1, tightCtlPNG, false},
		{"mono png", mono, mono.Bounds(), true, -1, tightCtlPNG, false},
		{"solid png", solid, solid.Bounds(), true, -1, tightCtlFill, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, lossy := encodeOnce(t, tc.c, tc.r, tc.png, tc.quality, 2)
			if len(b) == 0 || b[0]&0xf0 != tc.ctl {
				t.Fatalf("control byte %#x, want method %#x", b[0], tc.ctl)
			}
			if lossy != tc.lossy {
				t.Fatalf("lossy %v, want %v", lossy, tc.lossy)
			}
		})
	}

	low, _ := encodeOnce(t, c, noise, false, 0, 2)
	high, _ := encodeOnce(t, c, noise, false, 9, 2)
	if len(low) >= len(high) {
		t.Fatalf("JPEG at quality 0 is %d bytes, at 9 %d: want smaller at 0", len(low), len(high))
	}
}

func TestAppendCompactLen(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want []byte
	}{
		{0, []byte{0}},
		{127, []byte{0x7f}},
		{128, []byte{0x80, 0x01}},
		{16383, []byte{0xff, 0x7f}},
		{16384, []byte{0x80, 0x80, 0x01}},
		{1<<22 - 1, []byte{0xff, 0xff, 0xff}},
	} {
		if got := appendCompactLen(nil, tc.n); string(got) != string(tc.want) {
			t.Errorf("appendCompactLen(%d) = %x, want %x", tc.n, got, tc.want)
		}
	}
}
