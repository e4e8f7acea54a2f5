// Package ratectl is the tiles rate controller: it turns a viewer's frame
// acknowledgements into a frame interval and a tiles encoder quality, and
// says when slow start must hold a frame back. The server's tiles sender
// (server/ws.go) and the benchmark harness's tiles-server configuration
// (bench/harness) both run it, so the harness measures the server's code.
//
// A Controller belongs to one viewer's sender goroutine; it is not safe for
// concurrent use.
package ratectl

import (
	"time"

	"kvmgate/encoders/pacing"
	"kvmgate/encoders/tiles"
)

// Quality modes a viewer may ask for.
const (
	ModeAuto     = "auto"
	ModeLossless = "lossless"
	ModeLow      = "low"
)

// Controller constants.
const (
	// MinFrameInterval and MaxFrameInterval bound Interval.
	MinFrameInterval = time.Second / 60
	MaxFrameInterval = 250 * time.Millisecond
	// SampleBytes is the smallest frame whose round trip measures goodput.
	SampleBytes = 16 << 10
	// smallSampleBytes and smallSampleExtra: a frame below SampleBytes
	// measures goodput when it carried this many bytes more than the
	// frame of the smallest round trip and took this much longer. Paced
	// refinement pieces on a slow link are such frames; without them the
	// goodput of a link that only carries small frames stayed unmeasured
	// and refinement was paced at the floor, about half the rate at
	// 256 kbit/s and 300 ms (docs/benchmarks.md).
	smallSampleBytes = 2 << 10
	smallSampleExtra = 20 * time.Millisecond
	// SlowStartBytes is the frame size from which slow start holds the
	// next frame back until the link is measured (see HoldForAck).
	SlowStartBytes = SampleBytes
	// LosslessAbove is the goodput (bytes/s) above which auto mode never
	// uses lossy encoding.
	LosslessAbove = 6 << 20
)

// ProbeQuality is the quality in auto mode until the first acknowledgement
// comes back (the link is not known yet):
// photo-like tiles go as JPEG, text and flat areas stay lossless (the tiles
// encoder never sends them lossily), and refinement makes the photos
// lossless later. After that ack, until goodput is measured, the quality
// follows the most bytes a frame carried over its whole round trip (a
// lower bound of the link's rate; see Rate). Sent losslessly, the first photo frame held a
// 256 kbit/s link for seconds and every key echo behind it
// (docs/benchmarks.md, "Encoder benchmark harness"); on a LAN the ack
// comes within milliseconds and the next frame refines it.
var ProbeQuality = tiles.Quality{Lossy: true, JPEG: 50}

// Controller turns a viewer's acks into a frame interval and an encoder
// quality. RTT is an EWMA of ack round trips; goodput an EWMA of frame
// bytes over the part of the round trip that exceeds the smallest one seen
// (the path's latency), sampled only from frames of at least SampleBytes.
type Controller struct {
	mode     string
	srtt     time.Duration
	minRTT   time.Duration
	minBytes int     // bytes of the frame whose round trip was minRTT
	bw       float64 // bytes/s; 0 until measured
	floor    float64 // bytes/s: the most any frame carried over its whole round trip; 0 before the first ack
	last     int     // bytes of the last frame sent
	minGap   time.Duration
	quality  tiles.Quality
}

// New returns a Controller in auto mode with nothing measured.
func New() *Controller {
	c := &Controller{mode: ModeAuto, minGap: MinFrameInterval}
	c.update()
	return c
}

// SetMode applies the viewer's quality preference (ModeAuto, ModeLossless
// or ModeLow).
func (c *Controller) SetMode(mode string) {
	c.mode = mode
	c.update()
}

// Mode returns the viewer's quality preference.
func (c *Controller) Mode() string { return c.mode }

// SetMinInterval sets the least Interval (MinFrameInterval by default).
func (c *Controller) SetMinInterval(d time.Duration) { c.minGap = d }

// Sent records the size in bytes of a frame as it leaves.
func (c *Controller) Sent(bytes int) { c.last = bytes }

// Acked feeds one acknowledged frame's size and round trip.
func (c *Controller) Acked(bytes int, rtt time.Duration) {
	rtt = max(rtt, time.Microsecond)
	if c.srtt == 0 {
		c.srtt = rtt
	} else {
		c.srtt += (rtt - c.srtt) / 8
	}
	if c.minRTT == 0 || rtt < c.minRTT {
		c.minRTT, c.minBytes = rtt, bytes
	}
	// A lower bound of the link's rate that needs no smaller round trip
	// to compare with: until goodput is measured it picks the quality and
	// paces refinement, so a fast link goes lossless after one ack.
	c.floor = max(c.floor, float64(bytes)/rtt.Seconds())
	extra := rtt - c.minRTT
	sample := 0.0
	switch {
	case bytes >= SampleBytes && extra > 2*time.Millisecond:
		sample = float64(bytes) / (extra + time.Millisecond).Seconds()
	case bytes-c.minBytes >= smallSampleBytes && extra >= smallSampleExtra:
		// A smaller frame: what it carried beyond the frame of the
		// smallest round trip, over the time it took beyond that one
		// (unbiased where that frame's own transfer is in minRTT). A
		// sample below the floor is a stall or a queue, not the link's
		// rate: on a LAN it would otherwise stick.
		if s := float64(bytes-c.minBytes) / extra.Seconds(); s >= c.floor {
			sample = s
		}
	}
	if sample > 0 {
		if c.bw == 0 {
			c.bw = sample
		} else {
			c.bw += (sample - c.bw) / 4
		}
	}
	c.update()
}

func (c *Controller) update() {
	switch {
	case c.mode == ModeLossless:
		c.quality = tiles.Quality{}
	case c.mode == ModeLow:
		c.quality = tiles.Quality{Lossy: true, JPEG: 40}
	case c.bw > 0:
		c.quality = QualityFor(c.bw)
	case c.floor > 0:
		c.quality = QualityFor(c.floor)
	default:
		c.quality = ProbeQuality
	}
}

// QualityFor is auto mode's quality for a goodput in bytes per second (0:
// not measured, lossless).
func QualityFor(bw float64) tiles.Quality {
	switch {
	case bw == 0 || bw > LosslessAbove:
		return tiles.Quality{}
	case bw > 2<<20:
		return tiles.Quality{Lossy: true, JPEG: 80}
	case bw > 512<<10:
		return tiles.Quality{Lossy: true, JPEG: 65}
	default:
		return tiles.Quality{Lossy: true, JPEG: 45}
	}
}

// Quality returns the quality the next frame is encoded at.
func (c *Controller) Quality() tiles.Quality { return c.quality }

// Goodput returns the measured goodput in bytes per second, 0 until
// measured.
func (c *Controller) Goodput() float64 { return c.bw }

// SRTT returns the smoothed ack round trip, 0 before the first ack.
func (c *Controller) SRTT() time.Duration { return c.srtt }

// Rate returns the link rate in bytes per second the sender plans with:
// the measured goodput, or until it is measured the lower bound the acks
// gave (a frame's bytes over its whole round trip); 0 before the first ack.
func (c *Controller) Rate() float64 {
	if c.bw > 0 {
		return c.bw
	}
	return c.floor
}

// PieceBudget returns the bytes a paced refinement piece may take (new
// damage in the same frame included) for a sender that keeps at most
// window frames unacknowledged: what the link carries at Rate in
// pacing.FrameTime or, on a path whose smallest round trip is longer than
// window pieces of that size, a window's share of the path's
// bandwidth-delay product, so that the window does not leave the link idle.
// A key's echo waits at most one piece.
func (c *Controller) PieceBudget(window int) int {
	hold := time.Duration(pacing.FrameTime)
	if window > 0 {
		hold = max(hold, c.minRTT/time.Duration(window))
	}
	return pacing.Budget(c.Rate() * 8 * hold.Seconds() / (pacing.FrameTime / 1e9))
}

// Paced reports whether lossless refinement goes piece by piece
// (encoders/pacing, with a budget from Rate): tiles are lossy and an ack
// came back.
func (c *Controller) Paced() bool { return c.quality.Lossy && c.Rate() > 0 }

// Interval is the least time between frame starts: the time the last frame
// took to drain at the measured goodput, within [SetMinInterval's value,
// MaxFrameInterval].
func (c *Controller) Interval() time.Duration {
	if c.bw == 0 {
		return c.minGap
	}
	d := time.Duration(float64(c.last) / c.bw * float64(time.Second))
	return min(max(d, c.minGap), MaxFrameInterval)
}

// HoldForAck is slow start: it reports whether the sender must wait for
// acks before the next frame although its window has room, given the
// largest frame (bytes) that awaits its ack. Until a goodput is measured no
// frame goes while one of SlowStartBytes or more is unacknowledged.
// Without it, photos on a 256 kbit/s link went out as lossless frames of
// ~130 KiB back to back before the first ack could tell the controller the
// link was slow: seconds of backlog. On a LAN the ack comes within a
// millisecond.
func (c *Controller) HoldForAck(largestInflight int) bool {
	return c.bw == 0 && largestInflight >= SlowStartBytes
}

// QualityNumber is the quality figure reported in stats: 100 for lossless,
// else the JPEG quality.
func (c *Controller) QualityNumber() int {
	if !c.quality.Lossy {
		return 100
	}
	return c.quality.JPEG
}
