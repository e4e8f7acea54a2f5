package server

import (
	"time"

	"kvmgate/encoders/tiles"
	"kvmgate/encoders/video"
)

// Quality modes a viewer may ask for.
const (
	ModeAuto     = "auto"
	ModeLossless = "lossless"
	ModeLow      = "low"
)

// rateController turns a viewer's acks into a frame interval and an encoder
// quality. RTT is an EWMA of ack round trips; goodput an EWMA of frame
// bytes over the part of the round trip that exceeds the smallest one seen
// (the path's latency), sampled only from frames large enough to measure.
// It is owned by the viewer's sender goroutine.
type rateController struct {
	mode    string
	srtt    time.Duration
	minRTT  time.Duration
	bw      float64 // bytes/s; 0 until measured
	last    int     // bytes of the last frame sent
	minGap  time.Duration
	maxGap  time.Duration
	quality tiles.Quality
}

// Controller constants.
const (
	minFrameInterval = time.Second / 60
	maxFrameInterval = 250 * time.Millisecond
	bwSampleBytes    = 16 << 10
	// losslessAbove is the goodput (bytes/s) above which auto mode never
	// uses lossy encoding.
	losslessAbove = 6 << 20
)

func newRateController() *rateController {
	c := &rateController{mode: ModeAuto, minGap: minFrameInterval, maxGap: maxFrameInterval}
	c.update()
	return c
}

// setMode applies the viewer's quality preference.
func (c *rateController) setMode(mode string) {
	c.mode = mode
	c.update()
}

// sent records the size of a frame as it leaves.
func (c *rateController) sent(bytes int) { c.last = bytes }

// acked feeds one acknowledged frame's size and round trip.
func (c *rateController) acked(bytes int, rtt time.Duration) {
	if rtt <= 0 {
		rtt = time.Microsecond
	}
	if c.srtt == 0 {
		c.srtt = rtt
	} else {
		c.srtt += (rtt - c.srtt) / 8
	}
	if c.minRTT == 0 || rtt < c.minRTT {
		c.minRTT = rtt
	}
	if extra := rtt - c.minRTT; bytes >= bwSampleBytes && extra > 2*time.Millisecond {
		sample := float64(bytes) / (extra + time.Millisecond).Seconds()
		if c.bw == 0 {
			c.bw = sample
		} else {
			c.bw += (sample - c.bw) / 4
		}
	}
	c.update()
}

func (c *rateController) update() {
	switch {
	case c.mode == ModeLossless:
		c.quality = tiles.Quality{}
	case c.mode == ModeLow:
		c.quality = tiles.Quality{Lossy: true, JPEG: 40}
	case c.bw == 0 || c.bw > losslessAbove:
		c.quality = tiles.Quality{}
	case c.bw > 2<<20:
		c.quality = tiles.Quality{Lossy: true, JPEG: 80}
	case c.bw > 512<<10:
		c.quality = tiles.Quality{Lossy: true, JPEG: 65}
	default:
		c.quality = tiles.Quality{Lossy: true, JPEG: 45}
	}
}

// interval is the least time between frame starts: the time the last frame
// took to drain at the measured goodput, within [1/60 s, 250 ms].
func (c *rateController) interval() time.Duration {
	if c.bw == 0 {
		return c.minGap
	}
	d := time.Duration(float64(c.last) / c.bw * float64(time.Second))
	return min(max(d, c.minGap), c.maxGap)
}

// qualityNumber is the quality figure reported in stats: 100 for lossless,
// else the JPEG quality.
func (c *rateController) qualityNumber() int {
	if !c.quality.Lossy {
		return 100
	}
	return c.quality.JPEG
}

// Video bitrate control (WebSocket video).
const (
	// bitrateStep is how often videoRate looks at what the last acks and
	// sends say.
	bitrateStep = 250 * time.Millisecond
	// goodputWindow is the span of acks goodput is measured over.
	goodputWindow = 2 * time.Second
	// demandWindow is the span the encoder's output is measured over.
	demandWindow = time.Second
	// minRTTWindow is how long the smallest round trip is remembered.
	minRTTWindow = 10 * time.Second
	// busySlack (plus a quarter of the smallest round trip) is how long
	// before an ack the next frame must have left to count as queued.
	busySlack = 5 * time.Millisecond
	// maxVideoWindow bounds the frames in flight on video.
	maxVideoWindow = 6
	// bitrateBackoff is the share of the measured goodput the target drops
	// to when the link shows a queue.
	bitrateBackoff = 0.8
	// probeGain is the growth per probe (every two clear steps). The
	// target stops at kneeHold percent of the knee (the goodput at the
	// last back-off) until probeHold after it, and grows by fastProbeGain
	// once the back-off is fastProbeAfter old and the target well past the
	// knee (the link got faster).
	probeGain      = 1.05
	kneeHold       = 80
	probeHold      = 4 * time.Second
	fastProbeGain  = 1.15
	fastProbeAfter = 5 * time.Second
)

// videoRate is the WebSocket video bitrate controller. It sets the
// encoder's target from what the acks say about the path, in steps of
// bitrateStep:
//
//   - goodput is the rate bytes were acknowledged at over the last two
//     seconds (acked bytes between two ack instants, every frame counted
//     whatever its size);
//   - the link is congested in a step when the sender had a frame ready
//     but its window was full for 5% of the step, or when for at least
//     half of the step's acks the next frame had left before the acked one
//     had arrived (its ack less one smallest round trip: the link never
//     went idle between them, a queue is building) and the encoder used
//     most of its budget;
//   - on congestion the target drops to 80% of the goodput (by 10% to 50%),
//     and that goodput is remembered as the knee;
//   - after two clear steps it grows by 5%, but only while the encoder
//     spends at least 3/4 of its budget (a still or slow screen does not
//     drive the target up unchecked); it stays at 80% of the knee until
//     4 s after the last back-off (and goes past that only while the
//     encoder spends 9/10 of its budget), and grows by 15% once the
//     back-off is 5 s old and the target 10% past the knee (the link got
//     faster).
//
// The window is the frames one smallest round trip holds at 30 frames per
// second plus two, at least MaxInflight and at most six: never more than
// about a frame interval of data beyond the path's bandwidth-delay
// product, and one frame being drawn. It belongs to the viewer's sender
// goroutine.
type videoRate struct {
	target int // bit/s

	acks      []ackPoint // acks of the last goodputWindow, and one before
	delivered int64      // bytes acknowledged so far
	minRTT    time.Duration
	minRTTAt  time.Time
	encoded   []ackPoint // picture bytes produced, over the last demandWindow

	stepStart    time.Time
	stepAcks     int
	stepBusy     int
	stepBlocked  time.Duration
	blockedSince time.Time // zero: not blocked
	clear        int       // consecutive steps without congestion
	lastBackoff  time.Time
	knee         int // bit/s: the goodput at the last back-off; 0 unknown
}

// ackPoint is a cumulative byte count at an instant.
type ackPoint struct {
	at    time.Time
	bytes int64
}

func newVideoRate(target int) *videoRate { return &videoRate{target: target} }

// acked feeds one acknowledged frame: its bytes and round trip, and when
// the next frame in flight left (zero if none is). That frame found the
// link busy if it left before this one's last byte arrived, which was
// about a smallest round trip before its ack.
func (r *videoRate) acked(now time.Time, bytes int, rtt time.Duration, next time.Time) {
	if r.minRTT == 0 || rtt <= r.minRTT || now.Sub(r.minRTTAt) > minRTTWindow {
		r.minRTT, r.minRTTAt = max(rtt, time.Microsecond), now
	}
	r.delivered += int64(bytes)
	r.acks = append(r.acks, ackPoint{now, r.delivered})
	r.acks = trimPoints(r.acks, now, goodputWindow)
	r.stepAcks++
	if !next.IsZero() && next.Before(now.Add(-r.minRTT-busySlack-r.minRTT/4)) {
		r.stepBusy++
	}
}

// trimPoints drops points older than window but the newest of those,
// which is the window's base.
func trimPoints(p []ackPoint, now time.Time, window time.Duration) []ackPoint {
	i := 0
	for i < len(p) && now.Sub(p[i].at) > window {
		i++
	}
	if i > 0 {
		i--
	}
	if i > len(p)/2 {
		return append(p[:0], p[i:]...)
	}
	return p[i:]
}

// goodput returns the bytes per second acknowledged over about the last
// goodputWindow, or 0 while fewer than two acks span at least one step.
func (r *videoRate) goodput() float64 {
	if len(r.acks) < 2 {
		return 0
	}
	a, z := r.acks[0], r.acks[len(r.acks)-1]
	d := z.at.Sub(a.at)
	if d < bitrateStep {
		return 0
	}
	return float64(z.bytes-a.bytes) / d.Seconds()
}

// sending records the picture bytes of a frame leaving (what the encoder
// produced).
func (r *videoRate) sending(now time.Time, picture int) {
	var total int64
	if n := len(r.encoded); n > 0 {
		total = r.encoded[n-1].bytes
	}
	r.encoded = append(r.encoded, ackPoint{now, total + int64(picture)})
	r.encoded = trimPoints(r.encoded, now, demandWindow)
}

// blocked reports whether a frame is ready but the window is full.
func (r *videoRate) blocked(now time.Time, on bool) {
	switch {
	case on && r.blockedSince.IsZero():
		r.blockedSince = now
	case !on && !r.blockedSince.IsZero():
		r.stepBlocked += now.Sub(r.blockedSince)
		r.blockedSince = time.Time{}
	}
}

// probe returns the target after two clear steps: up by probeGain while
// the encoder spends 3/4 of its budget, but no higher than kneeHold% of the
// knee until probeHold after the last back-off (and past that only while
// the encoder spends 9/10 of it); by fastProbeGain once the back-off is
// fastProbeAfter old and the target is past the knee by 10% (or no knee is
// known): the link got faster.
func (r *videoRate) probe(now time.Time, demand float64) int {
	since := now.Sub(r.lastBackoff)
	hold := r.knee * kneeHold / 100
	switch {
	case demand < 0.75*float64(r.target), r.knee > 0 && r.target >= hold && demand < 0.9*float64(r.target):
		return r.target
	case since >= fastProbeAfter && (r.knee == 0 || r.target > r.knee*11/10):
		return int(float64(r.target) * fastProbeGain)
	case r.knee == 0 || since >= probeHold:
		return int(float64(r.target) * probeGain)
	}
	return max(r.target, min(int(float64(r.target)*probeGain), hold))
}

// window returns how many frames may be in flight.
func (r *videoRate) window() int {
	n := int(r.minRTT/videoMinInterval) + 2
	return min(max(n, MaxInflight), maxVideoWindow)
}

// demand returns the bit/s the encoder produced over about the last second.
func (r *videoRate) demand(now time.Time) float64 {
	if len(r.encoded) == 0 {
		return 0
	}
	a, z := r.encoded[0], r.encoded[len(r.encoded)-1]
	d := max(now.Sub(a.at), bitrateStep)
	return float64(z.bytes-a.bytes) * 8 / d.Seconds()
}

// update ends a step if one is due and returns the target, at most ceil.
func (r *videoRate) update(now time.Time, ceil int) int {
	if r.stepStart.IsZero() {
		r.stepStart, r.lastBackoff = now, now
	}
	if d := now.Sub(r.stepStart); d >= bitrateStep {
		if !r.blockedSince.IsZero() {
			r.stepBlocked += now.Sub(r.blockedSince)
			r.blockedSince = now
		}
		demand := r.demand(now)
		queue := r.stepBlocked*20 >= d ||
			(r.stepAcks >= 3 && r.stepBusy*2 >= r.stepAcks && demand >= 0.6*float64(r.target))
		switch {
		case queue:
			next := int(float64(r.target) * 0.7)
			if g := r.goodput(); g > 0 {
				next = int(g * 8 * bitrateBackoff)
				r.knee = int(g * 8)
			}
			r.target = max(r.target/2, min(next, r.target*9/10))
			r.clear, r.lastBackoff = 0, now
		case r.clear >= 1:
			r.clear = 0
			r.target = r.probe(now, demand)
		default:
			r.clear++
		}
		r.stepStart, r.stepAcks, r.stepBusy, r.stepBlocked = now, 0, 0, 0
	}
	r.target = max(video.MinBitrate, min(r.target, ceil))
	return r.target
}
