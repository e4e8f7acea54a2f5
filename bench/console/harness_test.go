package console

import (
	"bufio"
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
	"kvmgate/internal/browsertest"
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

// measureLatency presses n keys one at a time in the page, alternating runs
// of KeyX and Backspace so that the line grows and shrinks in place, and
// measures each key's echo. Type one x first (findBand does) so that the
// first Backspace has something to erase.
func (r *rig) measureLatency(tb testing.TB, name string, n, bandY, bandH int) latencyResult {
	tb.Helper()
	const run = 20
	r.page.MustEval(tb, latencyProbe)
	r.page.MustEval(tb, fmt.Sprintf(`window.__latency.band(%d, %d)`, bandY, bandH))
	res := latencyResult{name: name, load: loadAvg()}
	typed := 1 // the x findBand typed
	up := true
	for i := 0; i < n; i++ {
		if up && typed >= run {
			up = false
		} else if !up && typed <= 1 {
			up = true
		}
		code := "KeyX"
		if !up {
			code = "Backspace"
		}
		r.page.MustEval(tb, `window.__latency.arm()`)
		r.page.KeyPress(tb, code)
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
		if up {
			typed++
		} else {
			typed--
		}
		// A random pause, so that keys do not fall in step with the
		// backend's or the server's own pace.
		time.Sleep(time.Duration(50+rand.IntN(150)) * time.Millisecond)
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
		fmt.Fprintln(w, "\n| console | keys | median ms | p90 ms | min ms | max ms | echo in the first frame after the key | load 1 min |")
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
