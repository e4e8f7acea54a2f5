package server

import (
	"testing"
	"time"

	"kvmgate/encoders/video"
)

// linkSim is a simulated path for videoRate: frames of target/fps bytes
// from a source changing fps times a second, a FIFO bottleneck of cap
// bytes/s with base round trip, and the sender's window. Time is
// simulated; nothing sleeps.
type linkSim struct {
	r        *videoRate
	now      time.Time
	cap      float64 // bytes/s
	base     time.Duration
	fps      int
	small    int       // if > 0, every picture is this many bytes whatever the target
	free     time.Time // when the bottleneck has sent everything queued
	inflight []simFrame
	dirty    bool
	lastSend time.Time
	ceil     int
}

type simFrame struct {
	sent, ack time.Time
	bytes     int
}

func newLinkSim(capBits int, base time.Duration) *linkSim {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return &linkSim{
		r: newVideoRate(videoStartBitrate), now: t0, cap: float64(capBits) / 8,
		base: base, fps: 30, free: t0, ceil: videoMaxBitrate,
	}
}

// run simulates d in 1 ms ticks and returns the target every 500 ms.
func (s *linkSim) run(d time.Duration) []int {
	var targets []int
	end := s.now.Add(d)
	nextDamage, nextSample := s.now, s.now.Add(500*time.Millisecond)
	for ; s.now.Before(end); s.now = s.now.Add(time.Millisecond) {
		for len(s.inflight) > 0 && !s.inflight[0].ack.After(s.now) {
			f := s.inflight[0]
			s.inflight = s.inflight[1:]
			var next time.Time
			if len(s.inflight) > 0 {
				next = s.inflight[0].sent
			}
			s.r.acked(s.now, f.bytes, s.now.Sub(f.sent), next)
		}
		if !s.now.Before(nextDamage) {
			s.dirty = true
			nextDamage = nextDamage.Add(time.Second / time.Duration(s.fps))
		}
		open := len(s.inflight) < s.r.window()
		s.r.blocked(s.now, s.dirty && !open)
		target := s.r.update(s.now, s.ceil)
		if s.dirty && open && s.now.Sub(s.lastSend) >= videoMinInterval {
			// CBR: the picture spends the target over the time since the
			// last one (at most 250 ms' worth).
			gap := min(s.now.Sub(s.lastSend), 250*time.Millisecond)
			bytes := int(float64(target) / 8 * gap.Seconds())
			if s.small > 0 {
				bytes = s.small
			}
			s.r.sending(s.now, bytes)
			start := s.now
			if s.free.After(start) {
				start = s.free
			}
			s.free = start.Add(time.Duration(float64(bytes) / s.cap * float64(time.Second)))
			s.inflight = append(s.inflight, simFrame{sent: s.now, ack: s.free.Add(s.base), bytes: bytes})
			s.lastSend, s.dirty = s.now, false
		}
		if !s.now.Before(nextSample) {
			targets = append(targets, s.r.target)
			nextSample = nextSample.Add(500 * time.Millisecond)
		}
	}
	return targets
}

func mean(v []int) int {
	s := 0
	for _, x := range v {
		s += x
	}
	return s / len(v)
}

// TestVideoRateConverges: from 2 Mbit/s on a 1 Mbit/s link the target
// comes below the link within a few seconds and stays there on average
// without collapsing, on a short and a long round trip.
func TestVideoRateConverges(t *testing.T) {
	for _, base := range []time.Duration{5 * time.Millisecond, 80 * time.Millisecond} {
		s := newLinkSim(1_000_000, base)
		seen := s.run(30 * time.Second)
		last := seen[len(seen)-10:]
		if avg := mean(last); avg > 1_000_000 || avg < 500_000 {
			t.Errorf("base RTT %v: the target averages %d bit/s over the last 5 s on a 1 Mbit/s link: %v", base, avg, seen)
		}
		// Within 3 s of the start it is below the link.
		if b := seen[5]; b > 1_000_000 {
			t.Errorf("base RTT %v: target %d bit/s after 3 s: %v", base, b, seen)
		}
		for _, b := range last {
			if b > 1_300_000 {
				t.Errorf("base RTT %v: target %d bit/s in the last 5 s: %v", base, b, last)
			}
		}
		t.Logf("base RTT %v: %v", base, seen)
	}
}

// TestVideoRateRecovers: after a slow spell the link gets faster again;
// the target follows it up.
func TestVideoRateRecovers(t *testing.T) {
	s := newLinkSim(500_000, 10*time.Millisecond)
	slow := s.run(15 * time.Second)
	if b := slow[len(slow)-1]; b > 600_000 {
		t.Fatalf("target %d bit/s on a 500 kbit/s link: %v", b, slow)
	}
	s.cap = 4_000_000 / 8
	fast := s.run(20 * time.Second)
	if b := mean(fast[len(fast)-6:]); b < 2_500_000 || b > 4_000_000 {
		t.Errorf("target averages %d bit/s over the last 3 s, 20 s after the link went from 0.5 to 4 Mbit/s: %v", b, fast)
	}
	t.Logf("slow %v\nfast %v", slow, fast)
}

// TestVideoRateSmallFrames: frames far smaller than any old sampling
// threshold still move the target, both ways.
func TestVideoRateSmallFrames(t *testing.T) {
	s := newLinkSim(200_000, 10*time.Millisecond)
	down := s.run(10 * time.Second)
	if b := down[len(down)-1]; b > 200_000 {
		t.Fatalf("target %d bit/s on a 200 kbit/s link: %v", b, down)
	}
	// A faster link: the pictures, a few hundred bytes each, keep feeding
	// the controller and it climbs again.
	s.cap = 2_000_000 / 8
	up := s.run(20 * time.Second)
	if b := up[len(up)-1]; b < 1_000_000 {
		t.Errorf("target %d bit/s 20 s after the link went to 2 Mbit/s: %v", b, up)
	}
	t.Logf("down %v\nup %v", down, up)
}

// TestVideoRateStillScreen: a screen that changes little does not push
// the target up while nothing measures the link.
func TestVideoRateStillScreen(t *testing.T) {
	s := newLinkSim(100_000_000, 5*time.Millisecond)
	s.small = 500 // 120 kbit/s of pictures
	seen := s.run(20 * time.Second)
	if b := seen[len(seen)-1]; b > videoStartBitrate {
		t.Errorf("target %d bit/s after 20 s of tiny pictures (start %d): %v", b, videoStartBitrate, seen)
	}
}

// TestVideoRateCeiling: the quality mode's cap and the codec floor hold.
func TestVideoRateCeiling(t *testing.T) {
	s := newLinkSim(100_000_000, 5*time.Millisecond)
	s.ceil = videoLowBitrate
	seen := s.run(5 * time.Second)
	for _, b := range seen {
		if b > videoLowBitrate {
			t.Fatalf("target %d above the low-mode cap: %v", b, seen)
		}
	}
	s = newLinkSim(10_000, 5*time.Millisecond) // far below the codec's floor
	seen = s.run(10 * time.Second)
	if b := seen[len(seen)-1]; b != video.MinBitrate {
		t.Errorf("target %d on a 10 kbit/s link, want the floor %d: %v", b, video.MinBitrate, seen)
	}
}

// TestVideoRateWindow: the window covers the round trip plus a frame.
func TestVideoRateWindow(t *testing.T) {
	for _, tc := range []struct {
		rtt  time.Duration
		want int
	}{{0, 2}, {5 * time.Millisecond, 2}, {40 * time.Millisecond, 3}, {100 * time.Millisecond, 5}, {time.Second, maxVideoWindow}} {
		r := newVideoRate(videoStartBitrate)
		if tc.rtt > 0 {
			r.acked(time.Now(), 1000, tc.rtt, time.Time{})
		}
		if got := r.window(); got != tc.want {
			t.Errorf("min RTT %v: window %d, want %d", tc.rtt, got, tc.want)
		}
	}
}
