package server

import (
	"kvmgate/framebuffer"
)

// Paced refinement (issue 6, encoders/pacing): on a link whose goodput the
// acks have measured and where tiles go out lossily, the lossless
// refinement of a still screen is sent in pieces that each hold the link
// for about pacing.FrameTime, back to back at the rate controller's frame
// interval, with new damage going first. Sent in one frame, the refinement
// of a photo held a 256 kbit/s link for 5 s, and every key echo behind it
// (docs/benchmarks.md, "Encoder benchmark harness": tiles-adaptive against
// tiles-paced). On fast links tiles are lossless and nothing changes.

// paced reports whether refinements go piece by piece.
func (vc *viewerConn) paced() bool {
	return vc.rc.Paced()
}

// paceRefine is called by sendFrame with the frame's damage; it reports
// whether sendFrame should itself refine every lossy area in this frame
// (refine unchanged when not paced; false when the refiner does it).
func (vc *viewerConn) paceRefine(refine bool, rects []framebuffer.Rect) bool {
	if !vc.paced() {
		return refine
	}
	area := 0
	for _, r := range rects {
		area += r.Area()
	}
	vc.refiner.Damaged(area, vc.mirror.W, vc.mirror.H)
	if refine {
		vc.refiner.Start()
	}
	return false
}

// appendRefinement appends the refinement pieces that fit what is left of
// the frame's budget once sent bytes have gone out and buf holds more. It
// returns buf and how many pieces' records it added (0 or more).
func (vc *viewerConn) appendRefinement(buf []byte, sent int) ([]byte, int, error) {
	if !vc.refining() {
		return buf, 0, nil
	}
	n := len(buf)
	left := vc.rc.PieceBudget(MaxInflight) - sent - len(buf)
	buf, err := vc.refiner.Append(buf, vc.enc, &vc.mirror, len(buf)+max(left, 0))
	if len(buf) > n {
		return buf, 1, err
	}
	return buf, 0, err
}

// refining reports whether a paced tiles refinement is under way: the
// sender goes on with it at its frame interval, without the refine delay.
func (vc *viewerConn) refining() bool {
	return vc.video == nil && vc.refiner.Active(vc.enc)
}

// slowStart reports whether the sender must wait for acks before the next
// frame although fewer than MaxInflight are unacknowledged (the rate
// controller's slow start, encoders/ratectl's HoldForAck).
func (vc *viewerConn) slowStart() bool {
	largest := 0
	for _, f := range vc.inflight {
		largest = max(largest, f.bytes)
	}
	return vc.rc.HoldForAck(largest)
}
