package e2e

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"testing"
	"time"

	"kvmgate/bench/console"
	"kvmgate/demo"
	"kvmgate/encoders/video"
	"kvmgate/framebuffer"
	"kvmgate/internal/browsertest"
	"kvmgate/server"
)

// shapedLink is the rate of the shaped link in TestWebSocketVideoShaped,
// in bit/s.
const shapedLink = 1_000_000

// TestWebSocketVideoShaped puts a 1 Mbit/s token-bucket relay between
// headless Chromium and the server, with the demo's box moving, on
// `?transport=wsvideo`: frames keep being drawn, keys still reach the
// console, and the server's target bitrate (stats().bitrate) settles below
// the link rate: its average over the last 5 s is at most the link's rate
// (the ack-based controller saws around the knee, so single samples may
// exceed it).
func TestWebSocketVideoShaped(t *testing.T) {
	codec := video.VP8
	if err := video.Available(codec); err != nil {
		t.Skip(err)
	}
	addr, con := startDemo(t, demo.Options{
		Width: 640, Height: 400,
		Now:    func() time.Time { return time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC) },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	_, hs := startServer(t, server.Options{Target: "vnc://" + addr})
	u, err := url.Parse(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	relay, err := console.NewShapedRelay(u.Host, shapedLink/8)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := relay.Close(); err != nil {
			t.Error(err)
		}
	})

	// The box alone is far below any link; a patch of changing blocks
	// next to it gives the encoder more to send than the link carries.
	stopNoise := paintNoise(t.Context(), con.Framebuffer(), framebuffer.Rect{X: 320, Y: 0, W: 320, H: 240})
	t.Cleanup(stopNoise)

	b := browsertest.Launch(t)
	p := b.NewPage(t, "http://"+relay.Addr()+"/?transport=wsvideo&codec="+codec)
	waitConnected(t, p)
	p.WaitFor(t, el+`.stats().transport === 'wsvideo'`, wait)

	// 18 s of motion through the link: sample the drawn frames and the
	// target bitrate twice a second.
	type sample struct {
		FramesDrawn, Bitrate int
	}
	const period = 500 * time.Millisecond
	var samples []sample
	start := time.Now()
	startBytes := relay.Down()
	for time.Since(start) < 18*time.Second {
		time.Sleep(period)
		var s sample
		if err := p.EvalInto(`(() => { const s = `+el+`.stats(); return {framesDrawn: s.framesDrawn, bitrate: s.bitrate}; })()`, &s); err != nil {
			t.Fatal(err)
		}
		samples = append(samples, s)
	}
	rate := float64(relay.Down()-startBytes) * 8 / time.Since(start).Seconds()
	t.Logf("link %d bit/s, relayed %.0f bit/s to the browser; samples (frames drawn, target kbit/s): %v", shapedLink, rate, samples)

	// Frames kept coming in every third of the run.
	third := len(samples) / 3
	for i := 0; i < 3; i++ {
		a, z := samples[i*third], samples[(i+1)*third-1]
		if z.FramesDrawn <= a.FramesDrawn {
			t.Errorf("no frames drawn between samples %d and %d (%d)", i*third, (i+1)*third-1, a.FramesDrawn)
		}
	}
	// The target settled below the link.
	last := samples[len(samples)-int(5*time.Second/period):]
	sum := 0
	for _, s := range last {
		sum += s.Bitrate * 1000
	}
	if avg := sum / len(last); avg > shapedLink {
		t.Errorf("target bitrate averages %d bit/s over the last 5 s on a %d bit/s link", avg, shapedLink)
	}

	// Keys still reach the console through the shaped link.
	p.MustEval(t, el+`.focus()`)
	p.Type(t, "echo slow")
	p.KeyPress(t, "Enter")
	waitText(t, con, demo.Prompt+"echo slow\nslow")
	noErrors(t, p)
}

// paintNoise publishes 8×8 blocks of random colours over r of fb twenty
// times a second (fb must already have the demo's size) until ctx ends or the
// returned stop is called; stop waits for the painter.
func paintNoise(ctx context.Context, fb *framebuffer.Framebuffer, r framebuffer.Rect) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		w, h := fb.Size()
		c, err := framebuffer.NewCanvas(w, h)
		if err != nil {
			return
		}
		var b framebuffer.Batch
		rng := rand.New(rand.NewPCG(1, 2))
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for y := r.Y; y < r.Y+r.H; y += 8 {
				for x := r.X; x < r.X+r.W; x += 8 {
					c.Fill(framebuffer.Rect{X: x, Y: y, W: 8, H: 8}.Intersect(r), rng.Uint32()|0xff000000)
				}
			}
			b.Damage(r)
			fb.Publish(c, &b)
		}
	}()
	return func() {
		cancel()
		<-done
	}
}
