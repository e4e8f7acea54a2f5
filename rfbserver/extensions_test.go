package rfbserver

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"kvmgate/framebuffer"
	"kvmgate/rfb"
)

// TestExtendedClipboardAndContinuousUpdates runs kvmgate's RFB client
// (which asks for Extended Clipboard, ContinuousUpdates and Fence) against
// the server: non-Latin-1 text crosses both ways intact, which only the
// extended clipboard can carry, and pictures keep flowing in continuous
// mode.
func TestExtendedClipboardAndContinuousUpdates(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	be := newBackend(t, 120, 80)
	rec := newRecorder()
	addr := startServer(t, &Server{FB: be.fb, Input: rec, Logger: slog.New(slog.DiscardHandler)})
	opts := rfb.NewOptions()
	opts.Encodings = []rfb.Encoding{rfb.EncodingTight, rfb.EncodingZRLE}
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
	waitPicture(t, ctx, fb, be.canvas)

	// Server to client.
	const out = "grüße → 世界\nline two"
	be.fb.SetClipboard(out)
	v := fb.Subscribe()
	defer v.Close()
	var mirror framebuffer.Canvas
	for got := ""; got != out; {
		select {
		case <-v.Changed():
			if u := v.Take(&mirror); u.ClipboardChanged {
				got = u.Clipboard
			}
		case <-ctx.Done():
			t.Fatalf("client clipboard never became %q", out)
		}
	}

	// Client to server.
	const in = "κείμενο\nback"
	if err := cl.Clipboard(in); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "clipboard", func() bool {
		return len(rec.clips) > 0 && rec.clips[len(rec.clips)-1] == in
	})

	// Updates keep flowing, several in a row without requests if the
	// client turned continuous updates on.
	for i := range 5 {
		r := framebuffer.Rect{X: 10 * i, Y: 5, W: 20, H: 20}
		be.canvas.Fill(r, 0xff000000|uint32(40*i))
		be.batch.Damage(r)
		be.fb.Publish(be.canvas, &be.batch)
		waitPicture(t, ctx, fb, be.canvas)
	}
}
