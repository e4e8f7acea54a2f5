package harness

import (
	"context"
	"math"
	"testing"
	"time"

	"kvmgate/bench/fbs"
	"kvmgate/framebuffer"
)

// quickOptions is the matrix of `bench --quick`.
func quickOptions() Options {
	poor, _ := ProfileByName(PoorLink)
	return Options{Links: []Link{Profiles[0], poor}}
}

func smallest(t *testing.T) Workload {
	t.Helper()
	ws, err := FindWorkloads("../testdata")
	if err != nil {
		t.Fatal(err)
	}
	return ws[0]
}

func TestRunQuickSmallest(t *testing.T) {
	w := smallest(t)
	rs, err := Run(context.Background(), w, quickOptions())
	if err != nil {
		t.Fatal(err)
	}
	if want := len(Encoders) * 2; len(rs) != want {
		t.Fatalf("%d results, want %d", len(rs), want)
	}
	blocks, err := fbs.ReadFile(w.Baseline)
	if err != nil {
		t.Fatal(err)
	}
	recorded := fbs.Size(blocks)
	for _, r := range rs {
		name := r.Encoder + "/" + r.Link
		if r.Unavailable != "" {
			if err := videoAvailable(r.Encoder); err == nil {
				t.Errorf("%s: reported unavailable (%s) but is available", name, r.Unavailable)
			}
			continue
		}
		if r.Encoder != Baseline {
			l, _ := ProfileByName(r.Link)
			if r.KeysSent == 0 || r.KeysSeen != r.KeysSent {
				t.Errorf("%s: %d of %d key echoes seen", name, r.KeysSeen, r.KeysSent)
			}
			if float64(r.KeyP50Ms) < float64(l.RTT/time.Millisecond)-1 {
				t.Errorf("%s: key echo median %v ms, below the RTT %v", name, r.KeyP50Ms, l.RTT)
			}
		}
		if r.WireBytes <= 0 || r.Frames <= 0 || r.SourceFrames <= 0 {
			t.Errorf("%s: %d bytes in %d frames of %d: want some", name, r.WireBytes, r.Frames, r.SourceFrames)
		}
		if (r.Encoder == TilesLossless || r.Encoder == TilesLossy) && r.Frames > r.SourceFrames {
			t.Errorf("%s: sent %d frames for %d source frames", name, r.Frames, r.SourceFrames)
		}
		switch r.Encoder {
		case TilesLossless:
			if !math.IsInf(float64(r.PSNR), 1) || !math.IsInf(float64(r.FinalPSNR), 1) || r.SSIM != 1 {
				t.Errorf("%s: PSNR %v, final %v, SSIM %v: want exact pictures", name, r.PSNR, r.FinalPSNR, r.SSIM)
			}
			if r.LosslessAfterMs < 0 {
				t.Errorf("%s: never lossless", name)
			}
		case TilesLossy, TilesAdaptive, TilesPaced, TilesServer, VideoH264, VideoVP8:
			if r.PSNR < 30 || r.FinalPSNR < 30 {
				t.Errorf("%s: PSNR %v dB, final %v dB: want at least 30", name, r.PSNR, r.FinalPSNR)
			}
		case Baseline:
			if r.Link == Profiles[0].Name && r.WireBytes <= recorded {
				t.Errorf("%s: %d wire bytes for %d recorded server bytes plus framing", name, r.WireBytes, recorded)
			}
			if _, ok := w.Throttled[r.Link]; ok != (r.BaselinePath == "recorded through the link") {
				t.Errorf("%s: baseline path %q, throttled recording present: %v", name, r.BaselinePath, ok)
			}
		}
		if (r.Encoder == TilesAdaptive || r.Encoder == TilesPaced || r.Encoder == TilesServer) && r.LosslessAfterMs < 0 {
			t.Errorf("%s: adaptive never refined to lossless", name)
		}
	}
	// Virtual time makes everything but the CPU figures reproducible.
	again, err := Run(context.Background(), w, quickOptions())
	if err != nil {
		t.Fatal(err)
	}
	for i := range rs {
		a, b := rs[i], again[i]
		if a.WireBytes != b.WireBytes || a.Frames != b.Frames || a.LosslessAfterMs != b.LosslessAfterMs || a.PSNR != b.PSNR || a.KeyP50Ms != b.KeyP50Ms {
			t.Errorf("%s/%s: two runs differ: %+v vs %+v", a.Encoder, a.Link, a, b)
		}
	}
}

func TestEmulator(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name  string
		link  Link
		sends []struct {
			at time.Duration
			n  int
		}
		want []time.Duration
	}{
		{
			name: "delay only",
			link: Link{Bitrate: 1e12, RTT: 100 * ms},
			sends: []struct {
				at time.Duration
				n  int
			}{{0, 1000}, {10 * ms, 1000}},
			want: []time.Duration{50 * ms, 60 * ms},
		},
		{
			name: "bottleneck queues",
			link: Link{Bitrate: 8e5, RTT: 0}, // 100 kB/s: 1000 bytes take 10 ms
			sends: []struct {
				at time.Duration
				n  int
			}{{0, 1000}, {0, 1000}, {50 * ms, 500}},
			want: []time.Duration{10 * ms, 20 * ms, 55 * ms},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEmulator(tt.link)
			for i, s := range tt.sends {
				got := e.arrival(e.send(s.at, s.n))
				if d := got - tt.want[i]; d < -time.Microsecond || d > time.Microsecond {
					t.Errorf("send %d arrives at %v, want %v", i, got, tt.want[i])
				}
			}
		})
	}
}

func TestEmulatorLoss(t *testing.T) {
	l := Link{Bitrate: 1e9, RTT: 100 * time.Millisecond, Loss: 0.5}
	e := newEmulator(l)
	late := 0
	for i := range 100 {
		at := time.Duration(i) * time.Second
		if e.arrival(e.send(at, 1000))-at > l.RTT {
			late++
		}
	}
	if late < 25 || late > 75 || e.lostSegments() != late {
		t.Errorf("%d of 100 one-segment messages late, %d segments lost: want about half, equal", late, e.lostSegments())
	}
}

func TestMetrics(t *testing.T) {
	a, _ := framebuffer.NewCanvas(32, 16)
	b := a.Clone()
	if s, _ := sse(a, b); s != 0 || !math.IsInf(psnr(0), 1) || ssim(a, b) != 1 {
		t.Fatalf("identical canvases: sse %v, ssim %v", s, ssim(a, b))
	}
	// Every red byte off by 10: MSE = 100/3.
	for i := 0; i < len(b.Pix); i += 4 {
		b.Pix[i] = 10
	}
	s, n := sse(a, b)
	if got, want := psnr(s/float64(n)), 10*math.Log10(255*255/(100.0/3)); math.Abs(got-want) > 1e-9 {
		t.Errorf("psnr = %v, want %v", got, want)
	}
	// Flat windows: only the luminance term, (2·0·μb+C1)/(μb²+C1), with
	// μb = 0.299·10 and C1 = (0.01·255)².
	mb := 0.299 * 10
	c1 := (0.01 * 255) * (0.01 * 255)
	if got, want := ssim(a, b), c1/(mb*mb+c1); math.Abs(got-want) > 1e-9 {
		t.Errorf("ssim of a tinted black canvas = %v, want %v", got, want)
	}
	if hashCanvas(a) == hashCanvas(b) {
		t.Error("different canvases hash alike")
	}
}

func TestVariableLink(t *testing.T) {
	l := Link{Bitrate: 8e5, Steps: []RateStep{{time.Second, 8e5}, {time.Second, 8e4}}}
	// 150 kB at t=0: 100 kB in the first second at 100 kB/s, 10 kB in the
	// next at 10 kB/s, the last 40 kB in 0.4 s once the cycle repeats.
	if got, want := l.wireEnd(0, 150_000), 2400*time.Millisecond; got < want-time.Millisecond || got > want+time.Millisecond {
		t.Errorf("wireEnd = %v, want %v", got, want)
	}
	if got := l.MeanBitrate(); got != 4.4e5 {
		t.Errorf("MeanBitrate = %v, want 440000", got)
	}
	if r, left := l.rateAt(2500 * time.Millisecond); r != 8e5 || left != 500*time.Millisecond {
		t.Errorf("rateAt(2.5 s) = %v, %v", r, left)
	}
}

func TestEcho(t *testing.T) {
	c, _ := framebuffer.NewCanvas(100, 60)
	if readEcho(c) != 0 {
		t.Error("a black canvas reads as an echo")
	}
	for _, n := range []int{1, 2, 77, 65535} {
		paintEcho(c, n)
		if got := readEcho(c); got != n {
			t.Errorf("echo %d reads as %d", n, got)
		}
	}
	ks := keySchedule(Link{RTT: 100 * time.Millisecond}, 3*time.Second)
	if len(ks) != 3 || ks[0].sent != keyStart || ks[0].arrive != keyStart+50*time.Millisecond {
		t.Errorf("key schedule %v", ks)
	}
}

// TestLegibility runs the full-screen legibility scenario on the poor
// link: tiles end with the second screen exact.
func TestLegibility(t *testing.T) {
	l, _ := ProfileByName(PoorLink)
	r, err := RunLegibility(context.Background(), "../testdata/linux-console.fbs.gz", TilesPaced, l, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.FirstMs < 0 || r.ChangeMs < 0 || r.ChangeBytes <= 0 {
		t.Errorf("%+v: want both screens exact and bytes counted", r)
	}
	if r.ChangeMs <= 2000 && r.CellsAt2s != 1 {
		t.Errorf("%+v: exact within 2 s but not all cells", r)
	}
}
