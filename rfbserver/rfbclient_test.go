package rfbserver

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"kvmgate/framebuffer"
	"kvmgate/rfb"
)

// waitPicture waits until fb holds want, or fails when ctx ends.
func waitPicture(t *testing.T, ctx context.Context, fb *framebuffer.Framebuffer, want *framebuffer.Canvas) {
	t.Helper()
	v := fb.Subscribe()
	defer v.Close()
	for {
		got := fb.Snapshot()
		if got.Equal(want) {
			return
		}
		select {
		case <-v.Changed():
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			t.Fatalf("client picture never matched: %s", diff(got, want))
		}
	}
}

// TestWithRFBClient connects kvmgate's own RFB client (package rfb) to the
// server for each encoding and several pixel formats, and compares the
// pictures pixel for pixel through a full frame, damage and a CopyRect.
func TestWithRFBClient(t *testing.T) {
	formats := []string{"native", "rgb565", "bgr233", "32-be", "32-high"}
	for _, enc := range []rfb.Encoding{rfb.EncodingRaw, rfb.EncodingHextile, rfb.EncodingZRLE} {
		for _, f := range testFormats {
			use := false
			for _, n := range formats {
				use = use || n == f.name
			}
			if !use {
				continue
			}
			t.Run(enc.String()+"/"+f.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				be := newBackend(t, 203, 157)
				addr := startServer(t, &Server{FB: be.fb, Password: "pw", Logger: slog.New(slog.DiscardHandler)})
				opts := rfb.NewOptions()
				opts.Password = "pw"
				opts.Encodings = []rfb.Encoding{enc, rfb.EncodingCopyRect}
				pf := f.pf
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

				src := framebuffer.Rect{X: 0, Y: 32, W: 203, H: 100}
				be.canvas.Move(src, 0, 0)
				be.batch.Move(src, 0, 0)
				r := framebuffer.Rect{X: 20, Y: 110, W: 90, H: 40}
				be.canvas.Fill(r, 0xff20c0f0)
				be.batch.Damage(r)
				be.fb.Publish(be.canvas, &be.batch)
				waitPicture(t, ctx, fb, quantized(be.canvas, pf))
				st := cl.Stats()
				if st.Rects[enc] == 0 || st.Rects[rfb.EncodingCopyRect] == 0 {
					t.Fatalf("rectangles by encoding %v, want %v and copyrect", st.Rects, enc)
				}
			})
		}
	}
}
