package e2e

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"kvmgate/bench/console"
	"kvmgate/framebuffer"
	"kvmgate/internal/browsertest"
	"kvmgate/internal/testserver"
	"kvmgate/server"
)

// spiceHTML5Dir is where Debian's spice-html5 package installs its page and
// JavaScript modules.
const spiceHTML5Dir = "/usr/share/spice-html5"

// spiceHTML5Canvas selects the canvas spice-html5 draws the primary surface
// into.
const spiceHTML5Canvas = "#spice_surface_0"

// BenchmarkSPICEHTML5ConsoleBytes runs one Linux console workload on a QXL
// (KMS) framebuffer twice, each time with one SPICE client in headless
// Chromium: kvmgate (spice:// backend, canvas page) and spice-html5
// (Debian's spice-html5 behind websockify, as it is deployed). Counting TCP
// relays measure the wire on every hop: QEMU → client (kvmgate or
// websockify) and the bytes the browser receives (kvmgate's WebSocket or
// websockify's). The workload lists /bin KVMGATE_SPICE_BENCH_ITERS times
// (default 60), 0.2 s apart; it is typed through QEMU's monitor (QMP
// send-key), so both runs get exactly the same keystrokes whatever the
// client's keyboard handling. It also reports the CPU seconds of the test
// process (kvmgate and the relays), of websockify and of Chromium during
// the workload, and how many pixels of the client's canvas differ from
// QEMU's screendump afterwards.
func BenchmarkSPICEHTML5ConsoleBytes(b *testing.B) {
	iters := 60
	if s := os.Getenv("KVMGATE_SPICE_BENCH_ITERS"); s != "" {
		fmt.Sscan(s, &iters)
	}
	if _, err := os.Stat(filepath.Join(spiceHTML5Dir, "spice_auto.html")); err != nil {
		b.Fatalf("spice-html5 is not installed (Debian package spice-html5; scripts/install-deps.sh installs it): %v", err)
	}
	if _, err := exec.LookPath("websockify"); err != nil {
		b.Fatalf("websockify is not installed (Debian package websockify): %v", err)
	}
	spicePort := freeTCPPort(b)
	spiceAddr := "127.0.0.1:" + strconv.Itoa(spicePort)
	q := testserver.StartQEMU(b, testserver.QEMUOptions{
		Guest: testserver.GuestLinux, Modules: []string{"qxl"}, ColdBoot: true, VGA: "qxl",
		ExtraArgs: []string{"-spice", "port=" + strconv.Itoa(spicePort) + ",addr=127.0.0.1,disable-ticketing=on"},
	})
	q.WaitSettled(b, testserver.LinuxBootTimeout)
	br := browsertest.Launch(b)

	b.Run("kvmgate", func(b *testing.B) {
		in := spiceHTML5Relay(b, spiceAddr)
		_, hs := startServerTB(b, server.Options{Target: "spice://" + in.Addr()})
		out := spiceHTML5Relay(b, hs.Listener.Addr().String())
		// One SPICE client at a time: the page, the server and its SPICE
		// connection end with this sub-benchmark.
		p := br.NewPage(b, "http://"+out.Addr()+"/")
		defer p.Close(b)
		p.WaitFor(b, el+` && `+el+`.state === 'connected' && `+el+`.stats().framesDrawn > 0`, wait)
		waitScreenTB(b, p, q)
		for b.Loop() {
			spiceHTML5Workload(b, q, iters, "kvmgate", in, out, 0, func() {
				waitScreenTB(b, p, q)
				b.ReportMetric(0, "px-differ")
			})
		}
	})

	b.Run("spice-html5", func(b *testing.B) {
		in := spiceHTML5Relay(b, spiceAddr)
		wsPort := freeTCPPort(b)
		ws := spiceHTML5Websockify(b, wsPort, in.Addr())
		out := spiceHTML5Relay(b, "127.0.0.1:"+strconv.Itoa(wsPort))
		files := httptest.NewServer(http.FileServer(http.Dir(spiceHTML5Dir)))
		b.Cleanup(files.Close)
		_, outPort, _ := net.SplitHostPort(out.Addr())
		p := br.NewPage(b, files.URL+"/spice_auto.html?host=127.0.0.1&port="+outPort)
		defer p.Close(b)
		p.WaitFor(b, `!!document.querySelector('`+spiceHTML5Canvas+`')`, wait)
		spiceHTML5WaitScreen(b, p, q, wait)
		for b.Loop() {
			spiceHTML5Workload(b, q, iters, "spicehtml5", in, out, ws, func() {
				// spice-html5 decodes in the page's JavaScript and may
				// still be working through a backlog on a loaded machine.
				b.ReportMetric(float64(spiceHTML5WaitScreen(b, p, q, 3*wait)), "px-differ")
			})
		}
	})
}

// spiceHTML5Workload types the workload through QEMU's monitor, waits for
// the guest to finish it and for the screen to settle, calls settled (which
// checks the client's canvas) and reports the bytes each relay carried
// towards the browser, and the CPU time spent meanwhile by this process,
// by proxy's process tree (when proxy is not 0) and by Chromium.
func spiceHTML5Workload(b *testing.B, q *testserver.QEMU, iters int, tag string, in, out *console.Relay, proxy int, settled func()) {
	b.Helper()
	in0, out0 := in.Down(), out.Down()
	self0, chrome0, proxy0 := selfCPU(b), chromiumCPU(), treeCPU(proxy)
	start := time.Now()
	q.TypeText(b, fmt.Sprintf("for i in $(seq %d); do ls -l /bin | head -40; sleep 0.2; done; echo SPICE-WL-DONE-%s > /dev/ttyS0\n", iters, tag))
	q.WaitSerial(b, "SPICE-WL-DONE-"+tag, time.Duration(iters)*time.Second+2*time.Minute)
	wall := time.Since(start)
	q.WaitSettled(b, time.Minute)
	settled()
	inN, outN := in.Down()-in0, out.Down()-out0
	b.ReportMetric(float64(inN)/1e3, "kB-qemu")
	b.ReportMetric(float64(outN)/1e3, "kB-browser")
	b.ReportMetric(float64(in.Up())/1e3, "kB-qemu-up-total")
	b.ReportMetric(wall.Seconds(), "s-workload")
	b.ReportMetric((selfCPU(b) - self0).Seconds(), "cpu-s-testproc")
	b.ReportMetric((chromiumCPU() - chrome0).Seconds(), "cpu-s-chromium")
	if proxy != 0 {
		b.ReportMetric((treeCPU(proxy) - proxy0).Seconds(), "cpu-s-websockify")
	}
}

// spiceHTML5Relay starts a counting relay to target, closed when the
// benchmark ends.
func spiceHTML5Relay(b *testing.B, target string) *console.Relay {
	b.Helper()
	r, err := console.NewRelay(target)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close() })
	return r
}

// spiceHTML5Websockify starts websockify on 127.0.0.1:port in front of
// target, waits until it listens and returns its pid; it is killed (with
// the per-connection processes it forks) when the benchmark ends.
func spiceHTML5Websockify(b *testing.B, port int, target string) int {
	b.Helper()
	var log strings.Builder
	cmd := exec.Command("websockify", "127.0.0.1:"+strconv.Itoa(port), target)
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		b.Fatalf("start websockify: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	b.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		if b.Failed() {
			b.Logf("websockify output:\n%s", log.String())
		}
	})
	deadline := time.Now().Add(wait)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err == nil {
			c.Close()
			return cmd.Process.Pid
		}
		if time.Now().After(deadline) {
			b.Fatalf("websockify never listened on port %d: %v", port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// spiceHTML5WaitScreen waits until spice-html5's canvas has QEMU's screen
// size and drew something that is not black, then until it equals QEMU's
// screendump, for up to timeout. It returns how many pixels still differ
// (0 when it matched); it fails the benchmark only when the canvas never
// appeared with the screen's size or stayed black.
func spiceHTML5WaitScreen(b *testing.B, p *browsertest.Page, q *testserver.QEMU, timeout time.Duration) int {
	b.Helper()
	deadline := time.Now().Add(timeout)
	bad := -1
	for {
		want, err := q.Screenshot()
		if err != nil {
			b.Fatal(err)
		}
		got, err := p.CanvasPixels(spiceHTML5Canvas)
		if err == nil && got.W == want.W && got.H == want.H && !screenChange(got, blackCanvas(got.W, got.H)).Empty() {
			bad = differingPixels(got, want)
			if bad == 0 {
				return 0
			}
		}
		if time.Now().After(deadline) {
			if bad < 0 {
				b.Fatalf("spice-html5's canvas never showed the %dx%d screen in %v (last error %v)", want.W, want.H, timeout, err)
			}
			b.Logf("spice-html5's canvas differs from QEMU's screendump in %d pixels after %v", bad, timeout)
			return bad
		}
		time.Sleep(150 * time.Millisecond)
	}
}

// differingPixels counts the pixels whose RGB differ between two canvases
// of the same size.
func differingPixels(a, b *framebuffer.Canvas) int {
	n := 0
	for y := 0; y < a.H; y++ {
		ra := a.Pix[y*a.Stride : y*a.Stride+a.W*framebuffer.BytesPerPixel]
		rb := b.Pix[y*b.Stride : y*b.Stride+b.W*framebuffer.BytesPerPixel]
		for i := 0; i < len(ra); i += framebuffer.BytesPerPixel {
			if ra[i] != rb[i] || ra[i+1] != rb[i+1] || ra[i+2] != rb[i+2] {
				n++
			}
		}
	}
	return n
}

// selfCPU returns the user and system CPU time of this process so far.
func selfCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procStat is what spiceHTML5 CPU accounting reads from /proc/PID/stat.
type procStat struct {
	comm       string
	ppid       int
	cpuTicks   int64 // utime + stime
	parsedOkay bool
}

// readProcStat parses /proc/PID/stat; parsedOkay is false when the process
// is gone or the line is malformed.
func readProcStat(pid int) procStat {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}
	}
	s := string(data)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return procStat{}
	}
	f := strings.Fields(s[end+1:])
	// f[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
	if len(f) < 13 {
		return procStat{}
	}
	ppid, err1 := strconv.Atoi(f[1])
	ut, err2 := strconv.ParseInt(f[11], 10, 64)
	st, err3 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return procStat{}
	}
	return procStat{comm: s[open+1 : end], ppid: ppid, cpuTicks: ut + st, parsedOkay: true}
}

// allProcs returns the stat of every process that can be read.
func allProcs() map[int]procStat {
	ents, _ := os.ReadDir("/proc")
	m := make(map[int]procStat, len(ents))
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st := readProcStat(pid); st.parsedOkay {
			m[pid] = st
		}
	}
	return m
}

// descends reports whether pid is root or one of its descendants.
func descends(procs map[int]procStat, pid, root int) bool {
	for i := 0; i < 64 && pid > 1; i++ {
		if pid == root {
			return true
		}
		pid = procs[pid].ppid
	}
	return pid == root
}

// clockTick is Linux's USER_HZ, the unit of /proc/PID/stat times.
const clockTick = 10 * time.Millisecond

// treeCPU returns the CPU time of root and its live descendants (0 for
// root 0).
func treeCPU(root int) time.Duration {
	if root == 0 {
		return 0
	}
	procs := allProcs()
	var ticks int64
	for pid, st := range procs {
		if descends(procs, pid, root) {
			ticks += st.cpuTicks
		}
	}
	return time.Duration(ticks) * clockTick
}

// chromiumCPU returns the CPU time of the live Chromium processes this
// test process started (browser, renderers, GPU and utility processes).
func chromiumCPU() time.Duration {
	procs := allProcs()
	self := os.Getpid()
	var ticks int64
	for pid, st := range procs {
		if strings.HasPrefix(st.comm, "chrom") && pid != self && descends(procs, pid, self) {
			ticks += st.cpuTicks
		}
	}
	return time.Duration(ticks) * clockTick
}
