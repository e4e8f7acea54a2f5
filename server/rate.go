package server

import (
	"time"

	"kvmgate/encoders/tiles"
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
