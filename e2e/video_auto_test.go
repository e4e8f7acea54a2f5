package e2e

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"kvmgate/bench/console"
	"kvmgate/client"
	"kvmgate/demo"
	"kvmgate/encoders/video"
	"kvmgate/framebuffer"
	"kvmgate/input"
	"kvmgate/internal/browsertest"
	"kvmgate/server"
)

// transportIs is a page expression: the console is connected on transport
// tr, auto or not.
func transportIs(tr string, auto bool) string {
	return fmt.Sprintf(`%s.state === 'connected' && %s.stats().transport === '%s' && %s.stats().auto === %v`, el, el, tr, el, auto)
}

// recordSwitches makes the page log each transport event with its wall
// clock time in window.switches.
const recordSwitches = `window.switches = []; ` + el + `.addEventListener('transport', (e) => window.switches.push({t: Date.now(), transport: e.detail.transport, auto: e.detail.auto}))`

// switchedAt returns when the page last switched to tr (from
// window.switches), or the zero time.
func switchedAt(tb testing.TB, p *browsertest.Page, tr string) time.Time {
	tb.Helper()
	var ms int64
	if err := p.EvalInto(`(window.switches.filter((s) => s.transport === '`+tr+`').pop() || {t: 0}).t`, &ms); err != nil {
		tb.Fatal(err)
	}
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// TestAutoTransport runs the demo console with its heavy-motion area
// through the real server to headless Chromium on `?transport=auto`: a
// still screen is on tiles and exact; sustained motion switches the same
// connection to WebSocket video (frames keep being drawn); once the screen
// is still again it comes back to tiles and the canvas equals the
// framebuffer exactly (the clock ticking on); motion again brings video
// back. A second page on
// `?transport=wsvideo` never switches. stats().transport and .auto follow
// every switch, and typing works throughout.
func TestAutoTransport(t *testing.T) {
	codec := video.VP8
	if err := video.Available(codec); err != nil {
		t.Skip(err)
	}
	// The title bar's clock ticks: a quiet change that must not keep the
	// viewer on video.
	addr, con := startDemo(t, demo.Options{
		Width: 640, Height: 400, Motion: true, PauseAnimation: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	srv, hs := startServer(t, server.Options{Target: "vnc://" + addr})
	fb := con.Framebuffer()

	b := browsertest.Launch(t)
	p := b.NewPage(t, hs.URL+"/?transport=auto&codec="+codec)
	waitConnected(t, p)
	p.MustEval(t, recordSwitches)
	p.WaitFor(t, transportIs("tiles", true), wait)
	waitSame(t, p, fb)
	forced := b.NewPage(t, hs.URL+"/?transport=wsvideo&codec="+codec)
	waitConnected(t, forced)
	forced.WaitFor(t, transportIs("wsvideo", false), wait)

	for round := 1; round <= 2; round++ {
		// Motion: the same connection goes to video, and stays there.
		moved := time.Now()
		con.SetAnimationPaused(false)
		p.WaitFor(t, transportIs("wsvideo", true), wait)
		toVideo := switchedAt(t, p, "wsvideo").Sub(moved)
		var before int
		if err := p.EvalInto(el+`.stats().framesDrawn`, &before); err != nil {
			t.Fatal(err)
		}
		p.WaitFor(t, el+`.stats().framesDrawn >= `+fmt.Sprint(before+10), wait)
		var st struct {
			Transport, Codec string
			Auto             bool
		}
		if err := p.EvalInto(el+`.stats()`, &st); err != nil {
			t.Fatal(err)
		}
		if st.Transport != "wsvideo" || st.Codec != codec || !st.Auto {
			t.Errorf("round %d, motion: stats %+v, want wsvideo %s auto", round, st, codec)
		}

		// Still: back to tiles, pixel-exact, while the forced page stays
		// on video.
		stopped := time.Now()
		con.SetAnimationPaused(true)
		p.WaitFor(t, transportIs("tiles", true), wait)
		toTiles := switchedAt(t, p, "tiles").Sub(stopped)
		waitSame(t, p, fb)
		exact := time.Since(stopped)
		t.Logf("round %d: motion to video %v; still to tiles %v, exact after %v", round, toVideo.Round(time.Millisecond), toTiles.Round(time.Millisecond), exact.Round(time.Millisecond))
		if err := forced.EvalInto(el+`.stats()`, &st); err != nil {
			t.Fatal(err)
		}
		if st.Transport != "wsvideo" || st.Auto {
			t.Errorf("round %d: the page on ?transport=wsvideo is on %+v after a still spell", round, st)
		}
	}

	// Keys still reach the console; the echo arrives exactly on tiles
	// (typing is no sustained motion).
	p.MustEval(t, el+`.focus()`)
	p.Type(t, "echo auto")
	p.KeyPress(t, "Enter")
	waitText(t, con, demo.Prompt+"echo auto\nauto")
	waitSame(t, p, fb)
	p.WaitFor(t, transportIs("tiles", true), wait)
	if sessions, viewers := srv.Hub().Counts(); sessions != 1 || viewers != 2 {
		t.Errorf("hub has %d sessions and %d viewers, want 1 and 2 (no reconnects)", sessions, viewers)
	}
	var switches int
	if err := p.EvalInto(`window.switches.length`, &switches); err != nil {
		t.Fatal(err)
	}
	if switches != 4 {
		t.Errorf("%d transport switches, want 4 (video, tiles, video, tiles)", switches)
	}
	noErrors(t, p, forced)
}

// BenchmarkAutoTransport measures transport=auto against staying on tiles
// or on WebSocket video (VP8) for the demo console at 1024×768 with its
// heavy-motion area (a plasma over the right half, 30 frames a second) and
// a terminal full of text on the left: two rounds of 6 s motion and 6 s
// still, in two scenarios: "freeze" (the plasma stops, its last picture
// stays) and "close" (the motion area is cleared, only text remains, as when
// a video window closes). It prints the bytes the browser received through
// a counting relay, how far the still picture is from the framebuffer at
// the end (exact, or the PSNR of the whole screen and of the text half),
// and for auto the switch latencies (motion start to video, motion stop to
// tiles, and to an exact canvas).
//
//	go test -tags libvpx,openh264 -run XXX -bench AutoTransport -benchtime 1x ./e2e/
func BenchmarkAutoTransport(b *testing.B) {
	if err := video.Available(video.VP8); err != nil {
		b.Skip(err)
	}
	var rows []autoRow
	for _, scenario := range []string{"freeze", "close"} {
		for _, tr := range []string{"tiles", "wsvideo", "auto"} {
			b.Run(scenario+"/"+tr, func(b *testing.B) {
				for range b.N {
					r := runAuto(b, tr, scenario == "close")
					r.scenario = scenario
					b.ReportMetric(float64(r.motionBytes+r.stillBytes), "bytes")
					rows = append(rows, r)
				}
			})
		}
	}
	fmt.Printf("\n| still screen | transport | bytes in motion (2×6 s) | bytes while still (2×6 s) | total | still picture: whole / text half | motion → video | still → tiles | still → exact |\n|---|---|---|---|---|---|---|---|---|\n")
	lat := func(d time.Duration) string {
		if d <= 0 {
			return "—"
		}
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	db := func(v float64) string {
		if v >= 99 {
			return "exact"
		}
		return fmt.Sprintf("%.1f dB", v)
	}
	for _, r := range rows {
		fmt.Printf("| %s | %s | %d | %d | %d | %s / %s | %s | %s | %s |\n", r.scenario, r.transport, r.motionBytes, r.stillBytes, r.motionBytes+r.stillBytes,
			db(r.psnr), db(r.textPSNR), lat(r.toVideo), lat(r.toTiles), lat(r.toExact))
	}
}

// autoRow is one BenchmarkAutoTransport run; latencies are averages over
// the rounds (auto only), the picture is the last still one's.
type autoRow struct {
	scenario, transport       string
	motionBytes, stillBytes   int64
	psnr, textPSNR            float64 // 99: identical
	toVideo, toTiles, toExact time.Duration
}

// runAuto runs one transport through two motion/still rounds; with closeArea
// set the motion area is cleared when still, else it freezes.
func runAuto(b *testing.B, tr string, closeArea bool) autoRow {
	r := autoRow{transport: tr}
	ctx, cancel := context.WithCancel(context.Background())
	addr, con, err := demo.Start(ctx, demo.Options{
		Width: 1024, Height: 768, Motion: true, PauseAnimation: true,
		Now:    func() time.Time { return time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC) },
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
	// Text on the terminal: the help line, many times.
	for range 30 {
		for _, k := range "help\n" {
			ev := input.KeyEvent{Key: string(k), Down: true}
			if k == '\n' {
				ev.Key = "Enter"
			}
			if err := con.Key(ev); err != nil {
				b.Fatal(err)
			}
		}
	}
	if closeArea {
		con.SetMotion(false)
	}
	srv, err := server.New(server.Options{Target: "vnc://" + addr, Client: client.FS, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer func() {
		hs.CloseClientConnections()
		srv.Close()
		hs.Close()
	}()
	u, err := url.Parse(hs.URL)
	if err != nil {
		b.Fatal(err)
	}
	relay, err := console.NewRelay(u.Host)
	if err != nil {
		b.Fatal(err)
	}
	defer relay.Close()
	br := browsertest.Launch(b)
	p := br.NewPage(b, "http://"+relay.Addr()+"/?transport="+tr+"&codec="+video.VP8)
	p.WaitFor(b, el+` && `+el+`.state === 'connected' && `+el+`.stats().framesDrawn > 0`, wait)
	p.MustEval(b, recordSwitches)
	fb := con.Framebuffer()
	time.Sleep(2 * time.Second) // the first full frame is not part of the figures
	const spell = 6 * time.Second
	for range 2 {
		d0 := relay.Down()
		moved := time.Now()
		if closeArea {
			con.SetMotion(true)
		}
		con.SetAnimationPaused(false)
		time.Sleep(spell)
		d1 := relay.Down()
		stopped := time.Now()
		con.SetAnimationPaused(true)
		if closeArea {
			con.SetMotion(false)
		}
		if tr == "auto" {
			if at := switchedAt(b, p, "wsvideo"); at.After(moved) {
				r.toVideo += at.Sub(moved) / 2
			}
			// Poll for the exact picture.
			for time.Since(stopped) < spell {
				got, err := p.CanvasPixels("kvm-console")
				if err != nil {
					b.Fatal(err)
				}
				if compare(got, fb.Snapshot()) == "" {
					r.toExact += time.Since(stopped) / 2
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if at := switchedAt(b, p, "tiles"); at.After(stopped) {
				r.toTiles += at.Sub(stopped) / 2
			}
		}
		time.Sleep(time.Until(stopped.Add(spell)))
		r.motionBytes += d1 - d0
		r.stillBytes += relay.Down() - d1
	}
	want := fb.Snapshot()
	got, err := p.CanvasPixels("kvm-console")
	if err != nil {
		b.Fatal(err)
	}
	if got.W == want.W && got.H == want.H {
		r.psnr = math.Min(99, video.PSNR(got, want))
		text := framebuffer.Rect{W: want.W / 2, H: want.H - 96}
		r.textPSNR = math.Min(99, video.PSNR(subCanvas(got, text), subCanvas(want, text)))
	}
	return r
}

// subCanvas returns a view of r in c.
func subCanvas(c *framebuffer.Canvas, r framebuffer.Rect) *framebuffer.Canvas {
	return &framebuffer.Canvas{W: r.W, H: r.H, Stride: c.Stride, Pix: c.Pix[c.Offset(r.X, r.Y):]}
}
