//go:build linux

package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"kvmgate/backend"
	"kvmgate/bench/console"
	"kvmgate/encoders/tiles"
	"kvmgate/encoders/video"
	"kvmgate/framebuffer"
	"kvmgate/input"
	"kvmgate/internal/browsertest"
	"kvmgate/internal/imgmetric"
	"kvmgate/internal/motion"
	"kvmgate/server"
)

// BenchmarkMotion plays the full-screen motion workload of
// kvmgate/internal/motion (a textured scene panning under three sprites
// over the top two thirds of the screen, a log scrolling a line every
// other frame below it, 25 frames a second) through the real server to
// headless Chromium, at 1280×800 and 1920×1080, on tiles, WebSocket video
// and WebRTC (VP8 and H.264 each), and prints one table for the whole run.
// The frames come from an in-process backend.Console, so no VNC
// encoding sits between the picture and kvmgate.
//
// Each configuration warms up for 10 s, then measures KVMGATE_BENCH_SECONDS
// (60 by default) of motion in six equal segments. Between segments,
// outside the measured time, it grabs the browser's picture and scores it
// (PSNR over RGB, SSIM over luma in 8×8 windows, see
// kvmgate/internal/imgmetric) against the very frame the picture shows,
// which its stamp names and the scene paints again, then waits a second
// for the page to catch up. Over the segments it counts:
//
//   - kbit/s: bytes to the browser through a counting relay (console.Relay)
//     in front of the server, plus for WebRTC the inbound RTP payload bytes
//     from getStats (bytesReceived: no IP/UDP/RTP headers);
//
//   - fps: pictures the browser drew into its canvas (tiles, WebSocket
//     video) or presented in its <video> (requestVideoFrameCallback);
//
//   - server CPU per frame: this process's user+system time (getrusage)
//     less the painter's own thread time, over the frames the server sent
//     (its frames_sent_total metric; for WebRTC the frames the browser's
//     getStats says it received). That is the whole server path: taking
//     damage, encoding, WebSocket or SRTP framing and writing, the relay's
//     copying and this benchmark's polling, not the encoder alone;
//
//   - browser CPU per frame: the user+system time of every Chromium
//     process (the test process's descendants, from /proc) over the frames
//     shown;
//
//   - latency: every frame carries its number in its stamp; the page reads
//     it off each picture as the canvas is drawn (the console's "frame"
//     event) or the <video> presents it (requestVideoFrameCallback's
//     presentationTime), and the benchmark subtracts the time the frame was
//     published into the framebuffer, both on this machine's clock
//     (performance.timeOrigin + performance.now(), calibrated against Go's
//     time.Now through one DevTools round trip). Median and 95th
//     percentile over the frames shown; the screen's own refresh (up to a
//     vsync) is not included.
//
// The full run, about 14 minutes:
//
//	go test -tags libvpx,openh264 -run XXX -bench 'Motion$' -benchtime 1x -timeout 40m ./e2e/
//
// One configuration for development (the shortest sensible run):
//
//	KVMGATE_BENCH_SECONDS=12 go test -tags libvpx,openh264 -run XXX -bench 'Motion/1280x800/wsvideo-vp8' -benchtime 1x ./e2e/
func BenchmarkMotion(b *testing.B) {
	secs := 60
	if s, err := strconv.Atoi(os.Getenv("KVMGATE_BENCH_SECONDS")); err == nil && s > 0 {
		secs = s
	}
	type config struct{ transport, codec string }
	configs := []config{{"tiles", ""}}
	for _, tr := range []string{"wsvideo", "webrtc"} {
		for _, codec := range video.Codecs {
			if video.Available(codec) == nil {
				configs = append(configs, config{tr, codec})
			}
		}
	}
	if len(configs) == 1 {
		b.Fatal("no video codec built in: build with -tags libvpx,openh264")
	}
	var rows []motionResult
	for _, size := range [][2]int{{1280, 800}, {1920, 1080}} {
		for _, c := range configs {
			name := fmt.Sprintf("%dx%d/%s", size[0], size[1], c.transport)
			if c.codec != "" {
				name += "-" + c.codec
			}
			b.Run(name, func(b *testing.B) {
				for range b.N {
					r := runMotion(b, c.transport, c.codec, size[0], size[1], secs)
					b.ReportMetric(r.kbps(), "kbit/s")
					b.ReportMetric(r.fpsShown(), "fps")
					b.ReportMetric(r.serverMs(), "server-ms/frame")
					b.ReportMetric(r.latency(0.5), "ms-latency-p50")
					rows = append(rows, r)
				}
			})
		}
	}
	printMotionTable(os.Stdout, rows, secs)
}

// motionResult is what one configuration measured.
type motionResult struct {
	w, h             int
	transport, codec string

	seconds            float64 // measured time
	painted, shown     int     // frames published, frames the browser showed
	sent               int     // frames the server sent
	bytes              int64   // bytes to the browser
	serverCPU, painter time.Duration
	browserCPU         time.Duration
	bitrate            []int // the server's video target at each segment end, kbit/s

	psnr, ssim, textSSIM []float64  // per quality sample
	unreadable           int        // samples whose stamp could not be read
	lat                  []float64  // ms, one per frame shown in a measured segment
	badStamps            int        // pictures the page could not read the stamp of
	clockOffset          float64    // page clock minus Go clock, ms
	jb, decode           [2]float64 // WebRTC: jitter buffer and decode seconds, frames
}

func (r *motionResult) kbps() float64       { return float64(r.bytes) * 8 / 1000 / r.seconds }
func (r *motionResult) fpsShown() float64   { return float64(r.shown) / r.seconds }
func (r *motionResult) fpsPainted() float64 { return float64(r.painted) / r.seconds }

// serverMs is the server's CPU time per frame sent, in ms.
func (r *motionResult) serverMs() float64 {
	if r.sent == 0 {
		return 0
	}
	return float64(r.serverCPU-r.painter) / float64(r.sent) / 1e6
}

// serverShare is the server's CPU time in percent of one core.
func (r *motionResult) serverShare() float64 {
	return float64(r.serverCPU-r.painter) / 1e9 / r.seconds * 100
}

// browserShare is the browser's CPU time in percent of one core.
func (r *motionResult) browserShare() float64 {
	return float64(r.browserCPU) / 1e9 / r.seconds * 100
}

// browserMs is the browser's CPU time per frame shown, in ms.
func (r *motionResult) browserMs() float64 {
	if r.shown == 0 {
		return 0
	}
	return float64(r.browserCPU) / float64(r.shown) / 1e6
}

// latency returns quantile q of the latencies (NaN when none).
func (r *motionResult) latency(q float64) float64 { return quantile(r.lat, q) }

func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// printMotionTable writes the results as a Markdown table, with each
// row's bytes as a multiple of tiles' at the same size.
func printMotionTable(w *os.File, rows []motionResult, secs int) {
	fmt.Fprintf(w, "\nMotion workload, %d s measured per row, %d cores (GOMAXPROCS %d)\n\n", secs, runtime.NumCPU(), runtime.GOMAXPROCS(0))
	fmt.Fprintln(w, "| screen | transport | codec | fps painted | fps shown | kbit/s | × tiles | server CPU ms/frame | server CPU % | browser CPU ms/frame | browser CPU % | PSNR dB | SSIM | text SSIM | latency p50 ms | p95 ms | video target kbit/s |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	tiles := map[[2]int]float64{}
	for _, r := range rows {
		if r.transport == "tiles" {
			tiles[[2]int{r.w, r.h}] = r.kbps()
		}
	}
	for _, r := range rows {
		ratio := "–"
		if t := tiles[[2]int{r.w, r.h}]; t > 0 {
			ratio = fmt.Sprintf("%.2f", r.kbps()/t)
		}
		codec, target := r.codec, "–"
		if codec == "" {
			codec = "–"
		}
		if len(r.bitrate) > 0 {
			target = fmt.Sprintf("%d–%d", slices.Min(r.bitrate), slices.Max(r.bitrate))
		}
		fmt.Fprintf(w, "| %dx%d | %s | %s | %.1f | %.1f | %.0f | %s | %.1f | %.0f | %.1f | %.0f | %.1f | %.3f | %.3f | %.0f | %.0f | %s |\n",
			r.w, r.h, r.transport, codec, r.fpsPainted(), r.fpsShown(), r.kbps(), ratio,
			r.serverMs(), r.serverShare(), r.browserMs(), r.browserShare(), mean(r.psnr), mean(r.ssim), mean(r.textSSIM),
			r.latency(0.5), r.latency(0.95), target)
	}
	fmt.Fprintln(w)
	for _, r := range rows {
		rtc := ""
		if r.jb[1] > 0 && r.decode[1] > 0 {
			rtc = fmt.Sprintf(", mean jitter buffer delay %.0f ms, decode %.1f ms/frame", r.jb[0]/r.jb[1]*1000, r.decode[0]/r.decode[1]*1000)
		}
		fmt.Fprintf(w, "%dx%d %s %s: %d frames painted, %d sent, %d shown, %d latency points, %d unreadable stamps in the page, %d of %d quality samples unreadable, page clock %+.1f ms from Go's, PSNR per sample %s%s\n",
			r.w, r.h, r.transport, r.codec, r.painted, r.sent, r.shown, len(r.lat), r.badStamps,
			r.unreadable, len(r.psnr)+r.unreadable, r.clockOffset, fmtFloats(r.psnr), rtc)
	}
}

func fmtFloats(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.FormatFloat(x, 'f', 1, 64)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// motionWarmUp is how long each configuration plays before it is measured.
const motionWarmUp = 10 * time.Second

// motionSegments is how many parts the measured time is cut into, with a
// quality sample after each.
const motionSegments = 6

// runMotion measures one transport (and codec) at one size.
func runMotion(b *testing.B, transport, codec string, w, h, secs int) motionResult {
	scene, err := motion.New(w, h)
	if err != nil {
		b.Fatal(err)
	}
	mc := newMotionConsole(scene)
	var opens atomic.Int32
	opts := server.Options{
		Target: "vnc://127.0.0.1:5999", // never dialled: Open serves the scene
		Open: func(context.Context, string) (backend.Console, error) {
			if opens.Add(1) > 1 {
				return nil, errors.New("motion: the console was opened again")
			}
			return mc, nil
		},
	}
	if transport == "webrtc" {
		opts.WebRTC = loopbackRTC
	}
	hs := benchServer(b, opts)
	u, err := url.Parse(hs)
	if err != nil {
		b.Fatal(err)
	}
	relay, err := console.NewRelay(u.Host)
	if err != nil {
		b.Fatal(err)
	}
	defer relay.Close()

	br := browsertest.Launch(b)
	page := "http://" + relay.Addr() + "/?transport=" + transport
	if codec != "" {
		page += "&codec=" + codec
	}
	p := br.NewPage(b, page)
	ready := el + ` && ` + el + `.state === 'connected' && ` + el + `.stats().framesDrawn > 0 && ` + el + `.stats().transport === '` + transport + `'`
	if codec != "" {
		ready += ` && ` + el + `.stats().codec === '` + codec + `'`
	}
	p.WaitFor(b, ready, wait)
	rtc := transport == "webrtc"
	if rtc {
		p.WaitFor(b, el+`.rtc && `+el+`.rtc.frames > 0 && `+el+`.rtc.pc`, wait)
	}
	res := motionResult{w: w, h: h, transport: transport, codec: codec}
	res.clockOffset = pageClockOffset(b, p)
	p.MustEval(b, latencyHookJS(rtc))
	time.Sleep(motionWarmUp) // the rate controllers settle

	type windowMs struct{ from, to float64 }
	var windows []windowMs
	seg := time.Duration(secs) * time.Second / motionSegments
	for range motionSegments {
		s0 := snapshot(b, p, hs, relay, mc, rtc)
		time.Sleep(seg)
		s1 := snapshot(b, p, hs, relay, mc, rtc)
		res.seconds += s1.at.Sub(s0.at).Seconds()
		res.painted += s1.painted - s0.painted
		res.shown += s1.shown - s0.shown
		res.sent += s1.sent - s0.sent
		res.bytes += s1.bytes - s0.bytes
		res.serverCPU += s1.cpu - s0.cpu
		res.painter += s1.painter - s0.painter
		res.browserCPU += s1.browser - s0.browser
		for i := range 2 {
			res.jb[i] += s1.jb[i] - s0.jb[i]
			res.decode[i] += s1.decode[i] - s0.decode[i]
		}
		if s1.bitrate > 0 {
			res.bitrate = append(res.bitrate, s1.bitrate)
		}
		windows = append(windows, windowMs{ms(s0.at), ms(s1.at)})

		got := grabPicture(b, p, rtc)
		n, ok := motion.ReadStamp(got)
		if !ok || got.W != w || got.H != h {
			res.unreadable++
		} else {
			ref, _ := framebuffer.NewCanvas(w, h)
			scene.Render(ref, mc.frameNumber(n))
			res.psnr = append(res.psnr, math.Min(99, video.PSNR(got, ref)))
			res.ssim = append(res.ssim, imgmetric.SSIM(got, ref))
			tr := scene.TextRect()
			res.textSSIM = append(res.textSSIM, imgmetric.SSIM(imgmetric.Sub(got, tr), imgmetric.Sub(ref, tr)))
		}
		time.Sleep(time.Second) // let the page catch up after the grab
	}

	var shown struct {
		Lat []float64
		Bad int
	}
	if err := p.EvalInto(`({lat: window.__lat, bad: window.__bad})`, &shown); err != nil {
		b.Fatal(err)
	}
	res.badStamps = shown.Bad
	for i := 0; i+1 < len(shown.Lat); i += 2 {
		at := shown.Lat[i+1] - res.clockOffset
		in := false
		for _, wd := range windows {
			in = in || (at >= wd.from && at < wd.to)
		}
		if !in {
			continue
		}
		pub, ok := mc.published(mc.frameNumber(int(shown.Lat[i])))
		if !ok {
			res.badStamps++
			continue
		}
		res.lat = append(res.lat, at-ms(pub))
	}
	if n := opens.Load(); n != 1 {
		b.Errorf("%s %s: the session opened the console %d times; the measurement is void", transport, codec, n)
	}
	if len(res.lat) == 0 || res.shown == 0 {
		b.Errorf("%s %s: %d frames shown, %d latency points", transport, codec, res.shown, len(res.lat))
	}
	if errs := p.Errors(); len(errs) > 0 {
		b.Logf("page errors: %q", errs)
	}
	return res
}

// ms converts t to milliseconds since the Unix epoch.
func ms(t time.Time) float64 { return float64(t.UnixNano()) / 1e6 }

// motionSnapshot is the counters at one moment.
type motionSnapshot struct {
	at           time.Time
	painted      int
	shown, sent  int
	bytes        int64
	cpu, painter time.Duration
	browser      time.Duration
	bitrate      int
	jb, decode   [2]float64 // WebRTC: jitter buffer and decode seconds, frames
}

// snapshot reads every counter.
func snapshot(b *testing.B, p *browsertest.Page, hs string, relay *console.Relay, mc *motionConsole, rtc bool) motionSnapshot {
	b.Helper()
	var pg struct {
		Shown, Bitrate      int
		RTCBytes, RTCFrames int64
		JBDelay, JBEmitted  float64
		DecodeTime, Decoded float64
	}
	js := `(async () => {
		const c = ` + el + `, st = c.stats();
		const r = {shown: st.framesDrawn, bitrate: st.bitrate || 0, rtcBytes: 0, rtcFrames: 0};
		if (c.rtc && c.rtc.pc) {
			r.shown = c.rtc.frames;
			(await c.rtc.pc.getStats()).forEach((s) => {
				if (s.type === 'inbound-rtp' && s.kind === 'video') {
					r.rtcBytes += s.bytesReceived || 0; r.rtcFrames += s.framesReceived || 0;
					r.jbDelay = s.jitterBufferDelay || 0; r.jbEmitted = s.jitterBufferEmittedCount || 0;
					r.decodeTime = s.totalDecodeTime || 0; r.decoded = s.framesDecoded || 0;
				}
			});
		}
		return r;
	})()`
	if err := p.EvalInto(js, &pg); err != nil {
		b.Fatal(err)
	}
	s := motionSnapshot{
		at:      time.Now(),
		painted: mc.painted(),
		shown:   pg.Shown,
		bytes:   relay.Down() + pg.RTCBytes,
		cpu:     processCPU(b),
		painter: mc.painterCPU(),
		browser: childrenCPU(),
		bitrate: pg.Bitrate,
		jb:      [2]float64{pg.JBDelay, pg.JBEmitted},
		decode:  [2]float64{pg.DecodeTime, pg.Decoded},
	}
	if rtc {
		s.sent = int(pg.RTCFrames)
	} else {
		s.sent = framesSent(b, hs)
	}
	return s
}

// framesSent reads the server's kvmgate_frames_sent_total.
func framesSent(b *testing.B, hs string) int {
	resp, err := http.Get(hs + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "kvmgate_frames_sent_total "); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatal("no kvmgate_frames_sent_total in /metrics")
	return 0
}

// processCPU returns this process's user and system CPU time.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rusageThread is Linux's RUSAGE_THREAD, which package syscall lacks.
const rusageThread = 1

// threadCPU returns the calling OS thread's user and system CPU time.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// childrenCPU returns the user and system CPU time of the live
// descendants of this process (the browsers), from /proc.
func childrenCPU() time.Duration {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	parent := map[int]int{}
	ticks := map[int]int64{}
	for _, f := range stats {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ... utime stime are fields 14 and 15; comm
		// may hold spaces, so split after its closing parenthesis.
		s := string(data)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		pid, _ := strconv.Atoi(strings.Fields(s[:i])[0])
		fields := strings.Fields(s[i+1:])
		if len(fields) < 13 {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		ut, _ := strconv.ParseInt(fields[11], 10, 64)
		st, _ := strconv.ParseInt(fields[12], 10, 64)
		parent[pid], ticks[pid] = ppid, ut+st
	}
	self := os.Getpid()
	var total int64
	for pid, t := range ticks {
		for q := parent[pid]; q > 1; q = parent[q] {
			if q == self {
				total += t
				break
			}
		}
	}
	const clkTck = 100 // USER_HZ on Linux
	return time.Duration(total) * time.Second / clkTck
}

// pageClockOffset returns the page's clock (performance.timeOrigin +
// performance.now()) minus Go's, in ms, read through the shortest of a few
// DevTools round trips.
func pageClockOffset(b *testing.B, p *browsertest.Page) float64 {
	best, offset := math.Inf(1), 0.0
	for range 5 {
		t0 := time.Now()
		var js float64
		if err := p.EvalInto(`performance.timeOrigin + performance.now()`, &js); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if rt := t1.Sub(t0).Seconds(); rt < best {
			best = rt
			offset = js - ms(t0.Add(t1.Sub(t0)/2))
		}
	}
	return offset
}

// latencyHookJS makes the page note, for each new picture, the frame
// number its stamp reads and the time it was shown, in window.__lat as
// [n, ms, n, ms, ...]; window.__bad counts pictures whose stamp it could
// not read.
func latencyHookJS(rtc bool) string {
	return `(() => {
	const c = ` + el + `, B = ` + strconv.Itoa(motion.StampBlock) + `, BITS = ` + strconv.Itoa(motion.StampBits) + `, W = 2 * BITS * B;
	window.__lat = []; window.__bad = 0;
	let last = -1;
	const luma = (d, x) => {
		let s = 0;
		for (let y = B / 4; y < B - B / 4; y++) for (let i = x + B / 4; i < x + B - B / 4; i++) {
			const o = (y * W + i) * 4;
			s += 299 * d[o] + 587 * d[o + 1] + 114 * d[o + 2];
		}
		return s / 1000 / (B / 2) / (B / 2);
	};
	const note = (d, t) => {
		let n = 0;
		for (let i = 0; i < BITS; i++) {
			const a = luma(d, i * B) > 128, b = luma(d, (BITS + i) * B) > 128;
			if (a === b) { window.__bad++; return; }
			n = n * 2 + (a ? 1 : 0);
		}
		if (n !== last) { last = n; window.__lat.push(n, t); }
	};
	if (` + strconv.FormatBool(rtc) + `) {
		const v = c.video, s = document.createElement('canvas');
		s.width = W; s.height = B;
		const ctx = s.getContext('2d', { willReadFrequently: true });
		const cb = (now, md) => {
			ctx.drawImage(v, 0, 0, W, B, 0, 0, W, B);
			note(ctx.getImageData(0, 0, W, B).data, performance.timeOrigin + md.presentationTime);
			v.requestVideoFrameCallback(cb);
		};
		v.requestVideoFrameCallback(cb);
	} else {
		const ctx = c.canvas.getContext('2d');
		c.addEventListener('frame', () => {
			const t = performance.timeOrigin + performance.now();
			note(ctx.getImageData(0, 0, W, B).data, t);
		});
	}
})()`
}

// motionConsole is a backend.Console that plays a motion.Scene at
// motion.FPS. Its Run goroutine paints on a locked OS thread so that the
// painting's CPU time can be told apart from the server's.
type motionConsole struct {
	scene  *motion.Scene
	closed chan struct{} // closed by Close
	close  sync.Once
	full   atomic.Bool  // Refresh asked for the whole screen
	paint  atomic.Int64 // ns of thread CPU spent rendering
	count  atomic.Int64 // frames published

	mu sync.Mutex
	// mu guards the following.
	pub []time.Time // publish time by frame number
}

func newMotionConsole(s *motion.Scene) *motionConsole {
	return &motionConsole{scene: s, closed: make(chan struct{})}
}

// Run publishes frame after frame until ctx ends. A frame whose tick was
// missed (the machine is busy) is skipped, as a real screen would.
func (m *motionConsole) Run(ctx context.Context, fb *framebuffer.Framebuffer) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	w, h := m.scene.Size()
	c, err := framebuffer.NewCanvas(w, h)
	if err != nil {
		return err
	}
	var batch framebuffer.Batch
	start := time.Now()
	tick := time.NewTicker(time.Second / motion.FPS)
	defer tick.Stop()
	for n := 0; ; {
		t0 := threadCPU()
		m.scene.Render(c, n)
		m.scene.Damage(&batch, n)
		if m.full.Swap(false) {
			batch.Damage(c.Bounds())
		}
		m.paint.Add(int64(threadCPU() - t0))
		m.mu.Lock()
		for len(m.pub) <= n {
			m.pub = append(m.pub, time.Time{})
		}
		m.pub[n] = time.Now()
		m.mu.Unlock()
		fb.Publish(c, &batch)
		m.count.Add(1)
		select {
		case <-ctx.Done():
			return nil
		case <-m.closed:
			return errors.New("motion console closed")
		case now := <-tick.C:
			n = max(n+1, int(now.Sub(start)*motion.FPS/time.Second))
		}
	}
}

// frameNumber returns the frame number whose stamp reads s (the stamp
// keeps motion.StampBits bits): the latest such frame published.
func (m *motionConsole) frameNumber(s int) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	const mod = 1 << motion.StampBits
	n := len(m.pub) - 1
	return n - ((n-s)%mod+mod)%mod
}

// published returns when frame n was published.
func (m *motionConsole) published(n int) (time.Time, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if n < 0 || n >= len(m.pub) || m.pub[n].IsZero() {
		return time.Time{}, false
	}
	return m.pub[n], true
}

func (m *motionConsole) painted() int              { return int(m.count.Load()) }
func (m *motionConsole) painterCPU() time.Duration { return time.Duration(m.paint.Load()) }

func (m *motionConsole) Key(input.KeyEvent) error         { return nil }
func (m *motionConsole) Pointer(input.PointerEvent) error { return nil }
func (m *motionConsole) Clipboard(string) error           { return nil }
func (m *motionConsole) Action(input.Action) error        { return backend.ErrUnsupported }
func (m *motionConsole) Refresh() error                   { m.full.Store(true); return nil }
func (m *motionConsole) Info() backend.Info               { return backend.Info{Protocol: "motion", Name: "motion"} }
func (m *motionConsole) Close() error {
	m.close.Do(func() { close(m.closed) })
	return nil
}

// BenchmarkMotionEncode runs the encoders alone, in this goroutine on a
// locked OS thread, over 10 s (250 frames) of the motion workload at each
// size: tiles lossless and lossy (JPEG quality 65, what the server uses
// between 0.5 and 2 MiB/s of goodput) on the rectangles each frame
// damages, VP8 and H.264 at a fixed 4 Mbit/s on whole frames. It reports
// the thread's CPU time per frame (getrusage RUSAGE_THREAD) and the bytes,
// for comparison with BenchmarkMotion's whole-server figures.
//
//	go test -tags libvpx,openh264 -run XXX -bench MotionEncode -benchtime 1x ./e2e/
func BenchmarkMotionEncode(b *testing.B) {
	const frames = 10 * motion.FPS
	for _, size := range [][2]int{{1280, 800}, {1920, 1080}} {
		for _, enc := range []string{"tiles-lossless", "tiles-jpeg65", video.VP8, video.H264} {
			b.Run(fmt.Sprintf("%dx%d/%s", size[0], size[1], enc), func(b *testing.B) {
				if !strings.HasPrefix(enc, "tiles") {
					if err := video.Available(enc); err != nil {
						b.Fatal(err)
					}
				}
				scene, err := motion.New(size[0], size[1])
				if err != nil {
					b.Fatal(err)
				}
				for range b.N {
					cpu, bytes := encodeMotion(b, scene, enc, frames)
					b.ReportMetric(float64(cpu.Microseconds())/1000/frames, "cpu-ms/frame")
					b.ReportMetric(float64(bytes)*8/1000/(frames/motion.FPS), "kbit/s")
				}
			})
		}
	}
}

// encodeMotion encodes frames frames of the scene with enc and returns the
// thread CPU time spent encoding and the bytes produced.
func encodeMotion(b *testing.B, scene *motion.Scene, enc string, frames int) (cpu time.Duration, bytes int) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	w, h := scene.Size()
	c, _ := framebuffer.NewCanvas(w, h)
	var buf []byte
	var encode func(n int) error
	switch enc {
	case "tiles-lossless", "tiles-jpeg65":
		te := tiles.NewEncoder()
		q := tiles.Quality{}
		if enc == "tiles-jpeg65" {
			q = tiles.Quality{Lossy: true, JPEG: 65}
		}
		encode = func(n int) error {
			var err error
			for _, r := range scene.Changed(n) {
				if buf, err = te.Encode(buf[:0], c, r, q); err != nil {
					return err
				}
				bytes += len(buf)
			}
			return nil
		}
	default:
		ve, err := video.New(enc, video.Options{Width: w, Height: h, Bitrate: 4_000_000})
		if err != nil {
			b.Fatal(err)
		}
		defer ve.Close()
		encode = func(n int) error {
			f, err := ve.Encode(buf[:0], c, time.Duration(n)*time.Second/motion.FPS, n == 0)
			buf = f.Data
			bytes += len(f.Data)
			return err
		}
	}
	for n := range frames {
		scene.Render(c, n)
		t0 := threadCPU()
		if err := encode(n); err != nil {
			b.Fatal(err)
		}
		cpu += threadCPU() - t0
	}
	return cpu, bytes
}
