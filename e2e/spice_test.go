package e2e

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"kvmgate/backend"
	"kvmgate/client"
	"kvmgate/framebuffer"
	"kvmgate/internal/browsertest"
	"kvmgate/internal/testserver"
	"kvmgate/server"
	"kvmgate/spice"
)

// spiceQEMU starts a SeaBIOS machine with a QXL card and a SPICE server on a
// free loopback port (no ticket), with further QEMU arguments, and returns
// it with its spice:// target.
func spiceQEMU(t *testing.T, extra ...string) (*testserver.QEMU, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	args := append([]string{"-spice", "port=" + strconv.Itoa(port) + ",addr=127.0.0.1,disable-ticketing=on"}, extra...)
	q := testserver.StartQEMU(t, testserver.QEMUOptions{VGA: "qxl", ExtraArgs: args})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(wait)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return q, "spice://" + addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("SPICE port %s never opened: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// screenChange returns the bounds of what differs between a and b.
func screenChange(a, b *framebuffer.Canvas) framebuffer.Rect {
	var r framebuffer.Rect
	for y := 0; y < a.H; y++ {
		for x := 0; x < a.W; x++ {
			if a.At(x, y)&0xffffff != b.At(x, y)&0xffffff {
				r = r.Union(framebuffer.Rect{X: x, Y: y, W: 1, H: 1})
			}
		}
	}
	return r
}

// stillScreen waits until QEMU's screen stays the same (but for the
// blinking cursor's cell) for a second and is not black, and returns it.
func stillScreen(t *testing.T, q *testserver.QEMU) *framebuffer.Canvas {
	t.Helper()
	deadline := time.Now().Add(2 * wait)
	var prev *framebuffer.Canvas
	since := time.Now()
	for {
		c, err := q.Screenshot()
		if err != nil {
			t.Fatal(err)
		}
		changed := prev == nil || c.W != prev.W || c.H != prev.H
		if !changed {
			if d := screenChange(prev, c); d.W > 9 || d.H > 16 {
				changed = true
			}
		}
		if changed || screenChange(c, blackCanvas(c.W, c.H)).Empty() {
			prev, since = c, time.Now()
		} else if time.Since(since) > time.Second {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatal("QEMU's screen never settled")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func blackCanvas(w, h int) *framebuffer.Canvas {
	c, _ := framebuffer.NewCanvas(w, h)
	c.Fill(c.Bounds(), 0xff000000)
	return c
}

// TestSPICEBrowser serves a QEMU SeaBIOS machine's SPICE display (QXL)
// through kvmgate's spice:// backend to the console page in headless
// Chromium: the canvas equals QEMU's screendump, and Esc typed in the page
// opens SeaBIOS's boot menu, which the canvas then shows.
func TestSPICEBrowser(t *testing.T) {
	t.Parallel()
	b := browsertest.Launch(t)
	// The boot menu prompt stays a minute, far longer than the test
	// needs, so the change after Esc is Esc's doing.
	q, target := spiceQEMU(t, "-boot", "menu=on,splash-time=60000")
	_, hs := startServer(t, server.Options{Target: target})
	p := b.NewPage(t, hs.URL+"/")
	waitConnected(t, p)

	prompt := stillScreen(t, q)
	waitScreen(t, p, q)

	p.MustEval(t, el+`.focus()`)
	p.KeyPress(t, "Escape")
	deadline := time.Now().Add(wait)
	for {
		c, err := q.Screenshot()
		if err != nil {
			t.Fatal(err)
		}
		if c.W == prompt.W && c.H == prompt.H {
			if d := screenChange(prompt, c); d.H > 16 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("Esc typed in the browser did not change the guest's screen")
		}
		time.Sleep(100 * time.Millisecond)
	}
	menu := stillScreen(t, q)
	waitScreen(t, p, q)
	if d := screenChange(prompt, menu); d.H <= 16 {
		t.Errorf("the boot menu screen differs from the prompt only in %v", d)
	}

	// A second tab shares the SPICE session: a second SPICE client would
	// take the VM's display away from the first.
	p2 := b.NewPage(t, hs.URL+"/")
	waitConnected(t, p2)
	waitScreen(t, p2, q)
	if ids := spiceConnections(t, q); len(ids) != 1 {
		t.Errorf("two tabs: QEMU's SPICE server has connections %v, want one", ids)
	}
	noErrors(t, p, p2)
}

// spiceConnections returns the connection ids of the SPICE channels QEMU
// has open, with the number of channels of each.
func spiceConnections(t *testing.T, q *testserver.QEMU) map[int]int {
	t.Helper()
	var info struct {
		Channels []struct {
			ConnectionID int `json:"connection-id"`
			ChannelType  int `json:"channel-type"`
		} `json:"channels"`
	}
	if err := q.QMP("query-spice", nil, &info); err != nil {
		t.Fatal(err)
	}
	ids := map[int]int{}
	for _, c := range info.Channels {
		ids[c.ConnectionID]++
	}
	return ids
}

// BenchmarkSPICEConsoleBytes measures the bytes of a Linux console
// workload on a QXL (KMS) framebuffer: from QEMU's SPICE server to kvmgate,
// and from kvmgate to the browser's canvas client, for each image
// compression kvmgate can ask the server for. The workload, typed in the
// page, lists /bin KVMGATE_SPICE_BENCH_ITERS times (default 60), 0.2 s
// apart.
func BenchmarkSPICEConsoleBytes(b *testing.B) {
	iters := 60
	if s := os.Getenv("KVMGATE_SPICE_BENCH_ITERS"); s != "" {
		fmt.Sscan(s, &iters)
	}
	port := freeTCPPort(b)
	q := testserver.StartQEMU(b, testserver.QEMUOptions{
		Guest: testserver.GuestLinux, Modules: []string{"qxl"}, ColdBoot: true, VGA: "qxl",
		ExtraArgs: []string{"-spice", "port=" + strconv.Itoa(port) + ",addr=127.0.0.1,disable-ticketing=on"},
	})
	q.WaitSettled(b, testserver.LinuxBootTimeout)
	br := browsertest.Launch(b)
	for _, comp := range []string{"auto_lz", "lz4", "quic", "off"} {
		b.Run(comp, func(b *testing.B) {
			var sc atomic.Pointer[spice.Client]
			_, hs := startServerTB(b, server.Options{
				Target: "spice://127.0.0.1:" + strconv.Itoa(port) + "?compression=" + comp,
				Open: func(ctx context.Context, target string) (backend.Console, error) {
					c, err := backend.Open(ctx, target, backend.Secrets{})
					if c, ok := c.(*spice.Client); ok {
						sc.Store(c)
					}
					return c, err
				},
			})
			// One SPICE client at a time: this server (and its SPICE
			// client) ends with the sub-benchmark.
			p := br.NewPage(b, hs.URL+"/")
			p.WaitFor(b, el+` && `+el+`.state === 'connected' && `+el+`.stats().framesDrawn > 0`, wait)
			waitScreenTB(b, p, q)
			for b.Loop() {
				in0, out0 := sc.Load().BytesReceived(), bytesSent(b, hs.URL)
				start := time.Now()
				p.MustEval(b, el+`.focus()`)
				p.Type(b, fmt.Sprintf("for i in $(seq %d); do ls -l /bin | head -40; sleep 0.2; done; echo SPICE-WL-DONE-%s > /dev/ttyS0\n", iters, comp))
				q.WaitSerial(b, "SPICE-WL-DONE-"+comp, time.Duration(iters)*time.Second+time.Minute)
				wall := time.Since(start)
				q.WaitSettled(b, time.Minute)
				waitScreenTB(b, p, q)
				in, out := sc.Load().BytesReceived()-in0, bytesSent(b, hs.URL)-out0
				b.ReportMetric(float64(in)/1e3, "kB-spice")
				b.ReportMetric(float64(out)/1e3, "kB-browser")
				b.ReportMetric(float64(out)/float64(in), "browser/spice")
				b.ReportMetric(wall.Seconds(), "s-workload")
			}
			p.Close(b)
		})
	}
}

func freeTCPPort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// bytesSent reads kvmgate_bytes_sent_total from the server's metrics.
func bytesSent(t testing.TB, base string) uint64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "kvmgate_bytes_sent_total "); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no kvmgate_bytes_sent_total in /metrics")
	return 0
}

// startServerTB is startServer for benchmarks.
func startServerTB(tb testing.TB, opts server.Options) (*server.Server, *httptest.Server) {
	tb.Helper()
	opts.Client = client.FS
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	srv, err := server.New(opts)
	if err != nil {
		tb.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	tb.Cleanup(func() {
		hs.CloseClientConnections()
		srv.Close()
		hs.Close()
	})
	return srv, hs
}

// waitScreenTB is waitScreen for benchmarks.
func waitScreenTB(tb testing.TB, p *browsertest.Page, q *testserver.QEMU) {
	tb.Helper()
	deadline := time.Now().Add(wait)
	for {
		want, err := q.Screenshot()
		if err != nil {
			tb.Fatal(err)
		}
		got, err := p.CanvasPixels("kvm-console")
		if err != nil {
			tb.Fatal(err)
		}
		diff := compare(got, want)
		if diff == "" {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("the browser's canvas differs from QEMU's screendump after %v: %s", wait, diff)
		}
		time.Sleep(150 * time.Millisecond)
	}
}
