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
	"slices"
	"sort"
	"strings"
	"time"

	"kvmgate/bench/fbs"
	"kvmgate/encoders/ratectl"
	"kvmgate/encoders/tiles"
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
	// TilesPaced is TilesAdaptive with encoders/pacing's refinement: once
	// the screen is quiet, lossily sent areas are refined in pieces that
	// take the link about 100 ms each, sent back to back, with new updates
	// going first.
	TilesPaced = "tiles-paced"
	// TilesServer is server/ws.go's tiles sender with only what the server
	// knows: at most two frames unacknowledged, quality and frame interval
	// from server/rate.go's controller fed with acks, paced refinement once
	// a goodput is measured (server/pacing.go). In-process emulator only.
	TilesServer = "tiles-server"
	// VideoH264 and VideoVP8 are WebSocket video (server/video.go) with
	// encoders/video's openh264 and libvpx encoders at 80% of the link's
	// rate, refined by a high-quality keyframe when the screen goes quiet.
	// They need the build tags openh264 and libvpx; without them they are
	// reported as unavailable.
	VideoH264 = "video-h264"
	VideoVP8  = "video-vp8"
	// Auto is server/auto.go's transport=auto: tiles as TilesPaced and
	// video with the codec the server picks (VP8, else H.264), switched
	// by the server's activity rules (encoders/autoswitch).
	Auto = "auto"
	// Baseline is websockify+noVNC: the server's own Tight/ZRLE bytes at
	// noVNC's default settings, passed through.
	Baseline = "novnc-baseline"
)

// Encoders lists every configuration in report order.
var Encoders = []string{TilesLossless, TilesLossy, TilesAdaptive, TilesPaced, TilesServer, VideoH264, VideoVP8, Auto, Baseline}

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
	// Emulator is EmulatorInProc (default) or EmulatorTC. With tc every
	// tiles and video viewer runs on its own in real time over its own
	// tbf-shaped veth pair; the baseline always uses the in-process one.
	Emulator string
	// NoKeys turns off the key-to-screen latency probes.
	NoKeys bool
}

// Result is one workload × encoder × link measurement.
type Result struct {
	Workload string `json:"workload"`
	Encoder  string `json:"encoder"`
	Link     string `json:"link"`
	// Emulator is the link emulator the figures come from.
	Emulator string `json:"emulator"`
	// Unavailable says why the configuration could not run (a video codec
	// not compiled in); the figures are then zero.
	Unavailable string `json:"unavailable,omitempty"`
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
	// KeysSent and KeysSeen count the probe's keys and those whose echo
	// reached the browser; KeyP50Ms and KeyP95Ms are the median and 95th
	// percentile key-to-screen latency (a key never echoed counts as
	// infinite).
	KeysSent int `json:"keys_sent,omitempty"`
	KeysSeen int `json:"keys_seen,omitempty"`
	KeyP50Ms Ms  `json:"key_p50_ms,omitempty"`
	KeyP95Ms Ms  `json:"key_p95_ms,omitempty"`
	// AgeP50Ms and AgeP95Ms are the frames' ages at arrival (from the
	// moment the sender took the picture); AgeSlope is the least-squares
	// slope of the age against time: above 0 a backlog grows.
	AgeP50Ms float64 `json:"age_p50_ms,omitempty"`
	AgeP95Ms float64 `json:"age_p95_ms,omitempty"`
	AgeSlope float64 `json:"age_slope,omitempty"`
	// ActiveKbps is the bitrate of the frames taken while the source was
	// changing, over that span.
	ActiveKbps float64 `json:"active_kbps,omitempty"`
	// Switches counts Auto's transport switches; SwitchAtMs are their
	// times after the source's first change, alternately to video and
	// back to tiles; SourceSpanMs is the time from the source's first
	// change to its last.
	Switches     int       `json:"switches,omitempty"`
	SwitchAtMs   []float64 `json:"switch_at_ms,omitempty"`
	SourceSpanMs float64   `json:"source_span_ms,omitempty"`
	// BaselinePath says, for the baseline, whether its recording was made
	// through the link or on loopback and replayed over it.
	BaselinePath string `json:"baseline_path,omitempty"`
}

// Ms is a duration in milliseconds that may be +Inf; JSON writes +Inf as
// the string "inf".
type Ms float64

// MarshalJSON writes +Inf as "inf".
func (m Ms) MarshalJSON() ([]byte, error) {
	if math.IsInf(float64(m), 1) {
		return []byte(`"inf"`), nil
	}
	return []byte(fmt.Sprintf("%.1f", float64(m))), nil
}

func (m Ms) String() string {
	if math.IsInf(float64(m), 1) {
		return "inf"
	}
	return fmt.Sprintf("%.0f", float64(m))
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
	ctx    context.Context
	end    time.Duration // the recording's last block
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
	s := &stream{fb: framebuffer.New(), frames: make(chan fbs.Frame), cont: make(chan struct{}), errc: make(chan error, 1), ctx: ctx}
	if len(blocks) > 0 {
		s.end = ms(blocks[len(blocks)-1].Ms)
	}
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
	select {
	case s.cont <- struct{}{}:
	case <-s.ctx.Done(): // the replay has stopped
	}
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
	switch opts.Emulator {
	case "", EmulatorInProc:
		opts.Emulator = EmulatorInProc
		return run(ctx, w, opts, false)
	case EmulatorTC:
		return runTC(ctx, w, opts)
	}
	return nil, fmt.Errorf("harness: unknown emulator %q", opts.Emulator)
}

// runTC runs each tiles and video viewer alone in real time over its own
// tc link, its key probe in a second pass, and the baselines in one pass
// of the in-process emulator.
func runTC(ctx context.Context, w Workload, opts Options) ([]Result, error) {
	var out []Result
	var base []string
	for _, enc := range opts.Encoders {
		if enc == Baseline {
			base = append(base, enc)
			continue
		}
		for _, l := range opts.Links {
			one := opts
			one.Encoders, one.Links = []string{enc}, []Link{l}
			rs, err := run(ctx, w, one, false)
			if err != nil {
				return nil, err
			}
			if !opts.NoKeys && len(rs) == 1 && rs[0].Unavailable == "" {
				ps, err := run(ctx, w, one, true)
				if err != nil {
					return nil, err
				}
				mergeKeys(rs, ps)
			}
			out = append(out, rs...)
		}
	}
	if len(base) > 0 {
		one := opts
		one.Encoders, one.Emulator = base, EmulatorInProc
		rs, err := run(ctx, w, one, false)
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
	}
	return out, nil
}

// mergeKeys copies the key figures of probe results into the results of
// the same encoder and link.
func mergeKeys(rs, probes []Result) {
	for _, p := range probes {
		for i := range rs {
			if rs[i].Encoder == p.Encoder && rs[i].Link == p.Link {
				rs[i].KeysSent, rs[i].KeysSeen = p.KeysSent, p.KeysSeen
				rs[i].KeyP50Ms, rs[i].KeyP95Ms = p.KeyP50Ms, p.KeyP95Ms
			}
		}
	}
}

// group is a framebuffer that tiles and video viewers watch, fed with the
// source pictures; a probe group also paints the key echoes of one link
// into its own copy of the picture.
type group struct {
	sim     *framebuffer.Framebuffer
	simT    time.Duration // time of the picture sim holds; -1: none yet
	viewers []*sender
	// Probe groups only:
	pc   *framebuffer.Canvas // the source picture plus the echo
	keys []keyEvent
	next int // the next key to echo
	echo int // the key number shown, 0: none
}

func (g *group) advance(next time.Duration) error {
	if g.simT < 0 {
		return nil
	}
	for _, v := range g.viewers {
		if err := v.step(g.simT, next); err != nil {
			return fmt.Errorf("harness: %s %s %s: %w", v.res.Workload, v.res.Encoder, v.res.Link, err)
		}
	}
	return nil
}

// publish gives the group the source picture ref after update u.
func (g *group) publish(t time.Duration, ref *framebuffer.Canvas, u *framebuffer.Update) {
	var b framebuffer.Batch
	for _, m := range u.Moves {
		b.Move(m.Src, m.DstX, m.DstY)
	}
	for _, r := range u.Damage {
		b.Damage(r)
	}
	if u.CursorChanged {
		g.sim.SetCursor(u.Cursor)
	}
	g.simT = t
	if g.pc == nil {
		g.sim.Publish(ref, &b)
		return
	}
	if g.pc.W != ref.W || g.pc.H != ref.H {
		g.pc.Resize(ref.W, ref.H)
		g.pc.CopyFrom(ref, ref.Bounds())
		if g.echo > 0 {
			paintEcho(g.pc, g.echo)
		}
		g.sim.Publish(g.pc, &b)
		return
	}
	cell := echoRect(ref.W, ref.H)
	bounds := ref.Bounds()
	repaint := false
	for _, m := range u.Moves {
		g.pc.CopyFrom(ref, m.Dst().Intersect(bounds))
		repaint = repaint || m.Dst().Overlaps(cell)
		if m.Src.Overlaps(cell) {
			// The echo moved with the copy in the browser's picture but
			// not in the source's: repaint where it landed.
			b.Damage(framebuffer.Rect{X: cell.X + m.DstX - m.Src.X, Y: cell.Y + m.DstY - m.Src.Y, W: cell.W, H: cell.H}.Intersect(bounds))
		}
	}
	for _, r := range u.Damage {
		g.pc.CopyFrom(ref, r.Intersect(bounds))
		repaint = repaint || r.Overlaps(cell)
	}
	if repaint && g.echo > 0 {
		paintEcho(g.pc, g.echo)
		b.Damage(cell)
	}
	g.sim.Publish(g.pc, &b)
}

// echoKeys paints the echo of every key that reaches the server before t,
// letting the viewers send in between.
func (g *group) echoKeys(t time.Duration) error {
	for g.simT >= 0 && g.next < len(g.keys) && g.keys[g.next].arrive < t {
		at := max(g.keys[g.next].arrive, g.simT)
		if err := g.advance(at); err != nil {
			return err
		}
		g.next++
		g.echo = g.next
		paintEcho(g.pc, g.echo)
		var b framebuffer.Batch
		b.Damage(echoRect(g.pc.W, g.pc.H))
		g.sim.Publish(g.pc, &b)
		g.simT = at
	}
	return nil
}

// newSender returns a viewer of enc on link l watching g, or an
// unavailable result.
func newSender(g *group, w Workload, enc string, l Link, opts Options) (*sender, *Result, error) {
	res := newResult(w, enc, l)
	res.Emulator = opts.Emulator
	var codec frameCodec
	switch enc {
	case TilesLossless, TilesLossy, TilesAdaptive, TilesPaced:
		codec = newTilesCodec(enc, opts.JPEGQuality)
	case TilesServer:
		if opts.Emulator == EmulatorTC {
			res.Unavailable = "in-process emulator only (acks need arrival times as frames go)"
			return nil, res, nil
		}
		codec = newTilesCodec(enc, opts.JPEGQuality)
	case VideoH264, VideoVP8:
		if err := videoAvailable(enc); err != nil {
			res.Unavailable = err.Error()
			return nil, res, nil
		}
		vc, err := newVideoCodec(videoCodecName(enc))
		if err != nil {
			return nil, nil, err
		}
		codec = vc
	case Auto:
		if autoVideoCodec() == "" {
			res.Unavailable = "no video codec built in"
			return nil, res, nil
		}
		ac, err := newAutoCodec(opts.JPEGQuality)
		if err != nil {
			return nil, nil, err
		}
		codec = ac
	default:
		return nil, nil, fmt.Errorf("harness: unknown encoder %q", enc)
	}
	var emu linkEmulator = newEmulator(l)
	if opts.Emulator == EmulatorTC {
		var err error
		if emu, err = newTCEmulator(l); err != nil {
			codec.close()
			return nil, nil, err
		}
	}
	v := &sender{res: res, link: l, emu: emu, v: g.sim.Subscribe(), codec: codec}
	if enc == TilesServer {
		v.acks = &acker{rate: ratectl.New(), rtt: l.RTT}
	}
	return v, res, nil
}

// run measures one workload for every encoder and link of opts; with
// probesOnly it runs only the key probes (for the tc emulator, where each
// viewer runs alone).
func run(ctx context.Context, w Workload, opts Options, probesOnly bool) (_ []Result, err error) {
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
	main := &group{sim: framebuffer.New(), simT: -1}
	groups := []*group{main}
	probeGroups := map[string]*group{}
	var all []*sender // every sender, closed on the way out
	defer func() {
		for _, v := range all {
			if a, ok := v.emu.(interface{ abort() }); ok && err != nil {
				a.abort() // failed: do not wait for a slow link to drain
			}
			if cerr := v.emu.close(); cerr != nil && err == nil {
				err = cerr
			}
		}
	}()
	var unavailable []Result
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
			if enc == Baseline {
				if probesOnly {
					continue
				}
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
				b.res.Emulator = EmulatorInProc
				if throttled {
					b.res.BaselinePath = "recorded through the link"
					b.res.Emulator = "relay (recording)"
				} else {
					b.emu = newEmulator(l)
					b.res.BaselinePath = "loopback recording replayed over the link"
					if l.Name == Profiles[0].Name {
						b.res.BaselinePath = "loopback recording"
					}
				}
				bs.bs.viewers = append(bs.bs.viewers, b)
				continue
			}
			if !probesOnly {
				v, res, err := newSender(main, w, enc, l, opts)
				if err != nil {
					return nil, err
				}
				if v == nil {
					unavailable = append(unavailable, *res)
					continue
				}
				all = append(all, v)
				main.viewers = append(main.viewers, v)
			}
			// Key probes run alongside in virtual time; in real time (tc)
			// each viewer runs alone, so its probe gets a pass of its own.
			if opts.NoKeys || (opts.Emulator == EmulatorTC && !probesOnly) {
				continue
			}
			pg := probeGroups[l.Name]
			if pg == nil {
				pg = &group{sim: framebuffer.New(), simT: -1, pc: &framebuffer.Canvas{}, keys: keySchedule(l, src.end)}
				probeGroups[l.Name] = pg
				groups = append(groups, pg)
			}
			p, _, err := newSender(pg, w, enc, l, opts)
			if err != nil {
				return nil, err
			}
			if p == nil {
				continue
			}
			p.probe = newKeyProbe(pg.keys)
			all = append(all, p)
			pg.viewers = append(pg.viewers, p)
		}
	}
	// ref mirrors the source picture as of the latest source frame. Each
	// group's framebuffer gets each source frame once the time of the frame
	// after it is known, so a viewer's sends between the two see the right
	// picture.
	refV := src.fb.Subscribe()
	var ref framebuffer.Canvas
	firstChange, lastChange := time.Duration(-1), time.Duration(0)
	sourceFrames := 0
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
				if firstChange < 0 {
					firstChange = t
				}
			}
			for _, g := range groups {
				if g.pc != nil {
					if err := g.echoKeys(t); err != nil {
						return nil, err
					}
				}
				if err := g.advance(t); err != nil {
					return nil, err
				}
				g.publish(t, &ref, &u)
			}
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
	for _, g := range groups {
		if g.pc != nil {
			if err := g.echoKeys(maxTime); err != nil {
				return nil, err
			}
		}
		if err := g.advance(maxTime); err != nil {
			return nil, err
		}
	}
	finalHash := hashCanvas(&ref)
	var out, probes []Result
	for _, g := range groups {
		for _, v := range g.viewers {
			r, err := v.finish(&ref, finalHash, max(firstChange, 0), lastChange)
			if err != nil {
				return nil, err
			}
			if v.probe != nil {
				probes = append(probes, r)
			} else {
				out = append(out, r)
			}
		}
	}
	if probesOnly {
		return probes, nil
	}
	mergeKeys(out, probes)
	out = append(out, unavailable...)
	var bout []Result
	for _, c := range streams[1:] {
		bs := c.bs
		bs.match.flush(maxTime)
		for _, b := range bs.viewers {
			b.qual.sumSSE, b.qual.samples = bs.match.q.sumSSE, bs.match.q.samples
			b.qual.sumSSIM, b.qual.frames = bs.match.q.sumSSIM, bs.match.q.frames
			b.res.MinPSNR = bs.match.res.MinPSNR
			bout = append(bout, b.finish(&bs.mirror, &ref, finalHash, lastChange))
		}
	}
	out = append(out, bout...)
	// Report in encoder order, then link order.
	rank := func(r Result) int {
		e := slices.Index(opts.Encoders, r.Encoder)
		l := slices.IndexFunc(opts.Links, func(l Link) bool { return l.Name == r.Link })
		return e*len(opts.Links) + l
	}
	sort.SliceStable(out, func(i, j int) bool { return rank(out[i]) < rank(out[j]) })
	for i := range out {
		out[i].SourceFrames = sourceFrames
	}
	return out, nil
}

func ms(v uint32) time.Duration { return time.Duration(v) * time.Millisecond }

func newResult(w Workload, enc string, l Link) *Result {
	return &Result{Workload: w.Name, Encoder: enc, Link: l.Name, MinPSNR: DB(math.Inf(1))}
}

// shown is one picture the browser showed and when it arrived: at, or
// once the link is closed the arrival of message id (id -1: at is known).
type shown struct {
	at   time.Duration
	id   int
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

// show records that the browser showed got from time at.
func (q *quality) show(got *framebuffer.Canvas, at time.Duration) {
	q.hist = append(q.hist, shown{at, -1, hashCanvas(got)})
}

// addID is add for a picture that arrives with link message id.
func (q *quality) addID(res *Result, got, want *framebuffer.Canvas, id int) {
	q.hist = append(q.hist, shown{0, id, hashCanvas(got)})
	q.compare(res, got, want)
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
		arrive = b.emu.arrival(b.emu.send(t, n))
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
		b.res.LostSegments = b.emu.lostSegments()
	}
	b.qual.finish(b.res, pic, final, finalHash, lastChange)
	return *b.res
}
