package console

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"kvmgate/demo"
	"kvmgate/internal/testserver"
)

// maxBand is the tallest canvas band a single echoed key may change: one
// text row of either console with room to spare.
const maxBand = 40

// warmUp is how long a workload runs before counting starts.
const warmUp = 3 * time.Second

// BenchmarkQEMUText measures the QEMU Linux guest's VGA text console
// (720×400): key-to-screen latency, first for a plain RFB client alone
// (keys-rfb and keys-rfb-hold, the reference without kvmgate) and then in the browser through
// kvmgate (keys); then 60 s of busybox top refreshing every second (top),
// then 60 s of a shell loop printing kernel messages and a directory
// listing (scroll). Run it once:
//
//	go test -run XXX -bench QEMU -benchtime 1x -timeout 30m ./bench/console/
func BenchmarkQEMUText(b *testing.B) {
	q := testserver.StartQEMU(b, testserver.QEMUOptions{Guest: testserver.GuestLinux})
	q.WaitSettled(b, 150*time.Second)
	// The blinking text cursor would count as an echo: hide it, and start
	// from a clear screen.
	q.TypeText(b, "printf '\\033[?25l'; clear\n")
	q.WaitSettled(b, wait)

	var plan keyPlan
	var y, h int
	b.Run("keys-rfb", func(b *testing.B) {
		p := dialRFB(b, q.Addr())
		y, h = p.band(b, &plan)
		res := p.measure(b, "QEMU text console, rfb.Client alone, key-up with key-down", &plan, *numKeys, y, h, 0)
		p.close()
		record(nil, &res)
		reportLatency(b, res)
	})
	// QEMU's display refresh backs off after a refresh that found nothing
	// new and snaps back to 30 ms on any later client message: a key-up
	// that follows its key-down by a few milliseconds (as a hand or the
	// browser path does) changes the figure.
	b.Run("keys-rfb-hold", func(b *testing.B) {
		p := dialRFB(b, q.Addr())
		if h == 0 {
			y, h = p.band(b, &plan)
		}
		res := p.measure(b, "QEMU text console, rfb.Client alone, key-up 10 ms after key-down", &plan, *numKeys, y, h, 10*time.Millisecond)
		p.close()
		record(nil, &res)
		reportLatency(b, res)
	})
	r := newRig(b, q.Addr())
	b.Run("keys", func(b *testing.B) {
		if h == 0 {
			y, h = r.band(b, &plan)
		}
		res := r.measureLatency(b, "QEMU text console, browser via kvmgate", &plan, *numKeys, y, h)
		record(nil, &res)
		reportLatency(b, res)
	})
	q.SendKey(b, "ctrl", "c")

	b.Run("top", func(b *testing.B) {
		q.TypeText(b, "top -d 1\n")
		time.Sleep(warmUp)
		res := r.measureWire(b, "QEMU text console: busybox `top -d 1`", *duration)
		q.SendKey(b, "q")
		reportWire(b, res)
	})

	b.Run("scroll", func(b *testing.B) {
		q.TypeText(b, "while :; do dmesg; ls -l /bin; sleep 0.2; done\n")
		time.Sleep(warmUp)
		res := r.measureWire(b, "QEMU text console: `while :; do dmesg; ls -l /bin; sleep 0.2; done`", *duration)
		q.SendKey(b, "ctrl", "c")
		reportWire(b, res)
	})
}

// BenchmarkDemo measures the built-in demo console (1024×768) with its
// clock and bouncing box running: key-to-screen latency for a plain RFB
// client alone (keys-rfb) and in the browser through kvmgate (keys), then
// 60 s of the clock and the box alone (animation).
//
//	go test -run XXX -bench Demo -benchtime 1x -timeout 30m ./bench/console/
func BenchmarkDemo(b *testing.B) {
	d := startDemo(b)

	var plan keyPlan
	var y, h int
	b.Run("keys-rfb", func(b *testing.B) {
		p := dialRFB(b, d.addr)
		d.still(b, true)
		y, h = p.band(b, &plan)
		d.still(b, false)
		res := p.measure(b, "demo console, rfb.Client alone", &plan, *numKeys, y, h, 0)
		p.close()
		record(nil, &res)
		reportLatency(b, res)
	})
	r := newRig(b, d.addr)
	b.Run("keys", func(b *testing.B) {
		if h == 0 {
			d.still(b, true)
			y, h = r.band(b, &plan)
			d.still(b, false)
		}
		res := r.measureLatency(b, "demo console, browser via kvmgate", &plan, *numKeys, y, h)
		record(nil, &res)
		reportLatency(b, res)
	})

	b.Run("animation", func(b *testing.B) {
		time.Sleep(warmUp)
		res := r.measureWire(b, "demo console: clock and bouncing box", *duration)
		reportWire(b, res)
	})
}

// TestDemoFigures runs the demo benchmark's measurements briefly, so that
// ordinary test runs check the measuring itself: both relays and both ends
// count, and every key's echo is found on both paths. It asserts no
// timings.
func TestDemoFigures(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Chromium; skipped with -short")
	}
	d := startDemo(t)
	const keys = 6
	var plan keyPlan

	p := dialRFB(t, d.addr)
	d.still(t, true)
	y, h := p.band(t, &plan)
	d.still(t, false)
	checkLatency(t, "direct RFB", p.measure(t, "demo rfb", &plan, keys, y, h, 0), keys)
	p.close()

	r := newRig(t, d.addr)
	checkLatency(t, "browser", r.measureLatency(t, "demo", &plan, keys, y, h), keys)

	w := r.measureWire(t, "demo", 2*time.Second)
	if w.framesDrawn <= 0 || w.framesSent <= 0 || w.published <= 0 {
		t.Errorf("the animated demo published %d updates, drew %d frames (server sent %d) in %.1f s", w.published, w.framesDrawn, w.framesSent, w.seconds)
	}
	if w.wsPayload <= 0 || w.browserBytes <= 0 {
		t.Errorf("browser side: %d TCP bytes, %d WebSocket payload bytes", w.browserBytes, w.wsPayload)
	}
	if w.vncBytes <= 0 {
		t.Errorf("VNC side counted %d bytes", w.vncBytes)
	}
	if n := r.vnc.Conns(); n != 1 {
		t.Errorf("%d VNC connections through the relay, want 1", n)
	}
}

// checkLatency checks that a latency run found every key's echo.
func checkLatency(t *testing.T, path string, res latencyResult, keys int) {
	t.Helper()
	if len(res.samples) != keys {
		t.Fatalf("%s: %d latency samples, want %d", path, len(res.samples), keys)
	}
	for i, s := range res.samples {
		if s <= 0 || res.frames[i] < 1 {
			t.Errorf("%s: key %d: latency %.1f ms after %d frames, want a positive time and at least one frame", path, i, s, res.frames[i])
		}
	}
}

// band types the first key of plan (an x) on a still screen and returns
// the canvas rows it changed.
func (r *rig) band(tb testing.TB, plan *keyPlan) (y, h int) {
	tb.Helper()
	y, h = r.findBand(tb, plan.next())
	if h > maxBand {
		tb.Fatalf("typing x changed canvas rows %d..%d: the screen is not still", y, y+h)
	}
	return y, h
}

// demoRig is a demo console whose clock and animation can be stopped.
type demoRig struct {
	addr   string
	con    *demo.Console
	frozen atomic.Bool
}

// startDemo starts the demo console (1024×768, animated, clock running).
func startDemo(tb testing.TB) *demoRig {
	tb.Helper()
	d := &demoRig{}
	fixed := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	ctx, cancel := context.WithCancel(context.Background())
	addr, con, err := demo.Start(ctx, demo.Options{
		Now: func() time.Time {
			if d.frozen.Load() {
				return fixed
			}
			return time.Now()
		},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		cancel()
		<-con.Done()
	})
	d.addr, d.con = addr, con
	return d
}

// still stops (or restarts) the clock and the bouncing box; stopping waits
// until the last change has reached the page.
func (d *demoRig) still(tb testing.TB, on bool) {
	tb.Helper()
	d.frozen.Store(on)
	d.con.SetAnimationPaused(on)
	if on {
		time.Sleep(1500 * time.Millisecond)
	}
}

func reportWire(b *testing.B, w wireResult) {
	record(&w, nil)
	b.ReportMetric(float64(w.framesDrawn)/w.seconds, "fps")
	b.ReportMetric(float64(w.browserBytes)/w.seconds/1000, "kB/s-browser")
	b.ReportMetric(float64(w.vncBytes)/w.seconds/1000, "kB/s-vnc")
}

func reportLatency(b *testing.B, l latencyResult) {
	b.ReportMetric(percentile(l.samples, 50), "ms-median")
	b.ReportMetric(percentile(l.samples, 90), "ms-p90")
}
