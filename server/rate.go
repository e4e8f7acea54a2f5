package server

import (
	"math"
	"time"

	"kvmgate/encoders/ratectl"
	"kvmgate/encoders/video"
)

// Quality modes a viewer may ask for (encoders/ratectl).
const (
	ModeAuto     = ratectl.ModeAuto
	ModeLossless = ratectl.ModeLossless
	ModeLow      = ratectl.ModeLow
)

// minFrameInterval is the tiles rate controller's least frame interval.
const minFrameInterval = ratectl.MinFrameInterval

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
	// probeGain is the growth per probe (every two clear steps),
	// fastProbeGain once the last back-off is fastProbeAfter old. With a
	// knee (the goodput at the last back-off) known the target cruises at
	// kneeHold percent of it and probes above it every probeHold.
	probeGain      = 1.05
	kneeHold       = 75
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
//     and that goodput (while probing: the goodput since the probe began)
//     is remembered as the knee;
//   - after two clear steps it grows by 5% (15% once the last back-off is
//     5 s old), but only while the encoder spends at least 3/4 of its
//     budget (a still or slow screen does not drive the target up
//     unchecked), and with a knee known only up to 75% of it, where it
//     cruises;
//   - 4 s after the last back-off and probe, if the encoder would spend
//     more, it probes at 105% of the knee for two steps (see probe).
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
	knee         int  // bit/s: the goodput at the last back-off; 0 unknown
	probing      bool // the target is above the knee to probe for more
	probeStart   time.Time
	lastProbe    time.Time // when the last probe passed
	passes       int       // probes in a row that found no queue with the encoder filling the knee
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

// probe returns the target after two clear steps. Without a knee it grows
// by probeGain (fastProbeGain once the last back-off is fastProbeAfter
// old) while the encoder spends 3/4 of its budget. With one it grows that
// way up to kneeHold% of the knee and cruises there. probeHold after the
// last back-off and probe, if the encoder would spend more, it probes at
// 105% of the knee for two steps: a queue then backs off as usual; a pass
// with the encoder producing at least the knee raises the knee to that
// rate, and two such passes in a row show the link got faster (the knee is
// forgotten, growth resumes); a pass below it (the encoder did not fill
// the link) goes back to cruising.
func (r *videoRate) probe(now time.Time, demand float64) int {
	since := now.Sub(r.lastBackoff)
	gain := probeGain
	if since >= fastProbeAfter {
		gain = fastProbeGain
	}
	grow := func(limit int) int {
		if demand < 0.75*float64(r.target) {
			return r.target
		}
		return max(r.target, min(int(float64(r.target)*gain), limit))
	}
	if r.knee == 0 {
		return grow(math.MaxInt)
	}
	cruise := r.knee * kneeHold / 100
	switch {
	case r.probing:
		// The probe passed without a queue.
		r.probing = false
		r.lastProbe = now
		if carried := int(rateSince(r.encoded, r.probeStart) * 8); carried >= r.knee {
			// The link carried more than the knee: raise it, and after a
			// second such pass forget it (the link got faster).
			if r.passes++; r.passes >= 2 {
				r.knee, r.passes = 0, 0
				return r.target
			}
			r.knee = carried
		} else {
			r.passes = 0
		}
		return r.knee * kneeHold / 100
	case r.target < cruise:
		return grow(cruise)
	case since >= probeHold && now.Sub(r.lastProbe) >= probeHold && demand >= 0.9*float64(r.target):
		r.probing, r.probeStart = true, now
		return r.knee * 105 / 100
	}
	return r.target
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

// rateSince returns the bytes per second that cumulative points p grew by
// from t (or their first point after it) to their last point; 0 when that
// spans less than half a step.
func rateSince(p []ackPoint, t time.Time) float64 {
	i := 0
	for i+1 < len(p) && !p[i+1].at.After(t) {
		i++
	}
	if len(p) < 2 {
		return 0
	}
	a, z := p[i], p[len(p)-1]
	if d := z.at.Sub(a.at); d >= bitrateStep/2 {
		return float64(z.bytes-a.bytes) / d.Seconds()
	}
	return 0
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
			if g := rateSince(r.acks, r.probeStart); r.probing && g > 0 {
				// What the link carried while probing is its capacity.
				r.knee = int(g * 8)
			}
			r.target = max(r.target/2, min(next, r.target*9/10))
			r.clear, r.lastBackoff, r.probing, r.passes = 0, now, false, 0
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
