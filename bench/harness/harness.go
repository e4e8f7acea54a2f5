// Package harness is the encoder benchmark harness of issue 6. It replays
// recorded workloads (bench/fbs recordings in bench/testdata) frame by frame
// through kvmgate's rfb client into a framebuffer, and for every encoder
// configuration and link profile simulates one browser viewer: what the
// sender takes and encodes when, how many bytes go on the wire, when they
// arrive over the in-process link emulator, and what the browser then shows
// (decoded with encoders/tiles/tilestest). It reports bytes, server CPU per
// frame, frames delivered, PSNR and SSIM against the source frames, and the
// time until the browser's picture is lossless after the workload's last
// change.
//
// The websockify+noVNC baseline is the other recording of each workload:
// the bytes the real server sent, at the same moment, to a client asking
// what noVNC asks by default (Tight, quality 6, compression 2).
//
// Time is virtual: the recordings' timestamps drive the clock, so a run is
// deterministic except for the CPU figures.
package harness

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"kvmgate/bench/fbs"
	"kvmgate/encoders/tiles"
	"kvmgate/encoders/tiles/tilestest"
	"kvmgate/framebuffer"
)

// Encoder configurations.
const (
	// TilesLossless is the tiles encoder with lossy encoding off.
	TilesLossless = "tiles-lossless"
	// TilesLossy is the tiles encoder with JPEG for photo-like tiles at a
	// fixed quality and no refinement.
	TilesLossy = "tiles-lossy"
	// TilesAdaptive models server/rate.go: the JPEG quality its rate
	// controller picks for the link's goodput, its frame interval, and
	// refinement to lossless after 300 ms without changes.
	TilesAdaptive = "tiles-adaptive"
	// Baseline is websockify+noVNC: the server's own Tight/ZRLE bytes at
	// noVNC's default settings, passed through.
	Baseline = "novnc-baseline"
)

// Encoders lists every configuration in report order.
var Encoders = []string{TilesLossless, TilesLossy, TilesAdaptive, Baseline}

// Workload is a pair of recordings of one session.
type Workload struct {
	Name string
	// Source is the lossless recording: the source frames.
	Source string
	// Baseline is the recording at noVNC's defaults, on loopback.
	Baseline string
	// Throttled maps a link profile's name to a recording at noVNC's
	// defaults made at the same time through that emulated path
	// (name-novnc@LINK.fbs.gz), where there is one.
	Throttled map[string]string
}

// FindWorkloads returns the workloads in dir: every name.fbs.gz with a
// name-novnc.fbs.gz next to it, sorted by size (smallest first).
func FindWorkloads(dir string) ([]Workload, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.fbs.gz"))
	if err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	type sized struct {
		w Workload
		n int64
	}
	var ws []sized
	for _, p := range paths {
		if strings.HasSuffix(p, "-novnc.fbs.gz") || strings.Contains(filepath.Base(p), "-novnc@") {
			continue
		}
		base := strings.TrimSuffix(p, ".fbs.gz") + "-novnc.fbs.gz"
		if _, err := os.Stat(base); err != nil {
			continue
		}
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("harness: %w", err)
		}
		name := strings.TrimSuffix(filepath.Base(p), ".fbs.gz")
		wl := Workload{Name: name, Source: p, Baseline: base, Throttled: map[string]string{}}
		prefix := strings.TrimSuffix(p, ".fbs.gz") + "-novnc@"
		for _, l := range Profiles {
			if tp := prefix + l.Name + ".fbs.gz"; fileExists(tp) {
				wl.Throttled[l.Name] = tp
			}
		}
		ws = append(ws, sized{wl, st.Size()})
	}
	if len(ws) == 0 {
		return nil, fmt.Errorf("harness: no workloads (name.fbs.gz with name-novnc.fbs.gz) in %s", dir)
	}
	sort.Slice(ws, func(i, j int) bool { return ws[i].n < ws[j].n })
	out := make([]Workload, len(ws))
	for i, s := range ws {
		out[i] = s.w
	}
	return out, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Options select what Run measures.
type Options struct {
	// Encoders are the configurations to run (default Encoders).
	Encoders []string
	// Links are the link profiles (default Profiles).
	Links []Link
	// JPEGQuality is TilesLossy's JPEG quality (default 70).
	JPEGQuality int
}

// Result is one workload × encoder × link measurement.
type Result struct {
	Workload string `json:"workload"`
	Encoder  string `json:"encoder"`
	Link     string `json:"link"`
	// SourceFrames is the number of updates in the source recording;
	// Frames the number of frames the viewer sent (all delivered: TCP),
	// for the baseline the number of updates in its recording.
	SourceFrames int `json:"source_frames"`
	Frames       int `json:"frames"`
	// WireBytes counts the payload plus WebSocket framing.
	WireBytes int64 `json:"wire_bytes"`
	// CPUPerFrame is the encoding thread's CPU time per frame sent
	// (Take, encode), in microseconds; 0 for the baseline, whose encoding
	// cost lies in the VNC server.
	CPUPerFrameUs float64 `json:"cpu_per_frame_us"`
	// PSNR is the PSNR of the mean squared error over the delivered frames,
	// each compared with the source picture it was encoded from (for the
	// baseline: the source picture of the same moment); MinPSNR the worst
	// frame; SSIM the mean SSIM.
	PSNR    DB      `json:"psnr_db"`
	MinPSNR DB      `json:"min_psnr_db"`
	SSIM    float64 `json:"ssim"`
	// FinalPSNR and FinalSSIM compare the browser's last picture with the
	// source's last picture.
	FinalPSNR DB      `json:"final_psnr_db"`
	FinalSSIM float64 `json:"final_ssim"`
	// LosslessAfterMs is how long after the source's last change the
	// browser's picture became (and stayed) exactly the source's last
	// picture; -1 means never.
	LosslessAfterMs float64 `json:"lossless_after_ms"`
	// LastArrivalMs is when the last frame arrived, in recording time.
	LastArrivalMs float64 `json:"last_arrival_ms"`
	// LostSegments is the number of TCP segments the emulator lost.
	LostSegments int `json:"lost_segments,omitempty"`
	// BaselinePath says, for the baseline, whether its recording was made
	// through the link or on loopback and replayed over it.
	BaselinePath string `json:"baseline_path,omitempty"`
}

// DB is a figure in decibels that may be +Inf (identical pictures); JSON
// writes +Inf as the string "inf".
type DB float64

// MarshalJSON writes +Inf as "inf" (and -Inf and NaN, which only a
// mismatch of sizes gives, as "-inf" and "nan").
func (d DB) MarshalJSON() ([]byte, error) {
	switch {
	case math.IsInf(float64(d), 1):
		return []byte(`"inf"`), nil
	case math.IsInf(float64(d), -1):
		return []byte(`"-inf"`), nil
	case math.IsNaN(float64(d)):
		return []byte(`"nan"`), nil
	}
	return []byte(fmt.Sprintf("%.2f", float64(d))), nil
}

func (d DB) String() string {
	if math.IsInf(float64(d), 1) {
		return "inf"
	}
	return fmt.Sprintf("%.1f", float64(d))
}

// stream is a recording being replayed in lockstep with others: its replay
// goroutine stops after each update until the harness releases it.
type stream struct {
	fb     *framebuffer.Framebuffer
	frames chan fbs.Frame
	cont   chan struct{}
	errc   chan error
	cur    fbs.Frame
	ok     bool        // cur holds a frame not yet released
	bs     *baseSource // nil for the source stream
}

// baseSource is one baseline recording being replayed: its picture, its
// comparison with the source, and the results it feeds.
type baseSource struct {
	v       *framebuffer.Viewer
	mirror  framebuffer.Canvas
	match   *matcher
	viewers []*baselineViewer
}

func startStream(ctx context.Context, path string) (*stream, error) {
	blocks, err := fbs.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m, err := fbs.ReadMeta(path)
	if err != nil {
		return nil, err
	}
	s := &stream{fb: framebuffer.New(), frames: make(chan fbs.Frame), cont: make(chan struct{}), errc: make(chan error, 1)}
	go func() {
		err := fbs.Replay(ctx, blocks, m, s.fb, func(f fbs.Frame) error {
			select {
			case s.frames <- f:
			case <-ctx.Done():
				return ctx.Err()
			}
			select {
			case <-s.cont:
			case <-ctx.Done():
				return ctx.Err()
			}
			return nil
		})
		close(s.frames)
		s.errc <- err
	}()
	return s, nil
}

// next waits for the stream's next frame; ok is false at its end.
func (s *stream) next() {
	s.cur, s.ok = <-s.frames
}

// release lets the replay go on to the next update.
func (s *stream) release() {
	s.ok = false
	s.cont <- struct{}{}
}

// Run measures one workload for every encoder and link of opts.
func Run(ctx context.Context, w Workload, opts Options) ([]Result, error) {
	if len(opts.Encoders) == 0 {
		opts.Encoders = Encoders
	}
	if len(opts.Links) == 0 {
		opts.Links = Profiles
	}
	if opts.JPEGQuality == 0 {
		opts.JPEGQuality = tiles.DefaultJPEGQuality
	}
	// The CPU figures read this thread's usage around each encode.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	src, err := startStream(ctx, w.Source)
	if err != nil {
		return nil, err
	}
	streams := []*stream{src}
	sim := framebuffer.New()
	var viewers []*tilesViewer
	// Baselines: one stream per throttled recording used, plus the
	// loopback one for the links that have none.
	baseByPath := map[string]*stream{}
	baseStream := func(path string, lag time.Duration) (*stream, error) {
		if bs, ok := baseByPath[path]; ok {
			return bs, nil
		}
		bs, err := startStream(ctx, path)
		if err != nil {
			return nil, err
		}
		bs.bs = &baseSource{v: bs.fb.Subscribe(), match: &matcher{lag: lag, res: newResult(w, Baseline, Link{})}}
		baseByPath[path] = bs
		streams = append(streams, bs)
		return bs, nil
	}
	for _, enc := range opts.Encoders {
		for _, l := range opts.Links {
			switch enc {
			case Baseline:
				path, throttled := w.Throttled[l.Name]
				lag := skewWindow
				if throttled {
					lag = time.Second + l.RTT/2
				} else {
					path = w.Baseline
				}
				bs, err := baseStream(path, lag)
				if err != nil {
					return nil, err
				}
				b := &baselineViewer{res: newResult(w, enc, l)}
				if throttled {
					b.res.BaselinePath = "recorded through the link"
				} else {
					b.emu = newEmulator(l)
					b.res.BaselinePath = "loopback recording replayed over the link"
					if l.Name == Profiles[0].Name {
						b.res.BaselinePath = "loopback recording"
					}
				}
				bs.bs.viewers = append(bs.bs.viewers, b)
			case TilesLossless, TilesLossy, TilesAdaptive:
				viewers = append(viewers, newTilesViewer(sim, w, enc, l, opts.JPEGQuality))
			default:
				return nil, fmt.Errorf("harness: unknown encoder %q", enc)
			}
		}
	}
	// ref mirrors the source picture as of the latest source frame. sim is
	// the framebuffer the tiles viewers watch: it gets each source frame
	// once the time of the frame after it is known, so a viewer's sends
	// between the two see the right picture.
	refV := src.fb.Subscribe()
	var ref framebuffer.Canvas
	var batch framebuffer.Batch
	var lastChange time.Duration
	sourceFrames := 0
	simT := time.Duration(-1) // time of the frame sim holds; -1: none yet
	advance := func(next time.Duration) error {
		if simT < 0 {
			return nil
		}
		for _, v := range viewers {
			if err := v.step(simT, next); err != nil {
				return fmt.Errorf("harness: %s %s %s: %w", w.Name, v.res.Encoder, v.res.Link, err)
			}
		}
		return nil
	}
	for _, s := range streams {
		s.next()
	}
	for {
		// Process the held frame with the earliest time; the source first
		// on a tie, so the baseline compares with the picture of its moment.
		var s *stream
		for _, c := range streams {
			if c.ok && (s == nil || c.cur.Ms < s.cur.Ms) {
				s = c
			}
		}
		if s == nil {
			break
		}
		f := s.cur
		t := ms(f.Ms)
		if s == src {
			u := refV.Take(&ref)
			sourceFrames++
			if !u.Empty() {
				lastChange = t
			}
			if err := advance(t); err != nil {
				return nil, err
			}
			for _, m := range u.Moves {
				batch.Move(m.Src, m.DstX, m.DstY)
			}
			for _, r := range u.Damage {
				batch.Damage(r)
			}
			if u.CursorChanged {
				sim.SetCursor(u.Cursor)
			}
			sim.Publish(&ref, &batch)
			simT = t
			if len(streams) > 1 {
				tp := newTimedPic(t, &ref) // shared, never modified
				for _, c := range streams[1:] {
					c.bs.match.source(tp)
				}
			}
		} else {
			bs := s.bs
			bs.v.Take(&bs.mirror)
			bs.match.baseline(t, &bs.mirror)
			for _, b := range bs.viewers {
				b.frame(t, f, &bs.mirror)
			}
		}
		s.release()
		s.next()
	}
	for _, s := range streams {
		if err := <-s.errc; err != nil {
			return nil, err
		}
	}
	if err := advance(time.Duration(math.MaxInt64)); err != nil {
		return nil, err
	}
	finalHash := hashCanvas(&ref)
	var out []Result
	for _, v := range viewers {
		out = append(out, v.finish(&ref, finalHash, lastChange))
	}
	var bout []Result
	for _, c := range streams[1:] {
		bs := c.bs
		bs.match.flush(time.Duration(math.MaxInt64))
		for _, b := range bs.viewers {
			b.qual.sumSSE, b.qual.samples = bs.match.q.sumSSE, bs.match.q.samples
			b.qual.sumSSIM, b.qual.frames = bs.match.q.sumSSIM, bs.match.q.frames
			b.res.MinPSNR = bs.match.res.MinPSNR
			bout = append(bout, b.finish(&bs.mirror, &ref, finalHash, lastChange))
		}
	}
	// Report baselines in link order.
	for _, l := range opts.Links {
		for _, r := range bout {
			if r.Link == l.Name {
				out = append(out, r)
			}
		}
	}
	for i := range out {
		out[i].SourceFrames = sourceFrames
	}
	return out, nil
}

func ms(v uint32) time.Duration { return time.Duration(v) * time.Millisecond }

func newResult(w Workload, enc string, l Link) *Result {
	return &Result{Workload: w.Name, Encoder: enc, Link: l.Name, MinPSNR: DB(math.Inf(1))}
}

// shown is one picture the browser showed and when it arrived.
type shown struct {
	at   time.Duration
	hash uint64
}

// quality accumulates the per-frame comparisons of a viewer.
type quality struct {
	sumSSE  float64
	samples int
	sumSSIM float64
	frames  int
	hist    []shown
}

// add records a delivered picture and compares it with the source.
func (q *quality) add(res *Result, got, want *framebuffer.Canvas, at time.Duration) {
	q.show(got, at)
	q.compare(res, got, want)
}

// show records that the browser showed got from time at.
func (q *quality) show(got *framebuffer.Canvas, at time.Duration) {
	q.hist = append(q.hist, shown{at, hashCanvas(got)})
}

// compare adds the comparison of got with the source picture want.
func (q *quality) compare(res *Result, got, want *framebuffer.Canvas) {
	s, n := sse(got, want)
	q.sumSSE += s
	q.samples += n
	q.frames++
	if s == 0 {
		q.sumSSIM++
	} else {
		q.sumSSIM += ssim(got, want)
		if p := DB(psnr(s / float64(n))); p < res.MinPSNR {
			res.MinPSNR = p
		}
	}
}

func (q *quality) finish(res *Result, got, final *framebuffer.Canvas, finalHash uint64, lastChange time.Duration) {
	if q.samples > 0 {
		res.PSNR = DB(psnr(q.sumSSE / float64(q.samples)))
		res.SSIM = q.sumSSIM / float64(q.frames)
	}
	s, n := sse(got, final)
	res.FinalPSNR = DB(psnr(s / float64(n)))
	res.FinalSSIM = 1
	if s != 0 {
		res.FinalSSIM = ssim(got, final)
	}
	res.LosslessAfterMs = -1
	if len(q.hist) > 0 {
		res.LastArrivalMs = float64(q.hist[len(q.hist)-1].at) / float64(time.Millisecond)
	}
	k := len(q.hist)
	for k > 0 && q.hist[k-1].hash == finalHash {
		k--
	}
	if k < len(q.hist) {
		res.LosslessAfterMs = max(0, float64(q.hist[k].at-lastChange)/float64(time.Millisecond))
	}
}

// wsHeader returns the WebSocket framing bytes of a server-to-client binary
// message of n bytes (no mask).
func wsHeader(n int) int {
	switch {
	case n < 126:
		return 2
	case n < 1<<16:
		return 4
	default:
		return 10
	}
}

// Frame pacing constants of server/ws.go and server/rate.go.
const (
	minFrameInterval = time.Second / 60
	maxFrameInterval = 250 * time.Millisecond
	refineDelay      = 300 * time.Millisecond
)

// tilesViewer simulates one WebSocket tiles viewer of the server: its
// framebuffer viewer, mirror, encoder, link and the browser's decoder.
type tilesViewer struct {
	res      *Result
	link     Link
	emu      *emulator
	v        *framebuffer.Viewer
	mirror   framebuffer.Canvas
	enc      *tiles.Encoder
	dec      *tilestest.Decoder
	q        tiles.Quality
	adaptive bool

	dirty     bool
	sentAny   bool
	lastSend  time.Duration
	lastBytes int
	frameNo   uint32
	buf       []byte
	cpu       time.Duration
	qual      quality
}

func newTilesViewer(fb *framebuffer.Framebuffer, w Workload, enc string, l Link, jpegQ int) *tilesViewer {
	v := &tilesViewer{
		res: newResult(w, enc, l), link: l, emu: newEmulator(l),
		v: fb.Subscribe(), enc: tiles.NewEncoder(), dec: tilestest.NewDecoder(),
	}
	switch enc {
	case TilesLossy:
		v.q = tiles.Quality{Lossy: true, JPEG: jpegQ}
	case TilesAdaptive:
		v.adaptive = true
		v.q = adaptiveQuality(l.Bitrate / 8)
	}
	return v
}

// adaptiveQuality is server/rate.go's choice of quality for a goodput in
// bytes per second (the harness gives it the link's true rate).
func adaptiveQuality(bw float64) tiles.Quality {
	switch {
	case bw > 6<<20:
		return tiles.Quality{}
	case bw > 2<<20:
		return tiles.Quality{Lossy: true, JPEG: 80}
	case bw > 512<<10:
		return tiles.Quality{Lossy: true, JPEG: 65}
	default:
		return tiles.Quality{Lossy: true, JPEG: 45}
	}
}

// interval is the least time between frame starts.
func (v *tilesViewer) interval() time.Duration {
	if !v.adaptive {
		return minFrameInterval
	}
	d := time.Duration(float64(v.lastBytes) / (v.link.Bitrate / 8) * float64(time.Second))
	return min(max(d, minFrameInterval), maxFrameInterval)
}

// step handles a source frame published at t that stays current until
// next: the viewer sends whenever its link has drained and its interval
// has passed, latest wins.
func (v *tilesViewer) step(t, next time.Duration) error {
	v.dirty = true
	for {
		at := max(t, v.emu.drained())
		if v.sentAny {
			at = max(at, v.lastSend+v.interval())
		}
		refine := false
		if !v.dirty {
			if !v.adaptive || !v.enc.Lossy() {
				return nil
			}
			at = max(at, v.lastSend+refineDelay)
			refine = true
		}
		if at >= next {
			return nil
		}
		if err := v.send(at, refine); err != nil {
			return err
		}
	}
}

// send takes what changed and encodes it as server/ws.go's sendFrame does,
// puts it on the link and lets the browser decode it.
func (v *tilesViewer) send(at time.Duration, refine bool) error {
	v.dirty = false
	c0 := threadCPU()
	u := v.v.Take(&v.mirror)
	if u.Empty() && !refine {
		return nil
	}
	buf := v.buf[:0]
	var rects []framebuffer.Rect
	if u.Resized {
		buf = tiles.AppendResize(buf, u.Width, u.Height)
		v.enc.ForgetLossy()
		rects = []framebuffer.Rect{{W: u.Width, H: u.Height}}
	} else {
		for _, m := range u.Moves {
			buf = tiles.AppendCopy(buf, m)
			v.enc.Moved(m)
		}
		rects = u.Damage
	}
	if u.CursorChanged {
		buf = tiles.AppendCursor(buf, u.Cursor)
	}
	q := v.q
	lossyFrom := len(rects)
	if refine || !q.Lossy {
		rects = v.enc.LossyRects(rects)
	}
	var err error
	for i, r := range rects {
		if i == lossyFrom {
			q = tiles.Quality{}
		}
		if buf, err = v.enc.Encode(buf, &v.mirror, r, q); err != nil {
			return err
		}
	}
	v.frameNo++
	buf = tiles.AppendFrameEnd(buf, v.frameNo, uint32(at/time.Millisecond))
	v.cpu += threadCPU() - c0
	v.buf = buf
	n := len(buf) + wsHeader(len(buf))
	arrive := v.emu.send(at, n)
	v.res.WireBytes += int64(n)
	v.res.Frames++
	v.sentAny, v.lastSend, v.lastBytes = true, at, n
	if _, err := v.dec.Apply(buf); err != nil {
		return fmt.Errorf("browser decode: %w", err)
	}
	v.qual.add(v.res, &v.dec.Canvas, &v.mirror, arrive)
	return nil
}

func (v *tilesViewer) finish(final *framebuffer.Canvas, finalHash uint64, lastChange time.Duration) Result {
	v.v.Close()
	if v.res.Frames > 0 {
		v.res.CPUPerFrameUs = float64(v.cpu) / float64(time.Microsecond) / float64(v.res.Frames)
	}
	v.res.LostSegments = v.emu.lost
	v.qual.finish(v.res, &v.dec.Canvas, final, finalHash, lastChange)
	return *v.res
}

// baselineViewer follows a noVNC-defaults recording. A recording made
// through the link's emulated path (emu nil) already holds what the server
// sent over that link and when it arrived. Otherwise the loopback
// recording is replayed over the emulator: every byte is delivered in order
// (the server already sent it), which overstates the baseline's bytes on
// slow links, where a real server would have merged updates.
type baselineViewer struct {
	res    *Result
	emu    *emulator
	offset int64
	qual   quality
}

func (b *baselineViewer) frame(t time.Duration, f fbs.Frame, pic *framebuffer.Canvas) {
	n := int(f.Offset - b.offset)
	b.offset = f.Offset
	n += wsHeader(n)
	arrive := t // a throttled recording's times are arrival times
	if b.emu != nil {
		arrive = b.emu.send(t, n)
	}
	b.res.WireBytes += int64(n)
	b.res.Frames++
	b.qual.show(pic, arrive)
}

// skewWindow is how far apart in time the recordings of a workload may
// show the same picture: the connections get their updates at slightly
// different moments, so each baseline picture is compared with the
// best-matching source picture from skewWindow after it back to its
// matcher's lag before it (skewWindow on loopback; one second plus the
// one-way delay through a throttled link, whose pictures arrive late).
// Only lateness beyond that counts as error.
const skewWindow = 250 * time.Millisecond

// maxRing bounds the source pictures a matcher keeps (3 MB each at
// 1024×768).
const maxRing = 48

type timedPic struct {
	t    time.Duration
	pic  *framebuffer.Canvas
	rows []uint64 // hash of each row, to skip equal rows cheaply
}

func newTimedPic(t time.Duration, pic *framebuffer.Canvas) timedPic {
	c := pic.Clone()
	return timedPic{t, c, rowHashes(c)}
}

// matcher compares the baseline's pictures with the source's, allowing for
// the skew between the two recordings.
type matcher struct {
	lag     time.Duration // how far back a baseline picture may match
	res     *Result
	q       quality
	ring    []timedPic // source pictures, oldest first
	pending []timedPic // baseline pictures waiting for later source ones
}

func (m *matcher) source(tp timedPic) {
	if len(m.ring) >= maxRing {
		m.ring = m.ring[1:]
	}
	m.ring = append(m.ring, tp)
	m.flush(tp.t)
}

func (m *matcher) baseline(t time.Duration, pic *framebuffer.Canvas) {
	m.pending = append(m.pending, newTimedPic(t, pic))
}

// flush compares the baseline pictures whose window the source has passed
// by time now and forgets source pictures no window needs any more.
func (m *matcher) flush(now time.Duration) {
	for len(m.pending) > 0 && (now == time.Duration(math.MaxInt64) || m.pending[0].t+skewWindow <= now) {
		p := m.pending[0]
		m.pending = m.pending[1:]
		// Candidates: the source picture current when the window opens and
		// every later one up to its end, tried nearest in time first so
		// that the bound prunes the rest early.
		var cand []int
		for i, s := range m.ring {
			if s.t > p.t+skewWindow {
				break
			}
			if s.t < p.t-m.lag && i+1 < len(m.ring) && m.ring[i+1].t <= p.t-m.lag {
				continue // superseded before the window opened
			}
			cand = append(cand, i)
		}
		dist := func(i int) time.Duration {
			d := m.ring[i].t - p.t
			return max(d, -d)
		}
		sort.Slice(cand, func(a, b int) bool { return dist(cand[a]) < dist(cand[b]) })
		var best *framebuffer.Canvas
		bestSSE := math.Inf(1)
		for _, i := range cand {
			s := m.ring[i]
			if e := sseRows(p.pic, s.pic, p.rows, s.rows, bestSSE); e < bestSSE {
				best, bestSSE = s.pic, e
			}
		}
		if best != nil {
			m.q.compare(m.res, p.pic, best)
		}
	}
	// Keep the source picture current at the oldest window's start.
	from := now - m.lag
	if len(m.pending) > 0 {
		from = m.pending[0].t - m.lag
	}
	k := 0
	for k+1 < len(m.ring) && m.ring[k+1].t <= from {
		k++
	}
	m.ring = m.ring[k:]
}

func (b *baselineViewer) finish(pic, final *framebuffer.Canvas, finalHash uint64, lastChange time.Duration) Result {
	if b.emu != nil {
		b.res.LostSegments = b.emu.lost
	}
	b.qual.finish(b.res, pic, final, finalHash, lastChange)
	return *b.res
}
