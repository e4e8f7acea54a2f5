package server

import (
	"testing"
	"time"
)

func TestNextVideoBitrate(t *testing.T) {
	ms := time.Millisecond
	cases := []struct {
		name         string
		mode         string
		bw           float64 // bytes/s
		srtt, minRTT time.Duration
		cur, want    int
	}{
		{"unmeasured: grows by 10%", ModeAuto, 0, 0, 0, 2_000_000, 2_200_000},
		{"unmeasured: stops at the cap", ModeAuto, 0, 0, 0, videoMaxBitrate, videoMaxBitrate},
		{"slow growth near the floor", ModeAuto, 0, 0, 0, 200_000, 300_000},
		{"queueing: backs off 15%", ModeAuto, 0, 200 * ms, 20 * ms, 2_000_000, 1_700_000},
		{"no queue: RTT close to the base", ModeAuto, 0, 50 * ms, 20 * ms, 2_000_000, 2_200_000},
		{"measured goodput caps at 80%", ModeAuto, 125_000, 30 * ms, 20 * ms, 2_000_000, 800_000},
		{"low mode caps", ModeLow, 0, 0, 0, 2_000_000, videoLowBitrate},
		{"never below the floor", ModeAuto, 1000, 900 * ms, 20 * ms, 120_000, 100_000},
	}
	for _, tc := range cases {
		rc := newRateController()
		rc.mode, rc.bw, rc.srtt, rc.minRTT = tc.mode, tc.bw, tc.srtt, tc.minRTT
		if got := nextVideoBitrate(tc.cur, rc); got != tc.want {
			t.Errorf("%s: nextVideoBitrate(%d) = %d, want %d", tc.name, tc.cur, got, tc.want)
		}
	}
}

// TestVideoBitrateConverges feeds the controller a simulated 1 Mbit/s
// link with a queue in front of it: the target ends below the link rate
// on average and does not collapse.
func TestVideoBitrateConverges(t *testing.T) {
	rc := newRateController()
	cur := videoStartBitrate
	const link = 1_000_000 / 8 // bytes/s
	base := 10 * time.Millisecond
	queue := 0.0 // bytes waiting in front of the link
	var seen []int
	for range 120 { // one minute of 500 ms adaptation steps
		// 15 frames of a 30 fps stream at cur bit/s per step.
		frame := cur / 8 / 30
		for range 15 {
			queue = max(0, queue+float64(frame)-link/30.0)
			rtt := base + time.Duration((queue+float64(frame))/link*float64(time.Second))
			rc.acked(frame, rtt)
		}
		cur = nextVideoBitrate(cur, rc)
		seen = append(seen, cur)
	}
	// AIMD saws around the knee: the mean stays below the link, peaks
	// overshoot it only briefly.
	last := seen[len(seen)-20:]
	for _, b := range last {
		if b > link*8*13/10 {
			t.Fatalf("target %d bit/s on a %d bit/s link; last targets %v", b, link*8, last)
		}
	}
	if avg := mean(last); avg > link*8 {
		t.Errorf("targets average %d bit/s on a %d bit/s link: %v", avg, link*8, last)
	}
	if avg := mean(last); avg < link*8/3 {
		t.Errorf("targets average %d bit/s on a %d bit/s link (collapsed): %v", avg, link*8, last)
	}
}

func mean(v []int) int {
	s := 0
	for _, x := range v {
		s += x
	}
	return s / len(v)
}
