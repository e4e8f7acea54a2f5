package harness

import (
	"time"

	"kvmgate/encoders/ratectl"
)

// The TilesServer configuration: server/ws.go's tiles sender as it is,
// with nothing the server cannot know. Unlike the other adaptive
// configurations it is not told the link's rate: it keeps at most
// serverMaxInflight frames unacknowledged (an ack reaches the server RTT/2
// after its frame arrived), and its quality and frame interval come from
// the server's own rate controller (encoders/ratectl) fed with those acks.
// Refinement is paced as server/pacing.go does it: piece by piece once a
// goodput is measured and tiles are lossy; otherwise in one frame. Until a
// goodput is measured, a frame of 16 KiB or more waits for the ack of the
// previous one (ratectl's slow start, HoldForAck).

// serverMaxInflight is server/ws.go's MaxInflight.
const serverMaxInflight = 2

// acker tracks a TilesServer sender's unacknowledged frames.
type acker struct {
	rate     *ratectl.Controller
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
		a.rate.Acked(f.bytes, at-f.at)
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

// largestInflight returns the size of the largest unacknowledged frame.
func (a *acker) largestInflight() int {
	n := 0
	for _, f := range a.inflight {
		n = max(n, f.bytes)
	}
	return n
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
			if a.rate.HoldForAck(a.largestInflight()) {
				// Slow start: one large frame at a time until a goodput
				// is measured.
				at = max(at, a.freeAt(v.emu, 1))
			}
			if v.sentAny {
				at = max(at, v.lastSend+a.rate.Interval())
			}
		case c.refining():
			at = max(t, a.freeAt(v.emu, serverMaxInflight), v.lastSend+a.rate.Interval())
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
		c.q = a.rate.Quality()
		c.paced = a.rate.Paced()
		c.budget = a.rate.PieceBudget(serverMaxInflight)
		frames := len(v.frames)
		if err := v.send(at, refine); err != nil {
			return err
		}
		if len(v.frames) > frames {
			f := v.frames[len(v.frames)-1]
			a.inflight = append(a.inflight, f)
			a.rate.Sent(f.bytes)
		}
	}
}
