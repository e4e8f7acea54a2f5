package e2e

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"image"
	"image/png"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"kvmgate/framebuffer"
	"kvmgate/internal/browsertest"
	"kvmgate/internal/testserver"
	"kvmgate/server/websockify"
	"kvmgate/session"
	"kvmgate/session/sessiontest"

	_ "kvmgate/rfb" // registers vnc:// targets
)

// The noVNC tests run the real noVNC (npm @novnc/novnc, installed by
// scripts/install-deps.sh into test/novnc) in headless Chromium against
// kvmgate's websockify endpoint, in both modes, with real backends.

const novncWait = 30 * time.Second

// novncDir returns where noVNC's files are, failing the test when npm has
// not installed them.
func novncDir(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "test", "novnc", "node_modules", "@novnc", "novnc"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "core", "rfb.js")); err != nil {
		t.Fatalf("noVNC is not installed (run scripts/install-deps.sh, which runs npm ci in test/novnc): %v", err)
	}
	return dir
}

// novncEnv is kvmgate's websockify endpoint and the noVNC test page on one
// HTTP server.
type novncEnv struct {
	url string // http://127.0.0.1:port
	h   *websockify.Handler
	hub *session.Hub
}

// novncServe serves opts' endpoint at /websockify and noVNC at /novnc/.
// opts.Hub defaults to a hub that opens real backends.
func novncServe(t testing.TB, opts websockify.Options) *novncEnv {
	t.Helper()
	dir := novncDir(t)
	quiet := slog.New(slog.DiscardHandler)
	if opts.Hub == nil {
		opts.Hub = session.NewHub(session.Options{Logger: quiet})
		t.Cleanup(opts.Hub.Close)
	}
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	h, err := websockify.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/websockify", h)
	mux.Handle("/websockify/", h)
	page, err := filepath.Abs(filepath.Join("..", "test", "novnc", "kvmgate-novnc.html"))
	if err != nil {
		t.Fatal(err)
	}
	mux.HandleFunc("/novnc/kvmgate-novnc.html", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, page)
	})
	mux.HandleFunc("/favicon.ico", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.Handle("/novnc/", http.StripPrefix("/novnc/", http.FileServer(http.Dir(dir))))
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		hs.CloseClientConnections()
		h.Close()
		hs.Close()
	})
	return &novncEnv{url: hs.URL, h: h, hub: opts.Hub}
}

// novncOpen opens the noVNC page connected to wsURL, with extra query
// parameters (password, quality, compression, keep), and waits until noVNC
// is connected.
func novncOpen(t testing.TB, b *browsertest.Browser, pageBase, wsURL string, extra url.Values) *browsertest.Page {
	t.Helper()
	q := url.Values{"url": {wsURL}}
	for k, v := range extra {
		q[k] = v
	}
	p := b.NewPage(t, pageBase+"/novnc/kvmgate-novnc.html?"+q.Encode())
	p.WaitFor(t, `window.novncState === 'connected' && document.querySelector('#screen canvas') && document.querySelector('#screen canvas').width > 0`, novncWait)
	return p
}

// novncWS returns the WebSocket URL of env's endpoint with a token.
func (e *novncEnv) novncWS(token string) string {
	return "ws" + strings.TrimPrefix(e.url, "http") + "/websockify?token=" + url.QueryEscape(token)
}

// novncCanvas reads noVNC's canvas.
func novncCanvas(t testing.TB, p *browsertest.Page) *framebuffer.Canvas {
	t.Helper()
	c, err := p.CanvasPixels("#screen canvas")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// novncDiff describes how got differs from want, "" when equal.
func novncDiff(got, want *framebuffer.Canvas) string {
	if got.W != want.W || got.H != want.H {
		return fmt.Sprintf("size %dx%d, want %dx%d", got.W, got.H, want.W, want.H)
	}
	n, first := 0, ""
	for y := 0; y < got.H; y++ {
		for x := 0; x < got.W; x++ {
			if a, b := got.At(x, y), want.At(x, y); a != b {
				if n == 0 {
					first = fmt.Sprintf("first at %d,%d: %08x, want %08x", x, y, a, b)
				}
				n++
			}
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%d pixels differ, %s", n, first)
}

// novncWaitScreen waits until noVNC's canvas equals the server's own
// screenshot.
func novncWaitScreen(t *testing.T, p *browsertest.Page, srv testserver.Screen) {
	t.Helper()
	deadline := time.Now().Add(novncWait)
	for {
		want, err := srv.Screenshot()
		if err != nil {
			t.Fatal(err)
		}
		d := novncDiff(novncCanvas(t, p), want)
		if d == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("noVNC's canvas differs from the server's screenshot after %v: %s", novncWait, d)
		}
		time.Sleep(150 * time.Millisecond)
	}
}

// novncNoErrors fails if the page logged errors.
func novncNoErrors(t *testing.T, p *browsertest.Page) {
	t.Helper()
	if errs := p.Errors(); len(errs) > 0 {
		t.Errorf("page errors: %q", errs)
	}
}

// novncQEMUClients returns how many VNC clients QEMU has connected.
func novncQEMUClients(t *testing.T, q *testserver.QEMU) int {
	t.Helper()
	var info struct {
		Clients []struct{} `json:"clients"`
	}
	if err := q.QMP("query-vnc", nil, &info); err != nil {
		t.Fatal(err)
	}
	return len(info.Clients)
}

// TestNoVNCQEMU runs noVNC through kvmgate, in pass-through and in
// re-encode mode, against QEMU's VNC display of a Linux guest: the canvas
// equals QEMU's screendump, typed keys and noVNC's Ctrl-Alt-Del reach the
// guest (observed on its serial port), and in re-encode mode two noVNC
// tabs share one QEMU connection.
func TestNoVNCQEMU(t *testing.T) {
	t.Parallel()
	q := testserver.StartQEMU(t, testserver.QEMUOptions{Guest: testserver.GuestLinux})
	q.WaitSettled(t, 150*time.Second)
	b := browsertest.Launch(t)
	for _, mode := range []websockify.Mode{websockify.ModePassthrough, websockify.ModeReencode} {
		t.Run(string(mode), func(t *testing.T) {
			env := novncServe(t, websockify.Options{
				Lookup: func(tok string) (string, bool) { return q.Addr(), tok == "vm" },
				Mode:   mode,
			})
			p := novncOpen(t, b, env.url, env.novncWS("vm"), nil)
			novncWaitScreen(t, p, q)

			marker := "NOVNC-" + strings.ToUpper(string(mode))
			p.MustEval(t, `novnc.focus()`)
			p.TypeSlowly(t, "echo "+marker+"-$((6*7)) > /dev/ttyS0", qemuKeyGap)
			p.KeyPress(t, "Enter")
			q.WaitSerial(t, marker+"-42", novncWait)
			novncWaitScreen(t, p, q)

			before := strings.Count(q.Serial(), testserver.GuestCtrlAltDel)
			p.MustEval(t, `novnc.sendCtrlAltDel()`)
			deadline := time.Now().Add(novncWait)
			for strings.Count(q.Serial(), testserver.GuestCtrlAltDel) == before {
				if time.Now().After(deadline) {
					t.Fatal("noVNC's sendCtrlAltDel never reached the guest")
				}
				time.Sleep(50 * time.Millisecond)
			}

			if mode == websockify.ModeReencode {
				p2 := novncOpen(t, b, env.url, env.novncWS("vm"), nil)
				novncWaitScreen(t, p2, q)
				if n := novncQEMUClients(t, q); n != 1 {
					t.Errorf("two noVNC tabs: QEMU has %d VNC clients, want 1", n)
				}
				if s, v := env.hub.Counts(); s != 1 || v != 2 {
					t.Errorf("two noVNC tabs: hub has %d sessions and %d viewers, want 1 and 2", s, v)
				}
				novncNoErrors(t, p2)
				p2.Close(t)
			}
			novncNoErrors(t, p)
			p.Close(t)
		})
	}
}

// TestNoVNCXvnc runs noVNC through kvmgate in both modes against Xvnc
// showing an xterm: the canvas equals xwd's screenshot and typed text lands
// in the xterm.
func TestNoVNCXvnc(t *testing.T) {
	t.Parallel()
	x := testserver.StartXvnc(t, testserver.XvncOptions{Width: 800, Height: 600})
	x.Run(t, "xsetroot", "-solid", "#306020")
	out := filepath.Join(t.TempDir(), "typed.txt")
	x.Start(t, "xterm", "-geometry", "70x20+50+50", "-title", "kvmgate-novnc",
		"-e", "sh", "-c", `echo "noVNC types below"; exec cat > "$0"`, out)
	x.WaitWindow(t, "kvmgate-novnc", novncWait)
	b := browsertest.Launch(t)
	for i, mode := range []websockify.Mode{websockify.ModePassthrough, websockify.ModeReencode} {
		t.Run(string(mode), func(t *testing.T) {
			env := novncServe(t, websockify.Options{Target: x.Addr(), Mode: mode})
			p := novncOpen(t, b, env.url, "ws"+strings.TrimPrefix(env.url, "http")+"/websockify", nil)
			// Keyboard focus follows the pointer (no window manager): put it
			// on the xterm. noVNC centres its canvas in the page.
			cx, cy, err := p.ElementCenter("#screen canvas")
			if err != nil {
				t.Fatal(err)
			}
			p.MouseMove(t, cx-200, cy-150)
			novncWaitScreen(t, p, x)

			line := fmt.Sprintf("typed via noVNC %d: A-Z 0-9 ~!@#$%%", i)
			p.MustEval(t, `novnc.focus()`)
			p.Type(t, line)
			p.KeyPress(t, "Enter")
			deadline := time.Now().Add(novncWait)
			for {
				got, _ := os.ReadFile(out)
				if strings.Contains(string(got), line+"\n") {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("xterm got %q, want a line %q", got, line)
				}
				time.Sleep(50 * time.Millisecond)
			}
			novncWaitScreen(t, p, x)
			novncNoErrors(t, p)
			p.Close(t)
		})
	}
}

// novncBytesFor repaints the fake console completely and returns how many
// bytes noVNC received until its canvas showed the new picture exactly.
func novncBytesFor(t *testing.T, p *browsertest.Page, con *sessiontest.Console, fb *framebuffer.Framebuffer, seed int) int64 {
	t.Helper()
	var before int64
	if err := p.EvalInto(`novncWire.rx`, &before); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), novncWait)
	defer cancel()
	con.Paint(ctx, func(c *framebuffer.Canvas, b *framebuffer.Batch) {
		novncPhoto(c, seed)
		b.Damage(c.Bounds())
	})
	deadline := time.Now().Add(novncWait)
	for {
		d := novncDiff(novncCanvas(t, p), fb.Snapshot())
		if d == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("canvas never matched after a repaint: %s", d)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var after int64
	if err := p.EvalInto(`novncWire.rx`, &after); err != nil {
		t.Fatal(err)
	}
	return after - before
}

// novncPhoto paints smooth photo-like content with text-like strokes: what
// JPEG is for, and what refinement must still deliver exactly.
func novncPhoto(c *framebuffer.Canvas, seed int) {
	for y := 0; y < c.H; y++ {
		row := c.Row(0, y, c.W)
		for x := 0; x < c.W; x++ {
			p := row[4*x:]
			p[0] = byte((x*3 + seed*17) ^ y)
			p[1] = byte(y*2 + x/3 + seed)
			p[2] = byte((x + y + seed*5) / 2)
			p[3] = 0xff
			if y%24 < 12 && x%9 < 4 && (x/9+y/24+seed)%3 != 0 {
				p[0], p[1], p[2] = 250, 250, 240
			}
		}
	}
}

// TestNoVNCQualitySettings changes noVNC's qualityLevel and
// compressionLevel on a re-encoded console and checks what kvmgate sends:
// fewer bytes for the same picture at quality 0 than at 9, and at
// compression 9 than at 0. Every picture still ends up exact (lossy areas
// are refined).
func TestNoVNCQualitySettings(t *testing.T) {
	t.Parallel()
	fake := &sessiontest.Backend{W: 640, H: 400}
	hub := session.NewHub(session.Options{Open: fake.Open, Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(hub.Close)
	env := novncServe(t, websockify.Options{Target: "vnc://fake.test:5900", Mode: websockify.ModeReencode, Hub: hub})
	b := browsertest.Launch(t)
	ws := "ws" + strings.TrimPrefix(env.url, "http") + "/websockify"

	measure := func(quality, compression string) int64 {
		p := novncOpen(t, b, env.url, ws, url.Values{"quality": {quality}, "compression": {compression}})
		defer p.Close(t)
		s := onlyNoVNCSession(t, hub)
		// Let the settings reach the server, then measure two repaints.
		p.WaitFor(t, `novnc.qualityLevel === `+quality+` && novnc.compressionLevel === `+compression, novncWait)
		novncBytesFor(t, p, fake.Last(), s.Framebuffer(), 1)
		n := novncBytesFor(t, p, fake.Last(), s.Framebuffer(), 2)
		n += novncBytesFor(t, p, fake.Last(), s.Framebuffer(), 3)
		novncNoErrors(t, p)
		return n
	}
	q0, q9 := measure("0", "2"), measure("9", "2")
	t.Logf("bytes for two repaints: quality 0: %d, quality 9: %d", q0, q9)
	if q0 >= q9 {
		t.Errorf("quality 0 took %d bytes, quality 9 %d: want fewer at 0", q0, q9)
	}
	c0, c9 := measure("9", "0"), measure("9", "9")
	t.Logf("bytes for two repaints: compression 0: %d, compression 9: %d", c0, c9)
	if c9 >= c0 {
		t.Errorf("compression 9 took %d bytes, compression 0 %d: want fewer at 9", c9, c0)
	}
}

// onlyNoVNCSession returns the hub's single session.
func onlyNoVNCSession(t *testing.T, hub *session.Hub) *session.Session {
	t.Helper()
	deadline := time.Now().Add(novncWait)
	for {
		if l := hub.List(); len(l) == 1 {
			if s := hub.Lookup(l[0].ID); s != nil {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("hub sessions %+v, want one", hub.List())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// novncScriptServer is an RFB server whose output depends only on the
// order of the client's requests: after a 3.8 handshake it answers each
// FramebufferUpdateRequest with the next of a fixed list of updates (raw
// rectangles of a deterministic picture) and then stays quiet. It hashes
// what it sent and received, per connection.
type novncScriptServer struct {
	addr string

	mu sync.Mutex
	// mu guards the following.
	sent, received []string // SHA-256 per finished connection
	sentBytes      []int
}

func startNoVNCScriptServer(t *testing.T) *novncScriptServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &novncScriptServer{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.serve(nc)
			}()
		}
	}()
	return s
}

// hashingConn hashes what crosses nc.
type hashingConn struct {
	net.Conn
	in, out   hash.Hash
	sentTotal int
}

func (c *hashingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.in.Write(p[:n])
	return n, err
}

func (c *hashingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.out.Write(p[:n])
	c.sentTotal += n
	return n, err
}

const novncScriptW, novncScriptH = 320, 200

// novncScriptUpdates returns the fixed updates: a full frame, then bands.
func novncScriptUpdates() [][]byte {
	var ups [][]byte
	rect := func(b []byte, x, y, w, h, seed int) []byte {
		b = binary.BigEndian.AppendUint16(b, uint16(x))
		b = binary.BigEndian.AppendUint16(b, uint16(y))
		b = binary.BigEndian.AppendUint16(b, uint16(w))
		b = binary.BigEndian.AppendUint16(b, uint16(h))
		b = binary.BigEndian.AppendUint32(b, 0) // raw
		for j := 0; j < h; j++ {
			for i := 0; i < w; i++ {
				b = append(b, byte((x+i)*seed), byte(y+j+seed), byte((x+i)^(y+j)), 0)
			}
		}
		return b
	}
	ups = append(ups, rect([]byte{0, 0, 0, 1}, 0, 0, novncScriptW, novncScriptH, 1))
	for k := 0; k < 20; k++ {
		ups = append(ups, rect([]byte{0, 0, 0, 1}, 10*k, 5*k, 64, 48, k+2))
	}
	return ups
}

func (s *novncScriptServer) serve(nc net.Conn) {
	hc := &hashingConn{Conn: nc, in: sha256.New(), out: sha256.New()}
	defer func() {
		nc.Close()
		s.mu.Lock()
		s.sent = append(s.sent, hex.EncodeToString(hc.out.Sum(nil)))
		s.received = append(s.received, hex.EncodeToString(hc.in.Sum(nil)))
		s.sentBytes = append(s.sentBytes, hc.sentTotal)
		s.mu.Unlock()
	}()
	br := bufio.NewReader(hc)
	var buf [16]byte
	if _, err := io.WriteString(hc, "RFB 003.008\n"); err != nil {
		return
	}
	if _, err := io.ReadFull(br, buf[:12]); err != nil {
		return
	}
	hc.Write([]byte{1, 1}) // one security type: None
	if _, err := io.ReadFull(br, buf[:1]); err != nil {
		return
	}
	hc.Write([]byte{0, 0, 0, 0})
	if _, err := io.ReadFull(br, buf[:1]); err != nil { // ClientInit
		return
	}
	init := binary.BigEndian.AppendUint16(nil, novncScriptW)
	init = binary.BigEndian.AppendUint16(init, novncScriptH)
	init = append(init, 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0)
	init = binary.BigEndian.AppendUint32(init, 6)
	init = append(init, "script"...)
	hc.Write(init)
	ups := novncScriptUpdates()
	for {
		t, err := br.ReadByte()
		if err != nil {
			return
		}
		var skip int
		switch t {
		case 0: // SetPixelFormat
			skip = 19
		case 2: // SetEncodings
			if _, err := io.ReadFull(br, buf[:3]); err != nil {
				return
			}
			skip = 4 * int(binary.BigEndian.Uint16(buf[1:3]))
		case 3: // FramebufferUpdateRequest
			if _, err := io.ReadFull(br, buf[:9]); err != nil {
				return
			}
			if len(ups) > 0 {
				hc.Write(ups[0])
				ups = ups[1:]
			}
		case 4:
			skip = 7
		case 5:
			skip = 5
		case 6:
			if _, err := io.ReadFull(br, buf[:7]); err != nil {
				return
			}
			skip = int(int32(binary.BigEndian.Uint32(buf[3:7])))
			if skip < 0 {
				skip = -skip
			}
		default:
			return // nothing else is expected from noVNC here
		}
		if _, err := io.CopyN(io.Discard, br, int64(skip)); err != nil {
			return
		}
	}
}

// results waits until the script server has finished n connections and
// returns their hashes and sizes.
func (s *novncScriptServer) results(t *testing.T, n int) (sent, received []string, sentBytes []int) {
	t.Helper()
	deadline := time.Now().Add(novncWait)
	for {
		s.mu.Lock()
		if len(s.sent) >= n {
			defer s.mu.Unlock()
			return s.sent, s.received, s.sentBytes
		}
		s.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("script server finished fewer than %d connections", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// novncStartWebsockify runs Debian's websockify from addr's port to target.
func novncStartWebsockify(t *testing.T, target string) string {
	t.Helper()
	bin, err := exec.LookPath("websockify")
	if err != nil {
		t.Fatalf("websockify not found; install the Debian package websockify (scripts/install-deps.sh does): %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, addr, target)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		if t.Failed() {
			t.Logf("websockify output:\n%s", out.String())
		}
	})
	deadline := time.Now().Add(novncWait)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("websockify never listened on %s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestNoVNCPassthroughMatchesWebsockify runs the same deterministic RFB
// session through Debian's websockify and through kvmgate's pass-through:
// noVNC must receive exactly the bytes the server sent, and the server
// exactly the same bytes from noVNC, either way.
func TestNoVNCPassthroughMatchesWebsockify(t *testing.T) {
	t.Parallel()
	script := startNoVNCScriptServer(t)
	wsAddr := novncStartWebsockify(t, script.addr)
	env := novncServe(t, websockify.Options{Target: script.addr, Mode: websockify.ModePassthrough})
	b := browsertest.Launch(t)

	type digest struct {
		Bytes  int    `json:"bytes"`
		SHA256 string `json:"sha256"`
	}
	var got []digest
	for _, ws := range []string{"ws://" + wsAddr + "/websockify", "ws" + strings.TrimPrefix(env.url, "http") + "/websockify"} {
		p := novncOpen(t, b, env.url, ws, url.Values{"keep": {"1"}})
		// The last scripted update has arrived once noVNC asked for one
		// more: 21 updates answer 21 requests.
		want := 0
		for _, u := range novncScriptUpdates() {
			want += len(u)
		}
		p.WaitFor(t, fmt.Sprintf(`novncWire.rx >= %d`, want+12+2+4+4+16+4+6), novncWait)
		var d digest
		if err := p.EvalInto(`novncWire.digest()`, &d); err != nil {
			t.Fatal(err)
		}
		got = append(got, d)
		novncNoErrors(t, p)
		p.Close(t)
	}
	sent, received, sentBytes := script.results(t, 2)
	for i, name := range []string{"websockify", "kvmgate"} {
		if got[i].Bytes != sentBytes[i] || got[i].SHA256 != sent[i] {
			t.Errorf("%s: noVNC received %d bytes (sha256 %s), the server sent %d (%s)", name, got[i].Bytes, got[i].SHA256, sentBytes[i], sent[i])
		}
	}
	if sent[0] != sent[1] || received[0] != received[1] {
		t.Errorf("the two relays carried different sessions: sent %v, received %v", sent, received)
	}
}

// novncCrop returns the w×h top-left part of c.
func novncCrop(c *framebuffer.Canvas, w, h int) *framebuffer.Canvas {
	out, err := framebuffer.NewCanvas(w, h)
	if err != nil || c.W < w || c.H < h {
		return c
	}
	out.CopyFrom(c, framebuffer.Rect{W: w, H: h})
	return out
}

// novncContains reports whether want appears, pixel for pixel, somewhere in
// big. It anchors on want's first pixel that differs from its top-left one.
func novncContains(big, want *framebuffer.Canvas) bool {
	if big.W < want.W || big.H < want.H {
		return false
	}
	bg := want.At(0, 0)
	ax, ay := -1, -1
	for y := 0; y < want.H && ax < 0; y++ {
		for x := 0; x < want.W; x++ {
			if want.At(x, y) != bg {
				ax, ay = x, y
				break
			}
		}
	}
	if ax < 0 {
		ax, ay = 0, 0
	}
	anchor := want.At(ax, ay)
	for sy := ay; sy <= big.H-want.H+ay; sy++ {
		for sx := ax; sx <= big.W-want.W+ax; sx++ {
			if big.At(sx, sy) != anchor {
				continue
			}
			dx, dy := sx-ax, sy-ay
			same := true
			for y := 0; y < want.H && same; y++ {
				same = string(big.Row(dx, dy+y, want.W)) == string(want.Row(0, y, want.W))
			}
			if same {
				return true
			}
		}
	}
	return false
}

// TestRFBListenTigerVNCViewer connects TigerVNC's vncviewer, running on an
// Xvfb display, to kvmgate's plain RFB listener (serve --rfb-listen)
// re-encoding QEMU's console, and compares xwd's screenshot of the viewer's
// window with QEMU's screendump.
func TestRFBListenTigerVNCViewer(t *testing.T) {
	t.Parallel()
	q := testserver.StartQEMU(t, testserver.QEMUOptions{})
	q.WaitSettled(t, 150*time.Second)
	hub := session.NewHub(session.Options{Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(hub.Close)
	h, err := websockify.New(websockify.Options{Hub: hub, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.ServeRFB(ctx, ln, "vnc://"+q.Addr()) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeRFB: %v", err)
		}
	})

	x := testserver.StartX11vnc(t, testserver.X11vncOptions{Width: 1024, Height: 768})
	home := t.TempDir() // vncviewer keeps its settings under $HOME
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	x.Start(t, "sh", "-c", `HOME="$0" exec vncviewer -geometry +0+0 -Shared -RemoteResize=0 -MenuKey= -SecurityTypes=None,VncAuth "$1"`,
		home, "127.0.0.1::"+port)

	deadline := time.Now().Add(novncWait)
	for {
		shot, err := x.Screenshot()
		if err != nil {
			t.Fatal(err)
		}
		want, err := q.Screenshot()
		if err != nil {
			t.Fatal(err)
		}
		// The viewer may place the desktop anywhere in its window: find
		// where it shows the console, then compare pixel for pixel.
		if novncContains(shot, want) {
			break
		}
		d := novncDiff(novncCrop(shot, want.W, want.H), want)
		if time.Now().After(deadline) {
			novncSavePNG(t, "vncviewer-screen", shot)
			novncSavePNG(t, "vncviewer-want", want)
			t.Fatalf("vncviewer's window differs from QEMU's screendump after %v: %s", novncWait, d)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if s, v := hub.Counts(); s != 1 || v != 1 {
		t.Errorf("hub has %d sessions and %d viewers, want 1 and 1", s, v)
	}
}

// novncSavePNG writes c as NAME.png into $KVMGATE_TEST_ARTIFACTS, when
// set, for a person to look at after a failure.
func novncSavePNG(t testing.TB, name string, c *framebuffer.Canvas) {
	dir := os.Getenv("KVMGATE_TEST_ARTIFACTS")
	if dir == "" {
		return
	}
	img := &image.RGBA{Pix: c.Pix, Stride: c.Stride, Rect: image.Rect(0, 0, c.W, c.H)}
	f, err := os.Create(filepath.Join(dir, name+".png"))
	if err != nil {
		t.Logf("saving %s: %v", name, err)
		return
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Logf("saving %s: %v", name, err)
	}
	t.Logf("saved %s", f.Name())
}

// The relay benchmark: the same 60 s terminal workload on Xvnc watched by
// noVNC through Debian's websockify, kvmgate's pass-through and kvmgate's
// re-encoding, each proxy in its own process so that its CPU time can be
// read when it exits. Run it with
//
//	go test -run '^$' -bench BenchmarkNoVNCRelays -benchtime 1x ./e2e/
//
// KVMGATE_NOVNC_BENCH_SECONDS shortens the workload (default 60).

// TestNoVNCBenchHelper is the proxy process of BenchmarkNoVNCRelays: with
// KVMGATE_NOVNC_HELPER set to a mode it serves KVMGATE_NOVNC_TARGET through
// the websockify handler, prints its address and runs until its standard
// input closes. Without the variable it does nothing.
func TestNoVNCBenchHelper(t *testing.T) {
	mode := os.Getenv("KVMGATE_NOVNC_HELPER")
	if mode == "" {
		return
	}
	quiet := slog.New(slog.DiscardHandler)
	hub := session.NewHub(session.Options{Logger: quiet})
	defer hub.Close()
	h, err := websockify.New(websockify.Options{
		Target: os.Getenv("KVMGATE_NOVNC_TARGET"), Mode: websockify.Mode(mode), Hub: hub, Logger: quiet,
		CheckOrigin: func(*http.Request) bool { return true },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h}
	go hs.Serve(ln)
	fmt.Printf("LISTEN %s\n", ln.Addr())
	io.Copy(io.Discard, os.Stdin)
	hs.Close()
}

// novncProxy is a proxy process whose CPU time is known once it exits.
type novncProxy struct {
	addr  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

// stop ends the proxy and returns its CPU time.
func (p *novncProxy) stop(b *testing.B) time.Duration {
	if p.stdin != nil {
		p.stdin.Close()
	} else {
		p.cmd.Process.Signal(syscall.SIGTERM)
	}
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
	st := p.cmd.ProcessState
	return st.UserTime() + st.SystemTime()
}

func novncStartHelper(b *testing.B, mode websockify.Mode, target string) *novncProxy {
	cmd := exec.Command(os.Args[0], "-test.run", "^TestNoVNCBenchHelper$")
	cmd.Env = append(os.Environ(), "KVMGATE_NOVNC_HELPER="+string(mode), "KVMGATE_NOVNC_TARGET="+target)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "LISTEN ") {
		b.Fatalf("helper said %q: %v", line, err)
	}
	go io.Copy(io.Discard, stdout)
	return &novncProxy{addr: strings.TrimSpace(strings.TrimPrefix(line, "LISTEN ")), cmd: cmd, stdin: stdin}
}

func novncStartWebsockifyProc(b *testing.B, target string) *novncProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	// --run-once serves the one connection in the main process, so its
	// CPU time is the process's.
	cmd := exec.Command("websockify", "--run-once", addr, target)
	if err := cmd.Start(); err != nil {
		b.Fatalf("websockify (Debian package websockify): %v", err)
	}
	for deadline := time.Now().Add(novncWait); ; {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("websockify never listened")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &novncProxy{addr: addr, cmd: cmd}
}

// novncLatencyJS measures key-to-screen latency in the page: it sends 'x'
// through noVNC n times and waits each time until the given canvas region
// changes, polling every few milliseconds.
const novncLatencyJS = `(async (x, y, w, h, n) => {
	const ctx = document.querySelector('#screen canvas').getContext('2d');
	const grab = () => {
		const d = ctx.getImageData(x, y, w, h).data;
		let s = 0;
		for (let i = 0; i < d.length; i += 4) s = (s * 31 + d[i] + d[i + 1] * 7 + d[i + 2] * 13) >>> 0;
		return s;
	};
	const out = [];
	for (let k = 0; k < n; k++) {
		const before = grab();
		const t0 = performance.now();
		novnc.sendKey(0x78, 'KeyX');
		while (grab() === before && performance.now() - t0 < 2000) {
			await new Promise((r) => setTimeout(r, 1));
		}
		out.push(performance.now() - t0);
		await new Promise((r) => setTimeout(r, 150));
	}
	return out;
})`

func BenchmarkNoVNCRelays(b *testing.B) {
	secs := 60
	if s := os.Getenv("KVMGATE_NOVNC_BENCH_SECONDS"); s != "" {
		fmt.Sscan(s, &secs)
	}
	x := testserver.StartXvnc(b, testserver.XvncOptions{Width: 1024, Height: 768})
	x.Run(b, "xsetroot", "-solid", "#204060")
	// The echo xterm, where the latency keys go (focus follows the pointer).
	x.Start(b, "xterm", "-geometry", "60x10+560+500", "-title", "novnc-echo", "-e", "cat")
	x.WaitWindow(b, "novnc-echo", novncWait)
	env := novncServe(b, websockify.Options{}) // serves the noVNC page
	br := browsertest.Launch(b)

	type result struct {
		name           string
		wall           time.Duration
		rx, tx         int64
		cpu            time.Duration
		p50, p90, pmax float64
	}
	var results []result
	for b.Loop() {
		results = results[:0]
		for _, relay := range []string{"websockify", "kvmgate pass-through", "kvmgate re-encode"} {
			var px *novncProxy
			switch relay {
			case "websockify":
				px = novncStartWebsockifyProc(b, x.Addr())
			case "kvmgate pass-through":
				px = novncStartHelper(b, websockify.ModePassthrough, x.Addr())
			default:
				px = novncStartHelper(b, websockify.ModeReencode, x.Addr())
			}
			p := novncOpen(b, br, env.url, "ws://"+px.addr+"/websockify", nil)
			cx, cy, err := p.ElementCenter("#screen canvas")
			if err != nil {
				b.Fatal(err)
			}
			// Pointer over the echo xterm: canvas (760, 560).
			p.MouseMove(b, cx-512+760, cy-384+560)
			time.Sleep(time.Second)
			var rx0, tx0 int64
			p.EvalInto(`novncWire.rx`, &rx0)
			p.EvalInto(`novncWire.tx`, &tx0)
			// The workload: 10 lines every 100 ms in a scrolling xterm.
			start := time.Now()
			wl := x.Start(b, "xterm", "-geometry", "80x30+20+20", "-title", "novnc-work", "-e", "sh", "-c",
				fmt.Sprintf(`n=0; while [ $n -lt %d ]; do i=0; while [ $i -lt 10 ]; do echo "$n.$i the quick brown fox jumps over the lazy dog 0123456789 ABCDEFGHIJ"; i=$((i+1)); done; n=$((n+1)); sleep 0.1; done`, secs*10))
			select {
			case <-wl.Done():
			case <-time.After(4 * time.Duration(secs) * time.Second):
				b.Fatal("workload did not finish")
			}
			wall := time.Since(start)
			time.Sleep(time.Second)
			var rx1, tx1 int64
			p.EvalInto(`novncWire.rx`, &rx1)
			p.EvalInto(`novncWire.tx`, &tx1)
			novncSavePNG(b, "bench-"+strings.ReplaceAll(relay, " ", "-"), novncCanvas(b, p))
			var lat []float64
			raw, err := p.Eval(novncLatencyJS + `(560, 500, 200, 60, 10)`)
			if err != nil {
				b.Fatal(err)
			}
			if err := json.Unmarshal(raw, &lat); err != nil {
				b.Fatal(err)
			}
			p.Close(b)
			cpu := px.stop(b)
			sort.Float64s(lat)
			results = append(results, result{relay, wall, rx1 - rx0, tx1 - tx0, cpu, lat[len(lat)/2], lat[len(lat)*9/10], lat[len(lat)-1]})
		}
	}
	for _, r := range results {
		b.Logf("%-22s workload %5.1fs  bytes to noVNC %9d  from noVNC %7d  proxy CPU %6.2fs  key-to-screen p50 %5.1fms p90 %5.1fms max %5.1fms",
			r.name, r.wall.Seconds(), r.rx, r.tx, r.cpu.Seconds(), r.p50, r.p90, r.pmax)
		key := strings.ReplaceAll(r.name, " ", "-")
		b.ReportMetric(float64(r.rx), key+"-bytes")
		b.ReportMetric(r.cpu.Seconds(), key+"-cpu-s")
		b.ReportMetric(r.p50, key+"-p50-ms")
	}
}

// TestNoVNCClipboardAndPassword connects noVNC to a re-encoded console that
// needs a per-session VNC password, then exchanges non-Latin-1 clipboard
// text both ways, which only the Extended Clipboard can carry intact.
func TestNoVNCClipboardAndPassword(t *testing.T) {
	t.Parallel()
	fake := &sessiontest.Backend{W: 320, H: 200}
	hub := session.NewHub(session.Options{Open: fake.Open, Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(hub.Close)
	env := novncServe(t, websockify.Options{
		Target: "vnc://fake.test:5900", Mode: websockify.ModeReencode, Hub: hub,
		Password: func(string) string { return "pa55word" },
	})
	b := browsertest.Launch(t)
	ws := "ws" + strings.TrimPrefix(env.url, "http") + "/websockify"

	// A wrong password is refused.
	bad := b.NewPage(t, env.url+"/novnc/kvmgate-novnc.html?"+url.Values{"url": {ws}, "password": {"nope"}}.Encode())
	bad.WaitFor(t, `window.novncSecurityFailure !== undefined && window.novncState.startsWith('disconnected')`, novncWait)
	bad.Close(t)

	p := novncOpen(t, b, env.url, ws, url.Values{"password": {"pa55word"}})
	s := onlyNoVNCSession(t, hub)
	<-fake.Last().Ready

	const toConsole = "Grüße aus noVNC ✓\nzweite Zeile"
	arg, _ := json.Marshal(toConsole)
	p.MustEval(t, `novnc.clipboardPasteFrom(`+string(arg)+`)`)
	deadline := time.Now().Add(novncWait)
	for fake.Last().ClipboardText() != toConsole {
		if time.Now().After(deadline) {
			t.Fatalf("console clipboard %q, want %q", fake.Last().ClipboardText(), toConsole)
		}
		time.Sleep(20 * time.Millisecond)
	}

	const toBrowser = "从控制台 → noVNC"
	s.Framebuffer().SetClipboard(toBrowser)
	want, _ := json.Marshal(toBrowser)
	p.WaitFor(t, `window.novncClipboard === `+string(want), novncWait)
	novncNoErrors(t, p)
}
