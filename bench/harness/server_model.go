package harness

import (
	"time"

	"kvmgate/encoders/tiles"
)

// The TilesServer configuration: server/ws.go's tiles sender as it is,
// with nothing the server cannot know. Unlike the other adaptive
// configurations it is not told the link's rate: it keeps at most
// serverMaxInflight frames unacknowledged (an ack reaches the server RTT/2
// after its frame arrived), and its quality and frame interval come from
// serverRate, a copy of server/rate.go's controller fed with those acks.
// Refinement is paced as server/pacing.go does it: piece by piece once a
// goodput is measured and tiles are lossy; otherwise in one frame. Until a
// goodput is measured, a frame of 16 KiB or more waits for the ack of the
// previous one (server/pacing.go's slow start).

// serverMaxInflight is server/ws.go's MaxInflight.
const serverMaxInflight = 2

// serverRate mirrors server/rate.go's rateController in auto mode (it is
// unexported there): an EWMA of ack round trips, the smallest one seen,
// and goodput sampled from frames of at least 16 KiB as their bytes over
// the part of the round trip above the smallest.
type serverRate struct {
	srtt, minRTT time.Duration
	bw           float64 // bytes/s; 0 until measured
	last         int
}

func (c *serverRate) acked(bytes int, rtt time.Duration) {
	rtt = max(rtt, time.Microsecond)
	if c.srtt == 0 {
		c.srtt = rtt
	} else {
		c.srtt += (rtt - c.srtt) / 8
	}
	if c.minRTT == 0 || rtt < c.minRTT {
		c.minRTT = rtt
	}
	if extra := rtt - c.minRTT; bytes >= 16<<10 && extra > 2*time.Millisecond {
		sample := float64(bytes) / (extra + time.Millisecond).Seconds()
		if c.bw == 0 {
			c.bw = sample
		} else {
			c.bw += (sample - c.bw) / 4
		}
	}
}

func (c *serverRate) interval() time.Duration {
	if c.bw == 0 {
		return minFrameInterval
	}
	d := time.Duration(float64(c.last) / c.bw * float64(time.Second))
	return min(max(d, minFrameInterval), maxFrameInterval)
}

// acker tracks a TilesServer sender's unacknowledged frames.
type acker struct {
	rate     serverRate
	inflight []sentFrame
	rtt      time.Duration
}

// ackAt returns when the ack of frame f reaches the server.
func (a *acker) ackAt(emu linkEmulator, f sentFrame) time.Duration {
	return emu.arrival(f.id) + a.rtt/2
}

// process feeds the acks that have reached the server by t to the
// controller.
func (a *acker) process(emu linkEmulator, t time.Duration) {
	for len(a.inflight) > 0 {
		f := a.inflight[0]
		at := a.ackAt(emu, f)
		if at > t {
			return
		}
		a.rate.acked(f.bytes, at-f.at)
		a.inflight = a.inflight[1:]
	}
}

// freeAt returns when fewer than n frames will be unacknowledged.
func (a *acker) freeAt(emu linkEmulator, n int) time.Duration {
	if len(a.inflight) < n {
		return 0
	}
	return a.ackAt(emu, a.inflight[len(a.inflight)-n])
}

// bigInflight reports whether a frame of at least 16 KiB awaits its ack.
func (a *acker) bigInflight() bool {
	for _, f := range a.inflight {
		if f.bytes >= 16<<10 {
			return true
		}
	}
	return false
}

// stepServer is step for TilesServer: the sender of server/ws.go's loop.
func (v *sender) stepServer(t, next time.Duration) error {
	v.dirty = true
	a := v.acks
	for {
		a.process(v.emu, t)
		var at time.Duration
		refine := false
		c := v.codec.(*tilesCodec)
		switch {
		case v.dirty:
			at = max(t, a.freeAt(v.emu, serverMaxInflight))
			if a.rate.bw == 0 && a.bigInflight() {
				// server/pacing.go's slow start: one large frame at a
				// time until a goodput is measured.
				at = max(at, a.freeAt(v.emu, 1))
			}
			if v.sentAny {
				at = max(at, v.lastSend+a.rate.interval())
			}
		case c.refining():
			at = max(t, a.freeAt(v.emu, serverMaxInflight), v.lastSend+a.rate.interval())
			refine = true
		case c.needsRefine():
			at = max(t, a.freeAt(v.emu, 1), v.lastSend+refineDelay)
			refine = true
		default:
			return nil
		}
		if at >= next {
			return nil
		}
		// The acks that arrive by then change the controller's mind: go
		// round again with them unless nothing changed.
		n := len(a.inflight)
		a.process(v.emu, at)
		if len(a.inflight) != n {
			t = at
			continue
		}
		bw := a.rate.bw
		c.q = tiles.Quality{}
		if bw > 0 {
			c.q = adaptiveQuality(bw)
		}
		c.paced = c.q.Lossy && bw > 0
		c.bps = bw * 8
		frames := len(v.frames)
		if err := v.send(at, refine); err != nil {
			return err
		}
		if len(v.frames) > frames {
			f := v.frames[len(v.frames)-1]
			a.inflight = append(a.inflight, f)
			a.rate.last = f.bytes
		}
	}
}
