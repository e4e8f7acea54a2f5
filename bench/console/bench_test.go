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
// (720×400) through kvmgate: key-to-screen latency (keys), then 60 s of
// busybox top refreshing every second (top), then 60 s of a shell loop
// printing kernel messages and a directory listing (scroll). Run it once:
//
//	go test -run XXX -bench QEMU -benchtime 1x -timeout 30m ./bench/console/
func BenchmarkQEMUText(b *testing.B) {
	q := testserver.StartQEMU(b, testserver.QEMUOptions{Guest: testserver.GuestLinux})
	q.WaitSettled(b, 150*time.Second)
	// The blinking text cursor would count as an echo: hide it, and start
	// from a clear screen.
	q.TypeText(b, "printf '\\033[?25l'; clear\n")
	q.WaitSettled(b, wait)
	r := newRig(b, q.Addr())

	b.Run("keys", func(b *testing.B) {
		res := r.latency(b, "QEMU Linux text console", *numKeys)
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

// BenchmarkDemo measures the built-in demo console (1024×768) through
// kvmgate: key-to-screen latency with the clock and the bouncing box
// running (keys), then 60 s of the clock and the box alone (animation).
//
//	go test -run XXX -bench Demo -benchtime 1x -timeout 30m ./bench/console/
func BenchmarkDemo(b *testing.B) {
	d := startDemo(b)
	r := newRig(b, d.addr)

	b.Run("keys", func(b *testing.B) {
		d.still(b, true)
		y, h := r.band(b)
		d.still(b, false)
		res := r.measureLatency(b, "demo console", *numKeys, y, h)
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
// count, and every key's echo is found. It asserts no timings.
func TestDemoFigures(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Chromium; skipped with -short")
	}
	d := startDemo(t)
	r := newRig(t, d.addr)

	d.still(t, true)
	y, h := r.band(t)
	d.still(t, false)
	const keys = 6
	lat := r.measureLatency(t, "demo", keys, y, h)
	if len(lat.samples) != keys {
		t.Fatalf("%d latency samples, want %d", len(lat.samples), keys)
	}
	for i, s := range lat.samples {
		if s <= 0 || lat.frames[i] < 1 {
			t.Errorf("key %d: latency %.1f ms after %d frames, want a positive time and at least one frame", i, s, lat.frames[i])
		}
	}

	w := r.measureWire(t, "demo", 2*time.Second)
	if w.framesDrawn <= 0 || w.framesSent <= 0 {
		t.Errorf("the animated demo drew %d frames (server sent %d) in %.1f s", w.framesDrawn, w.framesSent, w.seconds)
	}
	if w.wsPayload <= 0 || w.browserBytes < w.wsPayload {
		t.Errorf("browser side: %d TCP bytes for %d WebSocket payload bytes", w.browserBytes, w.wsPayload)
	}
	if w.vncBytes <= 0 {
		t.Errorf("VNC side counted %d bytes", w.vncBytes)
	}
	if n := r.vnc.Conns(); n != 1 {
		t.Errorf("%d VNC connections through the relay, want 1", n)
	}
}

// latency finds the band a key echoes in on a still screen, then measures
// n keys.
func (r *rig) latency(tb testing.TB, name string, n int) latencyResult {
	tb.Helper()
	y, h := r.band(tb)
	res := r.measureLatency(tb, name, n, y, h)
	record(nil, &res)
	return res
}

// band types an x on a still screen and returns the canvas rows it
// changed.
func (r *rig) band(tb testing.TB) (y, h int) {
	tb.Helper()
	y, h = r.findBand(tb, "KeyX")
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
