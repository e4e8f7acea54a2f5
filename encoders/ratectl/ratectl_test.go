package ratectl

import (
	"testing"
	"time"
)

func TestRateController(t *testing.T) {
	ms := time.Millisecond
	cases := []struct {
		name     string
		mode     string
		acks     [][2]int // bytes, rtt in ms
		lossy    bool
		jpeg     int
		interval time.Duration
	}{
		{"no data: photos lossy at full rate", ModeAuto, nil, true, ProbeQuality.JPEG, MinFrameInterval},
		// Small frames measure no goodput (the interval stays the least),
		// but 1000 bytes in 1 ms say the link carries at least 1 MB/s.
		{"small frames never measure bandwidth", ModeAuto, [][2]int{{1000, 1}, {2000, 50}, {500, 80}}, true, 65, MinFrameInterval},
		// One large frame acked fast: at least 64 MB/s, lossless although
		// no goodput is measured.
		{"one fast ack goes lossless", ModeAuto, [][2]int{{128 << 10, 2}}, false, 0, MinFrameInterval},
		// One large frame over 256 kbit/s with a 300 ms RTT: its whole
		// round trip says at least ~27 KB/s.
		{"one slow ack sets a floor", ModeAuto, [][2]int{{64 << 10, 2300}}, true, 45, MinFrameInterval},
		// 1 MiB frames that take 49 ms beyond the base RTT: ~21 MB/s, and the
		// next frame waits until the last one has drained.
		{"fast link stays lossless", ModeAuto, [][2]int{{1000, 1}, {1 << 20, 50}, {1 << 20, 50}}, false, 0, 50 * ms},
		{"slow link goes lossy", ModeAuto, [][2]int{{1000, 10}, {200 << 10, 1010}, {200 << 10, 1010}}, true, 45, MaxFrameInterval},
		{"medium link", ModeAuto, [][2]int{{1000, 10}, {300 << 10, 310}, {300 << 10, 310}}, true, 65, MaxFrameInterval},
		{"lossless mode overrides", ModeLossless, [][2]int{{1000, 10}, {200 << 10, 1010}}, false, 0, MaxFrameInterval},
		{"low mode is lossy on any link", ModeLow, nil, true, 40, MinFrameInterval},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := New()
			c.SetMode(tc.mode)
			last := 0
			for _, a := range tc.acks {
				c.Sent(a[0])
				c.Acked(a[0], time.Duration(a[1])*ms)
				last = a[0]
			}
			c.Sent(last)
			if c.quality.Lossy != tc.lossy || (tc.lossy && c.quality.JPEG != tc.jpeg) {
				t.Fatalf("quality %+v (bw %.0f B/s), want lossy=%v jpeg=%d", c.quality, c.bw, tc.lossy, tc.jpeg)
			}
			if got := c.Interval(); got < tc.interval-ms/10 || got > tc.interval+ms/10 {
				t.Fatalf("interval %v, want %v", got, tc.interval)
			}
			if q := c.QualityNumber(); (q == 100) == tc.lossy {
				t.Fatalf("quality number %d", q)
			}
		})
	}
}

// TestUnmeasuredLink follows a viewer on a 256 kbit/s, 300 ms link from
// its first frame: photos go lossy before any ack, the first ack gives a
// lower bound of the rate that paces refinement, slow start holds large
// frames until a goodput is measured.
func TestUnmeasuredLink(t *testing.T) {
	c := New()
	if q := c.Quality(); !q.Lossy || q != ProbeQuality {
		t.Fatalf("quality before any ack %+v, want %+v", q, ProbeQuality)
	}
	if c.Paced() || c.Rate() != 0 {
		t.Fatalf("paced %v, rate %.0f before any ack", c.Paced(), c.Rate())
	}
	if !c.HoldForAck(SlowStartBytes) || c.HoldForAck(SlowStartBytes-1) {
		t.Fatal("slow start does not hold exactly frames of SlowStartBytes or more")
	}
	// A 40 KB first frame: 1.25 s to drain plus 300 ms.
	c.Sent(40000)
	c.Acked(40000, 1550*time.Millisecond)
	if c.Goodput() != 0 {
		t.Fatalf("goodput %.0f from a single round trip", c.Goodput())
	}
	if r := c.Rate(); r < 25000 || r > 26000 {
		t.Fatalf("rate floor %.0f B/s, want 40000/1.55", r)
	}
	if !c.Paced() || c.Quality().JPEG != 45 {
		t.Fatalf("paced %v, quality %+v on a 26 KB/s floor", c.Paced(), c.Quality())
	}
	if !c.HoldForAck(SlowStartBytes) {
		t.Fatal("slow start released before a goodput is measured")
	}
	// A key echo, then another large frame: now goodput is measured.
	c.Acked(200, 301*time.Millisecond)
	c.Acked(32000, 1301*time.Millisecond)
	if g := c.Goodput(); g < 31000 || g > 33000 {
		t.Fatalf("goodput %.0f B/s, want about 32000", g)
	}
	if c.HoldForAck(1 << 20) {
		t.Fatal("slow start holds after the goodput is measured")
	}
}

// TestSmallFrameGoodput: frames under SampleBytes measure goodput by what
// they carried beyond the frame of the smallest round trip, unless the
// sample is below the floor (a stall on a fast link).
func TestSmallFrameGoodput(t *testing.T) {
	ms := time.Millisecond
	// 256 kbit/s, 300 ms: a 200-byte echo, then 3200-byte pieces.
	c := New()
	c.Acked(200, 300*ms+6*ms)
	c.Acked(3200, 300*ms+100*ms)
	if g := c.Goodput(); g < 30000 || g > 34000 {
		t.Fatalf("goodput %.0f B/s from a 3200-byte piece, want about 32000", g)
	}
	// A LAN: fast acks, then one small frame stalled for 30 ms.
	c = New()
	c.Acked(200, ms/2)
	c.Acked(60000, ms)
	c.Acked(4000, 30*ms)
	if g := c.Goodput(); g != 0 {
		t.Fatalf("goodput %.0f B/s from a stalled small frame on a LAN", g)
	}
	if c.Quality().Lossy {
		t.Fatalf("quality %+v on a LAN", c.Quality())
	}
}
