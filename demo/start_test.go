package demo

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"kvmgate/framebuffer"
	"kvmgate/input"
	"kvmgate/rfb"
)

// waitSame waits until the client's framebuffer shows what the console's
// does.
func waitSame(t *testing.T, ctx context.Context, client, console *framebuffer.Framebuffer) {
	t.Helper()
	v := client.Subscribe()
	defer v.Close()
	for {
		got, want := client.Snapshot(), console.Snapshot()
		if got.Equal(want) {
			return
		}
		select {
		case <-v.Changed():
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
			t.Fatalf("client picture never matched the console's (%dx%d vs %dx%d)", got.W, got.H, want.W, want.H)
		}
	}
}

// TestStartOverRFB types into the demo through kvmgate's own RFB client and
// checks what the console received and what the client sees.
func TestStartOverRFB(t *testing.T) {
	for _, enc := range []rfb.Encoding{rfb.EncodingZRLE, rfb.EncodingHextile, rfb.EncodingRaw} {
		t.Run(enc.String(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			srvCtx, stop := context.WithCancel(ctx)
			addr, c, err := Start(srvCtx, Options{PauseAnimation: true, Password: "pw", Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			opts := rfb.NewOptions()
			opts.Password = "pw"
			opts.Encodings = []rfb.Encoding{enc, rfb.EncodingCopyRect}
			cl, err := rfb.Dial(ctx, addr, opts)
			if err != nil {
				t.Fatal(err)
			}
			if cl.Name() != Title {
				t.Errorf("desktop name %q", cl.Name())
			}
			fb := framebuffer.New()
			runErr := make(chan error, 1)
			go func() { runErr <- cl.Run(ctx, fb) }()
			select {
			case <-cl.FullFrame():
			case <-ctx.Done():
				t.Fatal("no full frame")
			}

			for _, k := range []input.KeyEvent{
				{Code: "KeyE", Key: "e"}, {Code: "KeyC", Key: "c"}, {Code: "KeyH", Key: "h"}, {Code: "KeyO", Key: "o"},
				{Code: "Space", Key: " "}, {Code: "ShiftLeft", Key: "Shift", Down: true}, {Code: "KeyO", Key: "O"},
				{Code: "ShiftLeft", Key: "Shift"}, {Code: "KeyK", Key: "k"}, {Code: "Enter", Key: "Enter"},
			} {
				if k.Code == "ShiftLeft" {
					if err := cl.Key(k); err != nil {
						t.Fatal(err)
					}
					continue
				}
				k.Down = true
				if err := cl.Key(k); err != nil {
					t.Fatal(err)
				}
				k.Down = false
				if err := cl.Key(k); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.WaitText(ctx, "demo$ echo Ok\nOk\ndemo$ "); err != nil {
				t.Fatal(err)
			}
			for _, k := range []input.KeyEvent{{Code: "ControlLeft", Key: "Control"}, {Code: "AltLeft", Key: "Alt"}, {Code: "Delete", Key: "Delete"}} {
				k.Down = true
				cl.Key(k)
			}
			if err := c.WaitText(ctx, CtrlAltDelMessage); err != nil {
				t.Fatal(err)
			}
			waitSame(t, ctx, fb, c.Framebuffer())

			stop()
			select {
			case <-c.Done():
			case <-time.After(10 * time.Second):
				t.Fatal("demo did not stop after its context ended")
			}
			<-runErr // ends with the server; how does not matter here
		})
	}
}
