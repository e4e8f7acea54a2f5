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
	return Options{Links: []Link{Profiles[0], Profiles[len(Profiles)-1]}}
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
		if r.WireBytes <= 0 || r.Frames <= 0 || r.SourceFrames <= 0 {
			t.Errorf("%s: %d bytes in %d frames of %d: want some", name, r.WireBytes, r.Frames, r.SourceFrames)
		}
		if r.Encoder != Baseline && r.Frames > r.SourceFrames {
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
		case TilesLossy, TilesAdaptive:
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
		if r.Encoder == TilesAdaptive && r.LosslessAfterMs < 0 {
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
		if a.WireBytes != b.WireBytes || a.Frames != b.Frames || a.LosslessAfterMs != b.LosslessAfterMs || a.PSNR != b.PSNR {
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
				got := e.send(s.at, s.n)
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
		if e.send(at, 1000)-at > l.RTT {
			late++
		}
	}
	if late < 25 || late > 75 || e.lost != late {
		t.Errorf("%d of 100 one-segment messages late, %d segments lost: want about half, equal", late, e.lost)
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
