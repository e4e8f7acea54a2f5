package e2e

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"

	"kvmgate/bench/console"
	"kvmgate/client"
	"kvmgate/demo"
	"kvmgate/encoders/video"
	"kvmgate/framebuffer"
	"kvmgate/internal/browsertest"
	"kvmgate/server"
)

// BenchmarkTransports runs the demo console with its bouncing box through
// the real server to headless Chromium on each transport (tiles, WebSocket
// video, WebRTC; VP8 for video) for KVMGATE_BENCH_SECONDS seconds (20 by
// default) at 1280×800 and 1920×1080 and prints a table: bytes to the browser (a
// counting relay in front of the server; for WebRTC plus the RTP bytes
// from getStats), frames drawn per second, and the PSNR of the picture
// against the framebuffer 3 s after the animation pauses. Its motion is
// small; BenchmarkMotion (motion_bench_test.go) is the full-screen motion
// counterpart, with CPU, SSIM and latency.
//
//	go test -tags libvpx,openh264 -run XXX -bench Transports -benchtime 1x ./e2e/
func BenchmarkTransports(b *testing.B) {
	secs := 20
	if s, err := strconv.Atoi(os.Getenv("KVMGATE_BENCH_SECONDS")); err == nil && s > 0 {
		secs = s
	}
	if err := video.Available(video.VP8); err != nil {
		b.Skip(err)
	}
	type row struct {
		transport     string
		w, h          int
		bytes         int64
		fps, psnr     float64
		kbps, seconds float64
	}
	var rows []row
	for _, size := range [][2]int{{1280, 800}, {1920, 1080}} {
		for _, transport := range []string{"tiles", "wsvideo", "webrtc"} {
			name := fmt.Sprintf("%dx%d/%s", size[0], size[1], transport)
			b.Run(name, func(b *testing.B) {
				for range b.N {
					r := row{transport: transport, w: size[0], h: size[1]}
					r.bytes, r.fps, r.psnr, r.seconds = runTransport(b, transport, size[0], size[1], secs)
					r.kbps = float64(r.bytes) * 8 / 1000 / r.seconds
					b.ReportMetric(r.kbps, "kbit/s")
					b.ReportMetric(r.fps, "fps")
					b.ReportMetric(r.psnr, "dB")
					rows = append(rows, r)
				}
			})
		}
	}
	fmt.Printf("\n| screen | transport | bytes to browser | kbit/s | fps drawn | PSNR still (dB) |\n|---|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Printf("| %dx%d | %s | %d | %.0f | %.1f | %.1f |\n", r.w, r.h, r.transport, r.bytes, r.kbps, r.fps, r.psnr)
	}
}

// runTransport runs one transport for secs seconds of motion and returns
// the bytes that reached the browser, the frames drawn per second, the
// still picture's PSNR (99 for identical) and the measured seconds.
func runTransport(b *testing.B, transport string, w, h, secs int) (bytes int64, fps, psnr, seconds float64) {
	ctx, cancel := context.WithCancel(context.Background())
	addr, con, err := demo.Start(ctx, demo.Options{
		Width: w, Height: h,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		cancel()
		b.Fatal(err)
	}
	defer func() {
		cancel()
		<-con.Done()
	}()
	opts := server.Options{Target: "vnc://" + addr}
	if transport == "webrtc" {
		opts.WebRTC = loopbackRTC
	}
	hs := benchServer(b, opts)
	u, err := url.Parse(hs)
	if err != nil {
		b.Fatal(err)
	}
	relay, err := console.NewRelay(u.Host)
	if err != nil {
		b.Fatal(err)
	}
	defer relay.Close()

	br := browsertest.Launch(b)
	p := br.NewPage(b, "http://"+relay.Addr()+"/?transport="+transport+"&codec="+video.VP8)
	p.WaitFor(b, el+` && `+el+`.state === 'connected' && `+el+`.stats().framesDrawn > 0 && `+el+`.stats().transport === '`+transport+`'`, wait)
	frames := el + `.stats().framesDrawn`
	rtcBytes := `0`
	if transport == "webrtc" {
		p.WaitFor(b, el+`.rtc && `+el+`.rtc.frames > 0`, wait)
		frames = el + `.rtc.frames`
		rtcBytes = el + `.rtcBytes`
	}
	var f0, f1 int
	var r0, r1 int64
	measure := func(f *int, r *int64) {
		var v struct{ F, R int64 }
		if err := p.EvalInto(`({f: `+frames+`, r: `+rtcBytes+`})`, &v); err != nil {
			b.Fatal(err)
		}
		*f, *r = int(v.F), v.R
	}
	measure(&f0, &r0)
	d0 := relay.Down()
	start := time.Now()
	time.Sleep(time.Duration(secs) * time.Second)
	measure(&f1, &r1)
	seconds = time.Since(start).Seconds()
	bytes = relay.Down() - d0 + r1 - r0
	fps = float64(f1-f0) / seconds

	con.SetAnimationPaused(true)
	time.Sleep(3 * time.Second)
	psnr = stillPSNR(b, p, con.Framebuffer(), transport == "webrtc")
	return bytes, fps, psnr, seconds
}

// benchServer serves opts with the real client for the benchmark and
// returns its URL.
func benchServer(b *testing.B, opts server.Options) string {
	b.Helper()
	opts.Client = client.FS
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := server.New(opts)
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	b.Cleanup(func() {
		hs.CloseClientConnections()
		srv.Close()
		hs.Close()
	})
	return hs.URL
}

// stillPSNR compares the page's picture (the canvas, or the WebRTC video
// drawn into one) with the framebuffer; 99 stands for identical.
func stillPSNR(b *testing.B, p *browsertest.Page, fb *framebuffer.Framebuffer, rtc bool) float64 {
	want := fb.Snapshot()
	got := grabPicture(b, p, rtc)
	if got.W != want.W || got.H != want.H {
		return 0
	}
	return math.Min(99, video.PSNR(got, want))
}

// grabPicture returns what the page shows: the console's canvas, or for
// WebRTC the <video>'s current picture drawn into a canvas.
func grabPicture(b *testing.B, p *browsertest.Page, rtc bool) *framebuffer.Canvas {
	sel := "kvm-console"
	if rtc {
		if _, err := p.Eval(`(() => {
			const v = ` + el + `.video;
			let c = document.getElementById('grab');
			if (!c) { c = document.createElement('canvas'); c.id = 'grab'; c.hidden = true; document.body.append(c); }
			c.width = v.videoWidth; c.height = v.videoHeight;
			if (c.width) c.getContext('2d', { willReadFrequently: true }).drawImage(v, 0, 0);
		})()`); err != nil {
			b.Fatal(err)
		}
		sel = "#grab"
	}
	got, err := p.CanvasPixels(sel)
	if err != nil {
		b.Fatal(err)
	}
	return got
}
