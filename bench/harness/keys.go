package harness

import (
	"math"
	"sort"
	"time"

	"kvmgate/framebuffer"
)

// Key-to-screen latency. A probe viewer is a twin of a measured viewer
// (same codec, same link) watching its own copy of the source picture: the
// browser sends a key every keyEvery; when the key reaches the server side
// of the link (RTT/2 later, one RTT more if the uplink lost it) an echo is
// painted into that copy, as a console would echo a typed character. The
// latency is from the key's sending to the arrival of the first frame
// whose decoded picture shows that echo. Probes send the same kind of
// frames as their twin but add the echo's bytes, so their other figures
// are not reported.

// keyEvery is the time between keys; the first goes at keyStart.
const (
	keyEvery = time.Second
	keyStart = 500 * time.Millisecond
)

// echoCell is the echo's size: a 4×4 grid of 4×4-pixel black or white
// blocks that spell the key's number (1 to 65535), robust to lossy codecs.
const (
	echoBlock = 4
	echoCell  = 4 * echoBlock
)

// echoRect returns where the echo is painted on a w×h screen: near the
// bottom right corner.
func echoRect(w, h int) framebuffer.Rect {
	return framebuffer.Rect{X: max(w-echoCell-8, 0), Y: max(h-echoCell-8, 0), W: echoCell, H: echoCell}
}

// paintEcho paints the echo of key number n (from 1) into c.
func paintEcho(c *framebuffer.Canvas, n int) {
	r := echoRect(c.W, c.H)
	for i := range 16 {
		col := uint32(0xff000000)
		if n>>i&1 != 0 {
			col = 0xffffffff
		}
		c.Fill(framebuffer.Rect{X: r.X + i%4*echoBlock, Y: r.Y + i/4*echoBlock, W: echoBlock, H: echoBlock}, col)
	}
}

// readEcho returns the key number the echo cell of c shows, or 0 if it
// shows none: every block must be nearly uniform and clearly black or
// white.
func readEcho(c *framebuffer.Canvas) int {
	if c.W < echoCell || c.H < echoCell {
		return 0
	}
	r := echoRect(c.W, c.H)
	n := 0
	for i := range 16 {
		var sum, sq float64
		for y := range echoBlock {
			row := c.Row(r.X+i%4*echoBlock, r.Y+i/4*echoBlock+y, echoBlock)
			for x := 0; x < len(row); x += 4 {
				l := 0.299*float64(row[x]) + 0.587*float64(row[x+1]) + 0.114*float64(row[x+2])
				sum += l
				sq += l * l
			}
		}
		const k = echoBlock * echoBlock
		mean := sum / k
		if sq/k-mean*mean > 40*40 {
			return 0
		}
		switch {
		case mean > 160:
			n |= 1 << i
		case mean < 96:
		default:
			return 0
		}
	}
	return n
}

// keyEvent is one key: when the browser sent it and when the echo is
// painted at the server.
type keyEvent struct {
	sent, arrive time.Duration
}

// keySchedule returns the keys sent from keyStart every keyEvery up to end,
// with their arrival over link's uplink (RTT/2, one RTT more when lost).
func keySchedule(l Link, end time.Duration) []keyEvent {
	loss := newLossModel(l, 1)
	var ks []keyEvent
	for t := keyStart; t <= end && len(ks) < 65535; t += keyEvery {
		a := t + l.RTT/2
		if loss.segments(1) > 0 {
			a += l.RTT
		}
		ks = append(ks, keyEvent{t, a})
	}
	return ks
}

// keyProbe records which frame first showed each key's echo.
type keyProbe struct {
	keys []keyEvent
	seen []int // message id of the first frame showing key i; -1: none
}

func newKeyProbe(keys []keyEvent) *keyProbe {
	p := &keyProbe{keys: keys, seen: make([]int, len(keys))}
	for i := range p.seen {
		p.seen[i] = -1
	}
	return p
}

// check notes the frame id whose picture pic shows. A console's echoes
// accumulate (the characters stay on the line), so seeing key n's echo
// also shows every earlier key not seen yet.
func (p *keyProbe) check(pic *framebuffer.Canvas, id int) {
	n := readEcho(pic)
	if n <= 0 || n > len(p.seen) {
		return
	}
	for i := n - 1; i >= 0 && p.seen[i] < 0; i-- {
		p.seen[i] = id
	}
}

// finish sets the key figures of res. A key whose echo never showed counts
// as infinitely late (it is in KeysSent but not KeysSeen).
func (p *keyProbe) finish(res *Result, emu linkEmulator) {
	lat := make([]float64, 0, len(p.keys))
	for i, k := range p.keys {
		if p.seen[i] >= 0 {
			lat = append(lat, float64(emu.arrival(p.seen[i])-k.sent)/float64(time.Millisecond))
		}
	}
	res.KeysSent, res.KeysSeen = len(p.keys), len(lat)
	sort.Float64s(lat)
	for len(lat) < len(p.keys) {
		lat = append(lat, math.Inf(1))
	}
	res.KeyP50Ms = Ms(percentile(lat, 0.5))
	res.KeyP95Ms = Ms(percentile(lat, 0.95))
}
