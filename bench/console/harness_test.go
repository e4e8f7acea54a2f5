package console

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"kvmgate/client"
	"kvmgate/framebuffer"
	"kvmgate/input"
	"kvmgate/internal/browsertest"
	"kvmgate/rfb"
	"kvmgate/server"
)

var (
	duration = flag.Duration("duration", 60*time.Second, "length of each wire workload")
	numKeys  = flag.Int("keys", 60, "keys per key-to-screen latency run")
)

// wait bounds every single wait for the page or the backend.
const wait = 30 * time.Second

// el is the console element of the page.
const el = `document.querySelector('kvm-console')`

// rig is one console served by the real server to one page of headless
// Chromium, with a counting relay on each side of kvmgate.
type rig struct {
	srv  *server.Server
	hs   *httptest.Server // the server, reached directly (metrics)
	vnc  *Relay           // VNC server → kvmgate
	web  *Relay           // kvmgate → browser
	page *browsertest.Page
}

// newRig serves the VNC server at vncAddr through the real server and opens
// its console page in a new headless Chromium.
func newRig(tb testing.TB, vncAddr string) *rig {
	tb.Helper()
	vnc, err := NewRelay(vncAddr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { vnc.Close() })
	srv, err := server.New(server.Options{
		Target: "vnc://" + vnc.Addr(),
		Client: client.FS,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		tb.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	web, err := NewRelay(hs.Listener.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		web.Close()
		hs.CloseClientConnections()
		srv.Close()
		hs.Close()
	})
	b := browsertest.Launch(tb)
	p := b.NewPage(tb, "http://"+web.Addr()+"/")
	p.WaitFor(tb, el+` && `+el+`.state === 'connected' && `+el+`.stats().framesDrawn > 0`, wait)
	p.MustEval(tb, el+`.focus()`)
	return &rig{srv: srv, hs: hs, vnc: vnc, web: web, page: p}
}

// counters is what the rig has counted at one moment.
type counters struct {
	at            time.Time
	framesDrawn   int64 // browser: frames drawn
	bytesReceived int64 // browser: WebSocket payload bytes
	framesSent    int64 // server: frames sent
	bytesSent     int64 // server: WebSocket payload bytes
	vncDown       int64 // TCP bytes VNC server → kvmgate
	webDown       int64 // TCP bytes kvmgate → browser
	published     int64 // framebuffer publishes (backend updates)
}

func (r *rig) counters(tb testing.TB) counters {
	tb.Helper()
	var st struct {
		FramesDrawn   int64 `json:"framesDrawn"`
		BytesReceived int64 `json:"bytesReceived"`
	}
	if err := r.page.EvalInto(el+`.stats()`, &st); err != nil {
		tb.Fatal(err)
	}
	m := r.metrics(tb)
	list := r.srv.Hub().List()
	if len(list) != 1 {
		tb.Fatalf("the hub has %d sessions, want 1", len(list))
	}
	sess := r.srv.Hub().Lookup(list[0].ID)
	if sess == nil {
		tb.Fatalf("session %s vanished", list[0].ID)
	}
	return counters{
		published:     int64(sess.Framebuffer().Version()),
		at:            time.Now(),
		framesDrawn:   st.FramesDrawn,
		bytesReceived: st.BytesReceived,
		framesSent:    m["kvmgate_frames_sent_total"],
		bytesSent:     m["kvmgate_bytes_sent_total"],
		vncDown:       r.vnc.Down(),
		webDown:       r.web.Down(),
	}
}

// metrics reads the server's Prometheus counters.
func (r *rig) metrics(tb testing.TB) map[string]int64 {
	tb.Helper()
	resp, err := http.Get(r.hs.URL + "/metrics")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	m := make(map[string]int64)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if v, err := strconv.ParseInt(f[1], 10, 64); err == nil {
			m[f[0]] = v
		}
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return m
}

// wireResult is one wire workload's figures.
type wireResult struct {
	name                    string
	width, height           int
	seconds                 float64
	framesDrawn, framesSent int64
	published               int64
	browserBytes, wsPayload int64
	vncBytes                int64
	loadBefore, loadAfter   string
}

// measureWire counts what crosses both relays and what the server and the
// browser count while the backend runs its workload for d.
func (r *rig) measureWire(tb testing.TB, name string, d time.Duration) wireResult {
	tb.Helper()
	var size struct{ Width, Height int }
	if err := r.page.EvalInto(el+`.stats()`, &size); err != nil {
		tb.Fatal(err)
	}
	load := loadAvg()
	a := r.counters(tb)
	time.Sleep(d)
	z := r.counters(tb)
	return wireResult{
		name: name, width: size.Width, height: size.Height,
		seconds:      z.at.Sub(a.at).Seconds(),
		framesDrawn:  z.framesDrawn - a.framesDrawn,
		framesSent:   z.framesSent - a.framesSent,
		published:    z.published - a.published,
		browserBytes: z.webDown - a.webDown,
		wsPayload:    z.bytesReceived - a.bytesReceived,
		vncBytes:     z.vncDown - a.vncDown,
		loadBefore:   load, loadAfter: loadAvg(),
	}
}

// latencyProbe is installed in the page: it timestamps each armed key's
// keydown (capture phase on window, before the console's own handler sends
// it) and, on every `frame` event the console fires after drawing, compares
// the canvas rows y..y+h with a copy taken at keydown. The first frame that
// changed them gives the key-to-screen latency.
const latencyProbe = `(() => {
	const con = ` + el + `, cv = con.canvas, ctx = cv.getContext('2d');
	const st = {y: 0, h: 0, armed: false, t0: 0, before: null, lat: -1, frames: 0};
	const band = () => ctx.getImageData(0, st.y, cv.width, st.h).data;
	window.addEventListener('keydown', () => {
		if (!st.armed || st.t0) return;
		st.before = band();
		st.t0 = performance.now();
	}, true);
	con.addEventListener('frame', () => {
		if (!st.armed || !st.t0 || st.lat >= 0) return;
		st.frames++;
		const d = band(), b = st.before;
		for (let i = 0; i < d.length; i++) {
			if (d[i] !== b[i]) { st.lat = performance.now() - st.t0; return; }
		}
	});
	window.__latency = {
		band(y, h) { st.y = y; st.h = h; },
		arm() { st.armed = true; st.t0 = 0; st.lat = -1; st.frames = 0; st.before = null; },
		result() { return st.lat >= 0 ? {ms: st.lat, frames: st.frames} : null; },
	};
	return true;
})()`

// findBand presses a key that echoes on a still screen and returns the
// rows of the canvas that changed.
func (r *rig) findBand(tb testing.TB, code string) (y, h int) {
	tb.Helper()
	before, err := r.page.CanvasPixels("kvm-console")
	if err != nil {
		tb.Fatal(err)
	}
	r.page.KeyPress(tb, code)
	deadline := time.Now().Add(wait)
	for {
		time.Sleep(300 * time.Millisecond)
		after, err := r.page.CanvasPixels("kvm-console")
		if err != nil {
			tb.Fatal(err)
		}
		if y0, y1 := changedRows(before, after); y1 > y0 {
			return y0, y1 - y0
		}
		if time.Now().After(deadline) {
			tb.Fatalf("pressing %s changed nothing on the canvas within %v", code, wait)
		}
	}
}

// changedRows returns the rows [y0, y1) of a and b (of the same size) that
// hold every difference; y0 == y1 when they are equal.
func changedRows(a, b *framebuffer.Canvas) (y0, y1 int) {
	if a.W != b.W || a.H != b.H {
		return 0, min(a.H, b.H)
	}
	y0, y1 = -1, -1
	for y := 0; y < a.H; y++ {
		if string(a.Row(0, y, a.W)) != string(b.Row(0, y, b.W)) {
			if y0 < 0 {
				y0 = y
			}
			y1 = y + 1
		}
	}
	if y0 < 0 {
		return 0, 0
	}
	return y0, y1
}

// latencyResult is one key-to-screen run's figures.
type latencyResult struct {
	name    string
	samples []float64 // ms, sorted
	frames  []int     // frames drawn between keydown and the echo, incl.
	load    string
}

// keyPlan alternates runs of KeyX and Backspace so that the input line
// grows and shrinks in place and never wraps or reaches the prompt.
type keyPlan struct {
	typed int // x's on the line
	down  bool
}

// maxTyped is the longest run of x's a keyPlan types.
const maxTyped = 20

// next returns the code of the next key and counts it as pressed.
func (k *keyPlan) next() string {
	if !k.down && k.typed >= maxTyped {
		k.down = true
	} else if k.down && k.typed <= 1 {
		k.down = false
	}
	if k.down {
		k.typed--
		return "Backspace"
	}
	k.typed++
	return "KeyX"
}

// pause sleeps a random 50–200 ms between keys, so that keys do not fall in
// step with the backend's or the server's own pace.
func pause() { time.Sleep(time.Duration(50+rand.IntN(150)) * time.Millisecond) }

// measureLatency presses n keys of plan one at a time in the page and
// measures each key's echo in the canvas rows [bandY, bandY+bandH).
func (r *rig) measureLatency(tb testing.TB, name string, plan *keyPlan, n, bandY, bandH int) latencyResult {
	tb.Helper()
	r.page.MustEval(tb, latencyProbe)
	r.page.MustEval(tb, fmt.Sprintf(`window.__latency.band(%d, %d)`, bandY, bandH))
	res := latencyResult{name: name, load: loadAvg()}
	for i := 0; i < n; i++ {
		r.page.MustEval(tb, `window.__latency.arm()`)
		r.page.KeyPress(tb, plan.next())
		r.page.WaitFor(tb, `window.__latency.result() !== null`, wait)
		var out struct {
			MS     float64 `json:"ms"`
			Frames int     `json:"frames"`
		}
		if err := r.page.EvalInto(`window.__latency.result()`, &out); err != nil {
			tb.Fatal(err)
		}
		res.samples = append(res.samples, out.MS)
		res.frames = append(res.frames, out.Frames)
		pause()
	}
	sort.Float64s(res.samples)
	return res
}

// rfbProbe is the reference path without kvmgate and without a browser:
// an rfb.Client of its own, connected straight to the VNC server, typing
// keys and watching its decoded framebuffer.
type rfbProbe struct {
	c    *rfb.Client
	fb   *framebuffer.Framebuffer
	v    *framebuffer.Viewer
	done chan error
	stop context.CancelFunc
	once sync.Once
}

// dialRFB connects a probe to the VNC server at addr and waits for its
// first frame. It is closed when the test ends, or earlier by close.
func dialRFB(tb testing.TB, addr string) *rfbProbe {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c, err := rfb.Dial(ctx, addr, rfb.NewOptions())
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	p := &rfbProbe{c: c, fb: framebuffer.New(), done: make(chan error, 1), stop: cancel}
	p.v = p.fb.Subscribe()
	go func() { p.done <- c.Run(ctx, p.fb) }()
	tb.Cleanup(p.close)
	deadline := time.Now().Add(wait)
	for {
		if w, _ := p.fb.Size(); w > 0 {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("rfb: no first frame from %s within %v", addr, wait)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	return p
}

// close disconnects the probe; it may be called more than once.
func (p *rfbProbe) close() {
	p.once.Do(func() {
		p.stop()
		p.c.Close()
		p.v.Close()
	})
}

// press sends one key press and, hold later, its release.
func (p *rfbProbe) press(tb testing.TB, code string, hold time.Duration) {
	tb.Helper()
	key := map[string]string{"KeyX": "x", "Backspace": "Backspace"}[code]
	for _, down := range []bool{true, false} {
		if !down && hold > 0 {
			time.Sleep(hold)
		}
		if err := p.c.Key(input.KeyEvent{Code: code, Key: key, Down: down}); err != nil {
			tb.Fatal(err)
		}
	}
}

// rows returns the framebuffer's rows [y, y+h) as one string.
func (p *rfbProbe) rows(y, h int) string {
	s := p.fb.Snapshot()
	var b strings.Builder
	for r := y; r < y+h && r < s.H; r++ {
		b.Write(s.Row(0, r, s.W))
	}
	return b.String()
}

// band presses the first key of plan (an x) on a still screen and returns
// the rows it changed.
func (p *rfbProbe) band(tb testing.TB, plan *keyPlan) (y, h int) {
	tb.Helper()
	before := p.fb.Snapshot()
	p.press(tb, plan.next(), 0)
	deadline := time.Now().Add(wait)
	for {
		time.Sleep(300 * time.Millisecond)
		if y0, y1 := changedRows(before, p.fb.Snapshot()); y1 > y0 {
			if y1-y0 > maxBand {
				tb.Fatalf("typing x changed rows %d..%d: the screen is not still", y0, y1)
			}
			return y0, y1 - y0
		}
		if time.Now().After(deadline) {
			tb.Fatalf("rfb: typing x changed nothing within %v", wait)
		}
	}
}

// measure presses n keys of plan one at a time, releasing each hold after
// pressing it, and times each from just before its key-down message is
// written to the publish that changed rows [y, y+h).
func (p *rfbProbe) measure(tb testing.TB, name string, plan *keyPlan, n, y, h int, hold time.Duration) latencyResult {
	tb.Helper()
	res := latencyResult{name: name, load: loadAvg()}
	for i := 0; i < n; i++ {
		code := plan.next()
		before := p.rows(y, h)
		select {
		case <-p.v.Changed():
		default:
		}
		t0 := time.Now()
		p.press(tb, code, hold)
		updates := 0
		for changed := false; !changed; {
			select {
			case <-p.v.Changed():
			case err := <-p.done:
				tb.Fatalf("rfb: connection ended: %v", err)
			case <-time.After(wait):
				tb.Fatalf("rfb: no echo of %s within %v", code, wait)
			}
			updates++
			changed = p.rows(y, h) != before
		}
		res.samples = append(res.samples, float64(time.Since(t0).Microseconds())/1000)
		res.frames = append(res.frames, updates)
		pause()
	}
	sort.Float64s(res.samples)
	return res
}

// percentile returns the p-th percentile (0..100) of sorted samples, by the
// nearest-rank method.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	k := int(p/100*float64(len(sorted))+0.999999) - 1
	return sorted[max(0, min(k, len(sorted)-1))]
}

// loadAvg returns the 1-minute load average, or "?".
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// The results of every benchmark run, printed as tables by TestMain.
var (
	resultsMu sync.Mutex
	wires     []wireResult
	latencies []latencyResult
)

func record(w *wireResult, l *latencyResult) {
	resultsMu.Lock()
	defer resultsMu.Unlock()
	if w != nil {
		wires = append(wires, *w)
	}
	if l != nil {
		latencies = append(latencies, *l)
	}
}

// TestMain prints the figures of the benchmarks that ran as Markdown tables.
func TestMain(m *testing.M) {
	code := m.Run()
	printTables(os.Stdout)
	os.Exit(code)
}

func printTables(w io.Writer) {
	resultsMu.Lock()
	defer resultsMu.Unlock()
	if len(wires) > 0 {
		fmt.Fprintln(w, "\n| workload | screen | s | backend updates | frames drawn | fps | browser ← kvmgate (TCP) | WebSocket payload | kvmgate ← VNC server (TCP) | VNC ÷ browser | load 1 min |")
		fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
		for _, r := range wires {
			ratio := "–"
			if r.browserBytes > 0 {
				ratio = fmt.Sprintf("%.1f", float64(r.vncBytes)/float64(r.browserBytes))
			}
			fmt.Fprintf(w, "| %s | %d×%d | %.1f | %d | %d (server sent %d) | %.1f | %s (%s/s) | %s | %s (%s/s) | %s | %s → %s |\n",
				r.name, r.width, r.height, r.seconds, r.published, r.framesDrawn, r.framesSent,
				float64(r.framesDrawn)/r.seconds,
				kb(float64(r.browserBytes)), kb(float64(r.browserBytes)/r.seconds),
				kb(float64(r.wsPayload)),
				kb(float64(r.vncBytes)), kb(float64(r.vncBytes)/r.seconds),
				ratio, r.loadBefore, r.loadAfter)
		}
	}
	if len(latencies) > 0 {
		fmt.Fprintln(w, "\n| console, path | keys | median ms | p90 ms | min ms | max ms | echo in the first frame or update after the key | load 1 min |")
		fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---|")
		for _, r := range latencies {
			first := 0
			for _, f := range r.frames {
				if f == 1 {
					first++
				}
			}
			s := r.samples
			fmt.Fprintf(w, "| %s | %d | %.1f | %.1f | %.1f | %.1f | %d of %d | %s |\n",
				r.name, len(s), percentile(s, 50), percentile(s, 90), s[0], s[len(s)-1], first, len(s), r.load)
		}
	}
}

// kb formats a byte count in kB (1000 bytes) with a thousands separator.
func kb(n float64) string {
	v := int64(n/1000 + 0.5)
	s := strconv.FormatInt(v, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s + " kB"
}
