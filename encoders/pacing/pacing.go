// Package pacing fits a tiles viewer's frames to a slow link: the lossless
// refinement of areas sent lossily (a still screen after motion) goes out
// in pieces that each take the link about FrameTime, instead of one frame
// that can hold the link for seconds. A key's echo then waits at most one
// piece behind it. It is the rate controller of issue 6 for tiles, driven
// by the link's rate (the harness gives it the emulated link's; a server
// gives it the goodput its acks measure).
//
// A sender uses it as follows: after the screen has been quiet for the
// refine delay, Start; in every frame, after the new damage, Append the
// refinement that fits the budget; while Active, send the next frame as
// soon as the link has drained the last one.
package pacing

import (
	"kvmgate/encoders/tiles"
	"kvmgate/framebuffer"
)

// FrameTime is how long a frame should hold the link.
const FrameTime = 100_000_000 // 100 ms, in nanoseconds

// MinBudget is the smallest frame budget in bytes, so that a refinement
// always progresses.
const MinBudget = 1500

// pieceW is the widest refinement piece in pixels; pieces are one row of
// the encoder's lossy tiles high.
const pieceW = 64

// Budget returns how many bytes a frame should carry on a link of bps
// bits per second: what it drains in FrameTime, at least MinBudget.
func Budget(bps float64) int {
	return max(int(bps/8*FrameTime/1e9), MinBudget)
}

// StopShare is the share of the screen (1/StopShare) that new damage must
// cover to stop a refinement under way: the screen is no longer quiet.
const StopShare = 20

// Refiner sends the lossless refinement of what a tiles.Encoder sent
// lossily, budget by budget. It is owned by the viewer's sender.
type Refiner struct {
	active bool
	rects  []framebuffer.Rect
}

// Start begins a refinement: the screen went quiet.
func (r *Refiner) Start() { r.active = true }

// Damaged tells the refiner that a frame carried new damage of area
// pixels on a w×h screen; a large change stops the refinement until the
// screen is quiet again.
func (r *Refiner) Damaged(area, w, h int) {
	if area*StopShare >= w*h {
		r.active = false
	}
}

// Active reports whether a refinement is under way with areas left.
func (r *Refiner) Active(enc *tiles.Encoder) bool {
	if r.active && !enc.Lossy() {
		r.active = false
	}
	return r.active
}

// Append appends lossless refinement pieces of enc's lossy areas of src to
// dst while dst is shorter than limit, and returns dst. Pieces are at most
// pieceW pixels wide and one lossy-tile row high, taken top to bottom.
func (r *Refiner) Append(dst []byte, enc *tiles.Encoder, src *framebuffer.Canvas, limit int) ([]byte, error) {
	if !r.Active(enc) || len(dst) >= limit {
		return dst, nil
	}
	r.rects = enc.LossyRects(r.rects[:0])
	n := len(dst)
	var err error
	for _, rc := range r.rects {
		for x := rc.X; x < rc.X+rc.W; x += pieceW {
			p := framebuffer.Rect{X: x, Y: rc.Y, W: min(pieceW, rc.X+rc.W-x), H: rc.H}
			if dst, err = enc.Encode(dst, src, p, tiles.Quality{}); err != nil {
				return dst, err
			}
			if len(dst) >= limit {
				return dst, nil
			}
		}
	}
	if len(dst) == n {
		// Nothing left that encodes to anything (lossy tiles off the
		// picture): stop, so that a sender does not spin on Active.
		r.active = false
	}
	return dst, nil
}
