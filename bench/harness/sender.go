package harness

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"kvmgate/encoders/autoswitch"
	"kvmgate/encoders/pacing"
	"kvmgate/encoders/ratectl"
	"kvmgate/encoders/tiles"
	"kvmgate/encoders/tiles/tilestest"
	"kvmgate/encoders/video"
	"kvmgate/framebuffer"
)

// maxTime stands for "no next frame": the end of a replay.
const maxTime = time.Duration(math.MaxInt64)

// Frame pacing constants of server/ws.go and encoders/ratectl.
const (
	minFrameInterval = ratectl.MinFrameInterval
	maxFrameInterval = ratectl.MaxFrameInterval
	refineDelay      = 300 * time.Millisecond
)

// frameCodec is what a simulated viewer sends its frames with: tiles or a
// video codec, and the browser's decoder for them.
type frameCodec interface {
	// encode takes what changed from v into mirror and returns the frame's
	// bytes, or nil when there is nothing to send; bps is the link's rate
	// (the adaptive configurations' oracle).
	encode(v *framebuffer.Viewer, mirror *framebuffer.Canvas, at time.Duration, refine bool, bps float64, frameNo uint32) ([]byte, error)
	// decode applies a frame in the browser and returns its picture.
	decode(buf []byte) (*framebuffer.Canvas, error)
	// picture returns the browser's picture.
	picture() *framebuffer.Canvas
	// needsRefine reports whether a quiet screen should get a refinement.
	needsRefine() bool
	// refining reports whether a refinement is under way that the next
	// frame should go on with (without waiting for the refine delay).
	refining() bool
	// adaptive reports whether the frame interval follows the link.
	adaptive() bool
	close()
}

// waker is a frameCodec that wants a frame at a time of its own with
// nothing to send or refine (Auto going back to tiles on a still screen).
type waker interface {
	// wakeAt returns when, or -1 for never.
	wakeAt() time.Duration
}

// sentFrame is one frame a sender sent: when it took the picture, its
// message on the link and its size.
type sentFrame struct {
	at    time.Duration
	id    int
	bytes int
}

// sender simulates one viewer of server/ws.go: its framebuffer viewer and
// mirror, a codec, a link and the browser. It sends whenever its link has
// drained and its frame interval has passed, latest wins.
type sender struct {
	res    *Result
	link   Link
	emu    linkEmulator
	v      *framebuffer.Viewer
	mirror framebuffer.Canvas
	codec  frameCodec
	probe  *keyProbe // nil unless this sender measures key echo
	acks   *acker    // TilesServer: ack-driven flow and rate control

	dirty     bool
	sentAny   bool
	lastSend  time.Duration
	lastBytes int
	frameNo   uint32
	cpu       time.Duration
	qual      quality
	frames    []sentFrame
}

// interval is the least time between frame starts at t.
func (v *sender) interval(t time.Duration) time.Duration {
	if !v.codec.adaptive() {
		return minFrameInterval
	}
	d := time.Duration(float64(v.lastBytes) / (v.emu.rate(t) / 8) * float64(time.Second))
	return min(max(d, minFrameInterval), maxFrameInterval)
}

// step handles a picture published at t that stays current until next.
func (v *sender) step(t, next time.Duration) error {
	if v.acks != nil {
		return v.stepServer(t, next)
	}
	v.dirty = true
	for {
		d, ok := v.emu.drained(next)
		if !ok {
			return nil // the link is busy until after next: merge
		}
		at := max(t, d)
		if v.sentAny {
			at = max(at, v.lastSend+v.interval(at))
		}
		refine := false
		if !v.dirty {
			switch {
			case !v.codec.adaptive():
				return nil
			case v.codec.refining():
			case v.codec.needsRefine():
				at = max(at, v.lastSend+refineDelay)
			default:
				w, ok := v.codec.(waker)
				if !ok || w.wakeAt() < 0 {
					return nil
				}
				at = max(at, w.wakeAt())
			}
			refine = true
		}
		if at >= next {
			return nil
		}
		if err := v.send(v.emu.wait(at), refine); err != nil {
			return err
		}
	}
}

// send takes what changed, encodes it, puts it on the link and lets the
// browser decode it.
func (v *sender) send(at time.Duration, refine bool) error {
	v.dirty = false
	c0 := threadCPU()
	buf, err := v.codec.encode(v.v, &v.mirror, at, refine, v.emu.rate(at), v.frameNo+1)
	v.cpu += threadCPU() - c0
	if err != nil || buf == nil {
		return err
	}
	v.frameNo++
	n := len(buf) + wsHeader(len(buf))
	id := v.emu.send(at, n)
	v.res.WireBytes += int64(n)
	v.res.Frames++
	v.sentAny, v.lastSend, v.lastBytes = true, at, n
	v.frames = append(v.frames, sentFrame{at, id, n})
	pic, err := v.codec.decode(buf)
	if err != nil {
		return fmt.Errorf("browser decode: %w", err)
	}
	if v.probe != nil {
		v.probe.check(pic, id)
		return nil // probes measure key echo only
	}
	v.qual.addID(v.res, pic, &v.mirror, id)
	return nil
}

func (v *sender) finish(final *framebuffer.Canvas, finalHash uint64, firstChange, lastChange time.Duration) (Result, error) {
	v.v.Close()
	defer v.codec.close()
	if err := v.emu.close(); err != nil {
		return Result{}, err
	}
	if v.res.Frames > 0 {
		v.res.CPUPerFrameUs = float64(v.cpu) / float64(time.Microsecond) / float64(v.res.Frames)
	}
	v.res.LostSegments = v.emu.lostSegments()
	for i := range v.qual.hist {
		if id := v.qual.hist[i].id; id >= 0 {
			v.qual.hist[i].at = v.emu.arrival(id)
		}
	}
	if v.probe != nil {
		v.probe.finish(v.res, v.emu)
		return *v.res, nil
	}
	v.qual.finish(v.res, v.codec.picture(), final, finalHash, lastChange)
	v.frameStats(firstChange, lastChange)
	if ac, ok := v.codec.(*autoCodec); ok {
		ac.stats(v.res, firstChange, lastChange)
	}
	return *v.res, nil
}

// frameStats fills in the ages of the frames at arrival, their trend, and
// the bitrate while the source was changing.
func (v *sender) frameStats(firstChange, lastChange time.Duration) {
	if len(v.frames) == 0 {
		return
	}
	ages := make([]float64, len(v.frames))
	var sx, sy, sxx, sxy float64
	var activeBytes int
	for i, f := range v.frames {
		a := float64(v.emu.arrival(f.id)-f.at) / float64(time.Millisecond)
		ages[i] = a
		x := f.at.Seconds()
		sx, sy, sxx, sxy = sx+x, sy+a, sxx+x*x, sxy+x*a
		if f.at <= lastChange {
			activeBytes += f.bytes
		}
	}
	n := float64(len(ages))
	if d := n*sxx - sx*sx; n >= 3 && d > 0 {
		v.res.AgeSlope = (n*sxy - sx*sy) / d / 1000 // ms per ms
	}
	sort.Float64s(ages)
	v.res.AgeP50Ms = percentile(ages, 0.5)
	v.res.AgeP95Ms = percentile(ages, 0.95)
	if span := lastChange - firstChange; span > 0 {
		v.res.ActiveKbps = float64(activeBytes) * 8 / span.Seconds() / 1000
	}
}

// percentile returns the p-quantile of sorted values (nearest rank).
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// tilesCodec is the tiles encoder framed as server/ws.go's sendFrame does
// (copies, damage, lossy refinement, frame end), and the browser's Go
// decoder of the wire records.
type tilesCodec struct {
	enc   *tiles.Encoder
	dec   *tilestest.Decoder
	q     tiles.Quality
	adapt bool
	paced bool // TilesPaced: refinement in budget-sized pieces
	ref   pacing.Refiner
	// server: TilesServer, whose q, paced and budget (the refinement
	// piece's bytes) stepServer sets from its rate controller before
	// each frame.
	server bool
	budget int
	// onset: Auto's tiles while motion may be starting; lossless tiles
	// go at autoswitch.OnsetQuality.
	onset bool
	buf   []byte
}

func newTilesCodec(enc string, jpegQ int) *tilesCodec {
	c := &tilesCodec{enc: tiles.NewEncoder(), dec: tilestest.NewDecoder()}
	switch enc {
	case TilesLossy:
		c.q = tiles.Quality{Lossy: true, JPEG: jpegQ}
	case TilesAdaptive:
		c.adapt = true
	case TilesPaced:
		c.adapt, c.paced = true, true
	case TilesServer:
		c.adapt, c.server = true, true
	}
	return c
}

func (c *tilesCodec) adaptive() bool    { return c.adapt }
func (c *tilesCodec) needsRefine() bool { return c.enc.Lossy() }
func (c *tilesCodec) refining() bool    { return (c.paced || c.server) && c.ref.Active(c.enc) }
func (c *tilesCodec) close()            {}
func (c *tilesCodec) picture() *framebuffer.Canvas {
	return &c.dec.Canvas
}

func (c *tilesCodec) encode(fv *framebuffer.Viewer, mirror *framebuffer.Canvas, at time.Duration, refine bool, bps float64, frameNo uint32) ([]byte, error) {
	u := fv.Take(mirror)
	return c.encodeUpdate(&u, mirror, at, refine, bps, frameNo)
}

// encodeUpdate is encode for an update already taken.
func (c *tilesCodec) encodeUpdate(u *framebuffer.Update, mirror *framebuffer.Canvas, at time.Duration, refine bool, bps float64, frameNo uint32) ([]byte, error) {
	if u.Empty() && !refine {
		return nil, nil
	}
	buf := c.buf[:0]
	var rects []framebuffer.Rect
	if u.Resized {
		buf = tiles.AppendResize(buf, u.Width, u.Height)
		c.enc.ForgetLossy()
		rects = []framebuffer.Rect{{W: u.Width, H: u.Height}}
	} else {
		for _, m := range u.Moves {
			c.enc.Copy(m) // sent in the next batch
		}
		rects = u.Damage
	}
	if u.CursorChanged {
		buf = tiles.AppendCursor(buf, u.Cursor)
	}
	q := c.q
	budget := pacing.Budget(bps)
	switch {
	case c.server:
		budget = c.budget
	case c.adapt:
		q = ratectl.QualityFor(bps / 8)
	}
	if c.onset && !q.Lossy {
		// Auto: motion may be starting (encoders/autoswitch).
		q = autoswitch.OnsetQuality
	}
	if c.paced {
		area := 0
		for _, r := range rects {
			area += r.Area()
		}
		c.ref.Damaged(area, mirror.W, mirror.H)
		if refine {
			c.ref.Start()
		}
		refine = false // the refiner sends it, piece by piece
	}
	lossyFrom := len(rects)
	if refine || !q.Lossy {
		rects = c.enc.LossyRects(rects)
	}
	var err error
	for i, r := range rects {
		if i == lossyFrom {
			q = tiles.Quality{}
		}
		if buf, err = c.enc.Encode(buf, mirror, r, q); err != nil {
			return nil, err
		}
	}
	if buf, err = c.enc.Flush(buf); err != nil {
		return nil, err
	}
	if c.paced {
		n := len(buf)
		if buf, err = c.ref.Append(buf, c.enc, mirror, budget); err != nil {
			return nil, err
		}
		if u.Empty() && len(buf) == n {
			return nil, nil
		}
	}
	buf = tiles.AppendFrameEnd(buf, frameNo)
	c.buf = buf
	return buf, nil
}

func (c *tilesCodec) decode(buf []byte) (*framebuffer.Canvas, error) {
	_, err := c.dec.Apply(buf)
	return &c.dec.Canvas, err
}

// videoMaxBitrate is server/video.go's highest target in auto mode.
const videoMaxBitrate = 12_000_000

// videoCodec is a WebSocket video viewer as server/video.go's
// sendVideoFrame sends it: resize, config, cursor and one encoded picture
// per frame, a high-quality refinement keyframe once the screen is quiet.
// Its target bitrate is 80% of the link's rate (an oracle for the server's
// ack-based controller, which climbs towards 80% of the measured goodput).
type videoCodec struct {
	codec   string
	enc     video.Encoder
	dec     video.Decoder
	pic     framebuffer.Canvas
	data    []byte // the last frame's encoded picture, for decode
	refined bool
	changed int
	start   time.Duration
	buf     []byte
}

func newVideoCodec(codec string) (*videoCodec, error) {
	dec, err := video.NewDecoder(codec)
	if err != nil {
		return nil, err
	}
	return &videoCodec{codec: codec, dec: dec}, nil
}

func (c *videoCodec) adaptive() bool { return true }
func (c *videoCodec) refining() bool { return false }
func (c *videoCodec) needsRefine() bool {
	return c.enc != nil && !c.refined && c.changed*20 >= c.pic.W*c.pic.H
}
func (c *videoCodec) picture() *framebuffer.Canvas { return &c.pic }
func (c *videoCodec) close() {
	if c.enc != nil {
		_ = c.enc.Close()
	}
	_ = c.dec.Close()
}

func videoTarget(bps float64) int {
	return min(max(int(bps*0.8), video.MinBitrate), videoMaxBitrate)
}

func (c *videoCodec) encode(fv *framebuffer.Viewer, mirror *framebuffer.Canvas, at time.Duration, refine bool, bps float64, frameNo uint32) ([]byte, error) {
	u := fv.Take(mirror)
	return c.encodeUpdate(&u, mirror, at, refine, bps, frameNo)
}

// encodeUpdate is encode for an update already taken.
func (c *videoCodec) encodeUpdate(u *framebuffer.Update, mirror *framebuffer.Canvas, at time.Duration, refine bool, bps float64, frameNo uint32) ([]byte, error) {
	if u.Empty() && !refine {
		return nil, nil
	}
	buf := c.buf[:0]
	c.data = nil
	if u.Resized {
		buf = tiles.AppendResize(buf, u.Width, u.Height)
		if c.enc != nil {
			_ = c.enc.Close()
		}
		enc, err := video.New(c.codec, video.Options{Width: mirror.W, Height: mirror.H, Bitrate: videoTarget(bps)})
		if err != nil {
			c.enc = nil
			return nil, err
		}
		c.enc, c.start = enc, at
		c.pic.Resize(mirror.W, mirror.H)
	}
	if u.CursorChanged {
		buf = tiles.AppendCursor(buf, u.Cursor)
	}
	changed := u.Resized || len(u.Damage) > 0 || len(u.Moves) > 0
	if (changed || refine) && c.enc != nil {
		if t := videoTarget(bps); t != c.enc.Bitrate() {
			if err := c.enc.SetBitrate(t); err != nil {
				return nil, err
			}
		}
		pts := at - c.start
		var f video.Frame
		var err error
		if refine {
			f, err = c.enc.Refine(nil, mirror, pts)
		} else {
			f, err = c.enc.Encode(nil, mirror, pts, u.Resized)
		}
		if err != nil {
			return nil, err
		}
		if u.Resized {
			buf = video.AppendConfig(buf, mirror.W, mirror.H, video.WebCodecsString(c.codec, f.Data))
		}
		if len(f.Data) > 0 {
			buf = video.AppendFrame(buf, f, uint32(pts.Milliseconds()))
			c.data = f.Data
		}
		switch {
		case refine:
			c.refined, c.changed = true, 0
		case u.Resized:
			c.refined, c.changed = false, mirror.W*mirror.H
		default:
			c.refined = false
			for _, r := range u.Damage {
				c.changed += r.Area()
			}
			for _, m := range u.Moves {
				c.changed += m.Src.Area()
			}
		}
	}
	buf = tiles.AppendFrameEnd(buf, frameNo)
	c.buf = buf
	return buf, nil
}

func (c *videoCodec) decode([]byte) (*framebuffer.Canvas, error) {
	if c.data == nil {
		return &c.pic, nil
	}
	p, err := c.dec.Decode(c.data)
	if err != nil {
		return nil, err
	}
	if p != nil {
		p.ToRGBA(&c.pic)
	}
	return &c.pic, nil
}

// videoCodecName maps a video configuration to its codec.
func videoCodecName(enc string) string {
	switch enc {
	case VideoH264:
		return video.H264
	case VideoVP8:
		return video.VP8
	}
	return ""
}

// videoAvailable reports why a video configuration cannot run, or nil.
func videoAvailable(enc string) error {
	err := video.Available(videoCodecName(enc))
	var ue *video.UnavailableError
	if errors.As(err, &ue) {
		return fmt.Errorf("%s", ue.Reason)
	}
	return err
}
