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

// TestOnlyChangedPixelsAreSent publishes damage over the whole screen where
// only a few pixels changed: the client must get those, not the screen.
func TestOnlyChangedPixelsAreSent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	be := newBackend(t, 203, 157)
	addr := startServer(t, &Server{FB: be.fb, Logger: slog.New(slog.DiscardHandler)})
	opts := rfb.NewOptions()
	opts.Encodings = []rfb.Encoding{rfb.EncodingRaw}
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
	before := cl.Stats().BytesRead

	be.canvas.Fill(framebuffer.Rect{X: 50, Y: 60, W: 10, H: 3}, 0xff0000ff)
	be.canvas.Fill(framebuffer.Rect{X: 150, Y: 100, W: 4, H: 2}, 0xff00ff00)
	be.batch.Damage(be.canvas.Bounds())
	be.fb.Publish(be.canvas, &be.batch)
	waitPicture(t, ctx, fb, be.canvas)
	// Two raw rectangles of 10×3 and 4×2 pixels, or one spanning both
	// changes' rows: far less than the 127 KB of the whole screen.
	if n := cl.Stats().BytesRead - before; n > 104*43*4+64 {
		t.Fatalf("%d bytes for 38 changed pixels", n)
	}

	// Damage without any change sends nothing: the next real change is
	// the next update.
	be.batch.Damage(be.canvas.Bounds())
	be.fb.Publish(be.canvas, &be.batch)
	updates := cl.Stats().Updates
	be.canvas.Fill(framebuffer.Rect{X: 0, Y: 0, W: 1, H: 1}, 0xffffffff)
	be.batch.Damage(framebuffer.Rect{W: 1, H: 1})
	be.fb.Publish(be.canvas, &be.batch)
	waitPicture(t, ctx, fb, be.canvas)
	if got := cl.Stats().Updates - updates; got != 1 {
		t.Fatalf("%d updates for one change after an empty repaint, want 1", got)
	}
}
