package e2e

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"kvmgate/demo"
	"kvmgate/encoders/video"
	"kvmgate/framebuffer"
	"kvmgate/internal/browsertest"
	"kvmgate/server"
)

// TestWebSocketVideo runs the demo console with its bouncing box through
// the real server to headless Chromium on `?transport=wsvideo`: WebCodecs
// decodes the frames, the canvas matches the framebuffer (PSNR >= 30 dB)
// once the box stops, and typed keys reach the console.
func TestWebSocketVideo(t *testing.T) {
	for _, codec := range video.Codecs {
		t.Run(codec, func(t *testing.T) {
			if err := video.Available(codec); err != nil {
				t.Skip(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			clock := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
			addr, con, err := demo.Start(ctx, demo.Options{
				Width: 640, Height: 400,
				Now:    func() time.Time { return clock },
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			})
			if err != nil {
				cancel()
				t.Fatal(err)
			}
			t.Cleanup(func() {
				cancel()
				select {
				case <-con.Done():
				case <-time.After(wait):
					t.Error("demo console did not stop")
				}
			})
			_, hs := startServer(t, server.Options{Target: "vnc://" + addr})
			fb := con.Framebuffer()

			b := browsertest.Launch(t)
			p := b.NewPage(t, hs.URL+"/?transport=wsvideo&codec="+codec)
			waitConnected(t, p)
			p.WaitFor(t, el+`.stats().transport === 'wsvideo' && `+el+`.stats().codec === '`+codec+`'`, wait)

			// The box moves: frames keep arriving and being drawn.
			var before int
			if err := p.EvalInto(el+`.stats().framesDrawn`, &before); err != nil {
				t.Fatal(err)
			}
			p.WaitFor(t, el+`.stats().framesDrawn >= `+strconv.Itoa(before+15), wait)

			// Still screen: the picture settles to the framebuffer.
			con.SetAnimationPaused(true)
			waitPSNR(t, p, fb, 30)

			// Keys reach the demo and their echo reaches the canvas.
			p.MustEval(t, el+`.focus()`)
			p.Type(t, "echo hi")
			p.KeyPress(t, "Enter")
			waitText(t, con, demo.Prompt+"echo hi\nhi")
			waitPSNR(t, p, fb, 30)
			waitPSNR(t, p, fb, 35) // and sharper once it is still

			var st struct {
				Transport, Codec string
				Bitrate          int
			}
			if err := p.EvalInto(el+`.stats()`, &st); err != nil {
				t.Fatal(err)
			}
			if st.Transport != "wsvideo" || st.Codec != codec {
				t.Errorf("stats: transport %q codec %q, want wsvideo %s", st.Transport, st.Codec, codec)
			}
			t.Logf("stats: %+v", st)
			noErrors(t, p)
		})
	}
}

// waitPSNR waits until the page's canvas is within min dB PSNR of the
// framebuffer.
func waitPSNR(t *testing.T, p *browsertest.Page, fb *framebuffer.Framebuffer, min float64) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		want := fb.Snapshot()
		got, err := p.CanvasPixels("kvm-console")
		if err != nil {
			t.Fatal(err)
		}
		psnr := 0.0
		if got.W == want.W && got.H == want.H {
			psnr = video.PSNR(got, want)
		}
		if psnr >= min {
			t.Logf("canvas PSNR %.1f dB", psnr)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the canvas (%dx%d) never came within %.0f dB of the framebuffer (%dx%d): %.1f dB", got.W, got.H, min, want.W, want.H, psnr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestWebSocketVideoFallback takes WebCodecs away from the page: asked for
// video, the client tells the server it cannot decode it and the console
// continues on tiles over the same connection, pixel-exact.
func TestWebSocketVideoFallback(t *testing.T) {
	if err := video.Available(video.VP8); err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addr, con, err := demo.Start(ctx, demo.Options{
		Width: 640, Height: 400, PauseAnimation: true,
		Now:    func() time.Time { return time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC) },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		<-con.Done()
	})
	_, hs := startServer(t, server.Options{Target: "vnc://" + addr})
	b := browsertest.Launch(t)
	p := b.NewPage(t, hs.URL+"/?transport=wsvideo")
	waitConnected(t, p)
	// Reconnect without WebCodecs.
	p.MustEval(t, `delete window.VideoDecoder; window.VideoDecoder = undefined; `+el+`.connect()`)
	p.WaitFor(t, el+`.state === 'connected' && `+el+`.stats().transport === 'tiles'`, wait)
	waitSame(t, p, con.Framebuffer())
	p.MustEval(t, el+`.focus()`)
	p.Type(t, "echo tiles")
	p.KeyPress(t, "Enter")
	waitText(t, con, "\ntiles")
	waitSame(t, p, con.Framebuffer())
}
