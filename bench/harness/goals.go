package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"text/tabwriter"
	"time"

	"kvmgate/bench/fbs"
	"kvmgate/framebuffer"
)

// Legibility is the result of the full-screen legibility scenario: a
// 1024×768 console screen full of text replaced by another one, sent over
// a link by one viewer.
type Legibility struct {
	Encoder  string `json:"encoder"`
	Link     string `json:"link"`
	Emulator string `json:"emulator"`
	// FirstMs is how long the first screen took to become exact in the
	// browser from the connection's first frame; ChangeMs how long the
	// second took from the moment it replaced the first: the goal's
	// figure. -1: never.
	FirstMs  float64 `json:"first_ms"`
	ChangeMs float64 `json:"change_ms"`
	// ChangeBytes is what the second screen cost on the wire.
	ChangeBytes int64 `json:"change_bytes"`
	// CellsAt2s is the share of the second screen's 9×16 text cells that
	// were exact in the browser 2 s after the change.
	CellsAt2s float64 `json:"cells_at_2s"`
}

// ErrUnavailable reports a configuration this build or emulator cannot run.
var ErrUnavailable = errors.New("harness: configuration unavailable")

// Text cell size of the VGA text console the screens are made of.
const cellW, cellH = 9, 16

// textScreens returns two 1024×768 screens of text cut from the last
// picture of a VGA text console recording (720×400, 80×25 cells of 9×16):
// every cell of a screen is a cell of the recording picked at random
// (fixed seeds), so the screens hold the recording's glyphs, blanks
// included, at their frequency but in an order no compressor has seen:
// harder than real text, whose words and lines repeat. They are like a
// framebuffer console of 113×48 cells; the 7 pixels right of the last
// column are black.
func textScreens(ctx context.Context, path string) ([2]*framebuffer.Canvas, error) {
	var out [2]*framebuffer.Canvas
	blocks, err := fbs.ReadFile(path)
	if err != nil {
		return out, err
	}
	m, err := fbs.ReadMeta(path)
	if err != nil {
		return out, err
	}
	fb := framebuffer.New()
	if err := fbs.Replay(ctx, blocks, m, fb, func(fbs.Frame) error { return nil }); err != nil {
		return out, err
	}
	src := fb.Snapshot()
	if src.W < 80*cellW || src.H < 25*cellH {
		return out, fmt.Errorf("harness: %s is %dx%d, not an 80×25 VGA text console", path, src.W, src.H)
	}
	for k := range out {
		c, err := framebuffer.NewCanvas(1024, 768)
		if err != nil {
			return out, err
		}
		c.Fill(c.Bounds(), 0xff000000)
		rng := rand.New(rand.NewPCG(uint64(k), 6))
		for r := 0; r < 768/cellH; r++ {
			for col := 0; col < 1024/cellW; col++ {
				sr, sc := rng.IntN(25), rng.IntN(80)
				for y := range cellH {
					copy(c.Row(col*cellW, r*cellH+y, cellW), src.Row(sc*cellW, sr*cellH+y, cellW))
				}
			}
		}
		out[k] = c
	}
	return out, nil
}

// legibilityChangeAt is when the second screen replaces the first.
const legibilityChangeAt = 20 * time.Second

// RunLegibility runs the legibility scenario for enc over l: the first
// screen at time 0, the second at 20 s, each published whole as a console
// repaint would be. consolePath is a VGA text console recording
// (bench/testdata/linux-console.fbs.gz) whose glyphs the screens use.
func RunLegibility(ctx context.Context, consolePath, enc string, l Link, opts Options) (Legibility, error) {
	if opts.Emulator == "" {
		opts.Emulator = EmulatorInProc
	}
	if opts.JPEGQuality == 0 {
		opts.JPEGQuality = 70
	}
	res := Legibility{Encoder: enc, Link: l.Name, Emulator: opts.Emulator, FirstMs: -1, ChangeMs: -1}
	screens, err := textScreens(ctx, consolePath)
	if err != nil {
		return res, err
	}
	g := &group{sim: framebuffer.New(), simT: -1}
	v, r, err := newSender(g, Workload{Name: "legibility"}, enc, l, opts)
	if err != nil {
		return res, err
	}
	if v == nil {
		return res, fmt.Errorf("%w: %s: %s", ErrUnavailable, enc, r.Unavailable)
	}
	var b framebuffer.Batch
	b.Damage(screens[0].Bounds())
	g.sim.Publish(screens[0], &b)
	if err := v.step(0, legibilityChangeAt); err != nil {
		v.emu.close()
		return res, err
	}
	bytesBefore := v.res.WireBytes
	b.Damage(screens[1].Bounds())
	g.sim.Publish(screens[1], &b)
	// The cells exact 2 s after the change: the browser's picture of the
	// last frame sent before then is checked once arrivals are known, so
	// keep the pictures of the frames sent in that window.
	type snap struct {
		hist int
		pic  *framebuffer.Canvas
	}
	var snaps []snap
	probe := func() {
		snaps = append(snaps, snap{len(v.qual.hist) - 1, v.codec.picture().Clone()})
	}
	for t := legibilityChangeAt; t < legibilityChangeAt+2*time.Second; t += 50 * time.Millisecond {
		n := len(v.qual.hist)
		if err := v.step(t, t+50*time.Millisecond); err != nil {
			v.emu.close()
			return res, err
		}
		v.dirty = false
		if len(v.qual.hist) > n {
			probe()
		}
	}
	if err := v.step(legibilityChangeAt+2*time.Second, maxTime); err != nil {
		v.emu.close()
		return res, err
	}
	h1 := hashCanvas(screens[1])
	if _, err := v.finish(screens[1], h1, 0, legibilityChangeAt); err != nil {
		return res, err
	}
	res.ChangeBytes = v.res.WireBytes - bytesBefore
	h0 := hashCanvas(screens[0])
	for _, s := range v.qual.hist {
		if s.hash == h0 && res.FirstMs < 0 {
			res.FirstMs = float64(s.at) / float64(time.Millisecond)
		}
		if s.hash == h1 && res.ChangeMs < 0 {
			res.ChangeMs = float64(s.at-legibilityChangeAt) / float64(time.Millisecond)
		}
	}
	// The share of exact cells in the last picture that arrived by 2 s.
	deadline := legibilityChangeAt + 2*time.Second
	var pic *framebuffer.Canvas
	for _, s := range snaps {
		if v.qual.hist[s.hist].at <= deadline {
			pic = s.pic
		}
	}
	if res.ChangeMs >= 0 && res.ChangeMs <= 2000 {
		res.CellsAt2s = 1
	} else if pic != nil {
		res.CellsAt2s = exactCells(pic, screens[1])
	}
	return res, nil
}

// exactCells returns the share of 9×16 cells of want that got shows
// exactly.
func exactCells(got, want *framebuffer.Canvas) float64 {
	if got.W != want.W || got.H != want.H {
		return 0
	}
	n, ok := 0, 0
	for r := 0; r+cellH <= want.H; r += cellH {
		for c := 0; c+cellW <= want.W; c += cellW {
			n++
			same := true
			for y := range cellH {
				if string(got.Row(c, r+y, cellW)) != string(want.Row(c, r+y, cellW)) {
					same = false
					break
				}
			}
			if same {
				ok++
			}
		}
	}
	return float64(ok) / float64(n)
}

// Goal is one line of the issue-6 scoreboard.
type Goal struct {
	Goal     string `json:"goal"`
	Subject  string `json:"subject"`
	Measured string `json:"measured"`
	Target   string `json:"target"`
	Pass     bool   `json:"pass"`
}

// textWorkloads are the workloads the text-console goals apply to.
var textWorkloads = []string{"seabios", "linux-console", "xterm-desktop"}

// motionWorkloads are the workloads the motion goal applies to.
var motionWorkloads = []string{"photo-motion"}

// Goals checks the issue-6 goals against results (and legibility runs):
// text consoles at most 0.5× noVNC's bytes losslessly; on the poor link
// key echo within RTT + 100 ms (median), a full 1024×768 text screen
// exact within 2 s, no growing backlog (frame age neither trending up nor
// above 1 s at the 95th percentile); on motion workloads a bitrate within
// the link's rate at PSNR ≥ 30 dB. Goals without results are left
// out.
func Goals(rs []Result, leg []Legibility) []Goal {
	var gs []Goal
	poor, _ := ProfileByName(PoorLink)
	find := func(w, enc, link string) (Result, bool) {
		for _, r := range rs {
			if r.Workload == w && r.Encoder == enc && r.Link == link && r.Unavailable == "" {
				return r, true
			}
		}
		return Result{}, false
	}
	for _, link := range []string{Profiles[0].Name, PoorLink} {
		for _, w := range textWorkloads {
			r, ok := find(w, TilesLossless, link)
			b, okb := find(w, Baseline, link)
			if !ok || !okb || b.WireBytes == 0 {
				continue
			}
			x := float64(r.WireBytes) / float64(b.WireBytes)
			gs = append(gs, Goal{"text bytes vs noVNC, lossless", w + " " + TilesLossless + " " + link,
				fmt.Sprintf("%.2f×", x), "≤ 0.50×", x <= 0.5})
		}
	}
	keyTarget := float64(poor.RTT/time.Millisecond) + 100
	for _, w := range textWorkloads {
		for _, enc := range []string{TilesServer, TilesAdaptive, TilesPaced, TilesLossless, VideoH264, VideoVP8} {
			r, ok := find(w, enc, PoorLink)
			if !ok || r.KeysSent == 0 {
				continue
			}
			gs = append(gs, Goal{"poor link: key echo median", w + " " + enc,
				fmt.Sprintf("%s ms (p95 %s, %d/%d echoed)", r.KeyP50Ms, r.KeyP95Ms, r.KeysSeen, r.KeysSent),
				fmt.Sprintf("≤ %.0f ms", keyTarget), float64(r.KeyP50Ms) <= keyTarget})
		}
	}
	for _, l := range leg {
		if l.Link != PoorLink {
			continue
		}
		m := "never"
		if l.ChangeMs >= 0 {
			m = fmt.Sprintf("%.0f ms (%.1f KiB; %.0f%% of cells at 2 s)", l.ChangeMs, float64(l.ChangeBytes)/1024, l.CellsAt2s*100)
		}
		gs = append(gs, Goal{"poor link: 1024×768 text screen exact", l.Encoder + " (" + l.Emulator + ")", m, "≤ 2000 ms",
			l.ChangeMs >= 0 && l.ChangeMs <= 2000})
	}
	for _, w := range append(slices.Clone(textWorkloads), motionWorkloads...) {
		for _, enc := range []string{TilesServer, TilesAdaptive, TilesPaced, VideoH264, VideoVP8} {
			r, ok := find(w, enc, PoorLink)
			if !ok {
				continue
			}
			gs = append(gs, Goal{"poor link: no growing backlog", w + " " + enc,
				fmt.Sprintf("age slope %+.3f, p95 %.0f ms", r.AgeSlope, r.AgeP95Ms), "slope ≤ +0.05, p95 ≤ 1 s",
				r.AgeSlope <= 0.05 && r.AgeP95Ms <= 1000})
		}
	}
	for _, w := range motionWorkloads {
		for _, enc := range []string{TilesServer, TilesAdaptive, TilesPaced, TilesLossy, VideoH264, VideoVP8} {
			r, ok := find(w, enc, PoorLink)
			if !ok {
				continue
			}
			kbps := poor.Bitrate / 1000
			gs = append(gs, Goal{"poor link: motion within budget at ≥ 30 dB", w + " " + enc,
				fmt.Sprintf("%.0f kbit/s, %s dB (%d/%d frames)", r.ActiveKbps, r.PSNR, r.Frames, r.SourceFrames),
				fmt.Sprintf("≤ %.0f kbit/s, ≥ 30 dB", kbps), r.ActiveKbps <= kbps && float64(r.PSNR) >= 30 && !math.IsNaN(float64(r.PSNR))})
		}
	}
	return gs
}

// WriteGoals writes the scoreboard as a table.
func WriteGoals(w io.Writer, gs []Goal) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "goal\tsubject\tmeasured\ttarget\tresult\t")
	for _, g := range gs {
		res := "FAIL"
		if g.Pass {
			res = "pass"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", g.Goal, g.Subject, g.Measured, g.Target, res)
	}
	return tw.Flush()
}

// WriteLegibility writes legibility runs as a table.
func WriteLegibility(w io.Writer, ls []Legibility) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "encoder\tlink\temu\tfirst screen exact\tnew screen exact\tnew screen KiB\tcells exact at 2 s\t")
	f := func(ms float64) string {
		if ms < 0 {
			return "never"
		}
		return fmt.Sprintf("%.0f ms", ms)
	}
	for _, l := range ls {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.1f\t%.0f%%\t\n", l.Encoder, l.Link, l.Emulator, f(l.FirstMs), f(l.ChangeMs),
			float64(l.ChangeBytes)/1024, l.CellsAt2s*100)
	}
	return tw.Flush()
}
