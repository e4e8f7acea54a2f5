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
		{"no data: lossless at full rate", ModeAuto, nil, false, 0, MinFrameInterval},
		{"small frames never measure bandwidth", ModeAuto, [][2]int{{1000, 1}, {2000, 50}, {500, 80}}, false, 0, MinFrameInterval},
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
