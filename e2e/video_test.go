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
	waitPicturePSNR(t, p, false, fbScreen{fb}, min)
}

// screenshotter is what a page's picture is compared with: a framebuffer
// (fbScreen) or a backend server's own screenshot (testserver.Screen).
type screenshotter interface {
	Screenshot() (*framebuffer.Canvas, error)
}

// fbScreen is a framebuffer as a screenshotter.
type fbScreen struct{ fb *framebuffer.Framebuffer }

// Screenshot returns a copy of the framebuffer's pixels.
func (s fbScreen) Screenshot() (*framebuffer.Canvas, error) { return s.fb.Snapshot(), nil }

// waitPicturePSNR waits until what the page shows, its console canvas or
// (fromVideo) its WebRTC <video> drawn into a canvas, is within min dB PSNR
// of want's screenshot.
func waitPicturePSNR(t *testing.T, p *browsertest.Page, fromVideo bool, want screenshotter, min float64) {
	t.Helper()
	what, sel := "canvas", "kvm-console"
	if fromVideo {
		what, sel = "video", "#grab"
	}
	deadline := time.Now().Add(wait)
	for {
		w, err := want.Screenshot()
		if err != nil {
			t.Fatal(err)
		}
		if fromVideo {
			p.MustEval(t, `(() => {
				const v = `+el+`.video;
				let c = document.getElementById('grab');
				if (!c) { c = document.createElement('canvas'); c.id = 'grab'; c.hidden = true; document.body.append(c); }
				c.width = v.videoWidth; c.height = v.videoHeight;
				if (c.width) c.getContext('2d', { willReadFrequently: true }).drawImage(v, 0, 0);
			})()`)
		}
		got, err := p.CanvasPixels(sel)
		if err != nil {
			t.Fatal(err)
		}
		psnr := 0.0
		if got.W == w.W && got.H == w.H {
			psnr = video.PSNR(got, w)
		}
		if psnr >= min {
			t.Logf("%s PSNR %.1f dB", what, psnr)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the %s (%dx%d) never came within %.0f dB of the reference (%dx%d): %.1f dB", what, got.W, got.H, min, w.W, w.H, psnr)
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
	addr, con := startDemo(t, demo.Options{
		Width: 640, Height: 400, PauseAnimation: true,
		Now:    func() time.Time { return time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC) },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
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
