package rfb

// Integration tests against real servers: TigerVNC's Xvnc, x11vnc on Xvfb
// and QEMU (SeaBIOS and a busybox Linux guest). Each decoded framebuffer is
// compared pixel for pixel with the server's own screenshot. One server of
// each kind is shared by its subtests; the three kinds run in parallel.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kvmgate/framebuffer"
	"kvmgate/input"
	"kvmgate/internal/testserver"
)

// liveClient is a Client running Run into its own framebuffer.
type liveClient struct {
	c    *Client
	fb   *framebuffer.Framebuffer
	errc chan error
	stop context.CancelFunc
}

// connect dials addr, starts Run and waits for the first full frame.
func connect(t *testing.T, addr string, opts Options) *liveClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := Dial(ctx, addr, opts)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	lc := &liveClient{c: c, fb: framebuffer.New(), errc: make(chan error, 1), stop: stop}
	go func() { lc.errc <- c.Run(runCtx, lc.fb) }()
	t.Cleanup(lc.close)
	select {
	case <-c.FullFrame():
	case err := <-lc.errc:
		t.Fatalf("Run ended before the first frame: %v", err)
	case <-ctx.Done():
		t.Fatalf("no full frame from %s within 20s", addr)
	}
	return lc
}

func (lc *liveClient) close() {
	lc.stop()
	lc.c.Close()
}

// checkRunning fails the test if Run has ended.
func (lc *liveClient) checkRunning(t *testing.T) {
	t.Helper()
	select {
	case err := <-lc.errc:
		t.Fatalf("Run ended: %v", err)
	default:
	}
}

// tolerance decides whether a decoded picture is close enough to the
// server's; nil means pixel-exact.
type tolerance func(got, want *framebuffer.Canvas) (ok bool, detail string)

// lossy accepts JPEG-compressed pictures: mean absolute error per channel
// at most 4 levels and at most 1% of pixels off by more than 48 in any
// channel.
func lossy(got, want *framebuffer.Canvas) (bool, string) {
	var sum, far int
	for y := 0; y < got.H; y++ {
		a, b := got.Row(0, y, got.W), want.Row(0, y, want.W)
		for i := 0; i < len(a); i += 4 {
			worst := 0
			for k := 0; k < 3; k++ {
				d := int(a[i+k]) - int(b[i+k])
				if d < 0 {
					d = -d
				}
				sum += d
				worst = max(worst, d)
			}
			if worst > 48 {
				far++
			}
		}
	}
	n := got.W * got.H
	mean := float64(sum) / float64(3*n)
	ok := mean <= 4 && far*100 <= n
	return ok, fmt.Sprintf("mean abs error %.2f, %d of %d pixels off by >48", mean, far, n)
}

// describeDiff summarises how two same-sized canvases differ.
func describeDiff(got, want *framebuffer.Canvas) string {
	if got.W != want.W || got.H != want.H {
		return fmt.Sprintf("size %dx%d, server %dx%d", got.W, got.H, want.W, want.H)
	}
	n := 0
	var bounds framebuffer.Rect
	first := ""
	for y := 0; y < got.H; y++ {
		for x := 0; x < got.W; x++ {
			if g, w := got.At(x, y), want.At(x, y); g != w {
				if n == 0 {
					first = fmt.Sprintf("first at %d,%d: got %08x want %08x", x, y, g, w)
				}
				n++
				bounds = bounds.Union(framebuffer.Rect{X: x, Y: y, W: 1, H: 1})
			}
		}
	}
	return fmt.Sprintf("%d pixels differ within %v; %s", n, bounds, first)
}

// waitMatch waits until the client's picture equals (or, with tol, is close
// to) the server's screenshot, and fails the test after timeout.
func waitMatch(t *testing.T, lc *liveClient, srv testserver.Screen, tol tolerance, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		lc.checkRunning(t)
		got := lc.fb.Snapshot()
		want, err := srv.Screenshot()
		if err != nil {
			t.Fatal(err)
		}
		if got.W == want.W && got.H == want.H {
			if tol == nil {
				if got.Equal(want) {
					return
				}
				last = describeDiff(got, want)
			} else {
				ok, detail := tol(got, want)
				if ok {
					t.Logf("match within tolerance: %s", detail)
					return
				}
				last = detail
			}
		} else {
			last = describeDiff(got, want)
		}
		if time.Now().After(deadline) {
			t.Fatalf("decoded picture does not match the server's after %v: %s", timeout, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// encodingCase is one forced-encoding comparison.
type encodingCase struct {
	name    string
	encs    []Encoding // requested, raw is appended as the fallback
	quality int        // JPEG quality level, -1 for none
	tol     tolerance
	// used is the encoding that must have been received (0 = encs[0]);
	// -1 skips the check (the server may legitimately fall back).
	used Encoding
	// pf, if set, is the pixel format to ask for instead of NativeFormat.
	pf *PixelFormat
}

// quantised accepts pictures sent in a format with fewer bits per colour:
// every channel within one step of that format's colour scale.
func quantised(pf PixelFormat) tolerance {
	limit := [3]int{37, 37, 86} // a 256-entry colour map, BGR233 at worst
	if pf.TrueColour {
		step := func(m uint16) int { return 255/int(m) + 1 }
		limit = [3]int{step(pf.RedMax), step(pf.GreenMax), step(pf.BlueMax)}
	}
	return func(got, want *framebuffer.Canvas) (bool, string) {
		bad := 0
		for y := 0; y < got.H; y++ {
			a, b := got.Row(0, y, got.W), want.Row(0, y, want.W)
			for i := 0; i < len(a); i += 4 {
				for k := 0; k < 3; k++ {
					if d := int(a[i+k]) - int(b[i+k]); d > limit[k] || -d > limit[k] {
						bad++
						break
					}
				}
			}
		}
		return bad == 0, fmt.Sprintf("%d pixels beyond the %v quantisation step %v", bad, pf, limit)
	}
}

// runEncodingCases connects once per case, forcing its encoding, and
// compares the decoded screen with the server's.
func runEncodingCases(t *testing.T, srv testserver.Screen, cases []encodingCase) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := NewOptions()
			opts.Password = srv.Password()
			opts.Encodings = append(append([]Encoding(nil), tc.encs...), EncodingRaw)
			opts.QualityLevel = tc.quality
			opts.PixelFormat = tc.pf
			lc := connect(t, srv.Addr(), opts)
			waitMatch(t, lc, srv, tc.tol, 15*time.Second)
			used := tc.used
			if used == 0 {
				used = tc.encs[0]
			}
			st := lc.c.Stats()
			if used != -1 && st.Rects[used] == 0 {
				t.Errorf("no %v rectangles received; got %v", used, st.Rects)
			}
			t.Logf("rects %v, %d updates, %d bytes", st.Rects, st.Updates, st.BytesRead)
		})
	}
}

// typeText sends text as key events through the client.
func typeText(t *testing.T, c *Client, text string) {
	t.Helper()
	evs, err := input.TypeText("us", text)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if err := c.Key(ev); err != nil {
			t.Fatalf("key %+v: %v", ev, err)
		}
	}
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// colourMap8 is an 8-bit colour-map pixel format.
var colourMap8 = PixelFormat{BitsPerPixel: 8, Depth: 8}

func TestXvncIntegration(t *testing.T) {
	if testing.Short() {
		t.Skip("real-server test; skipped with -short")
	}
	t.Parallel()
	x := testserver.StartXvnc(t, testserver.XvncOptions{Width: 1024, Height: 768})
	x.Run(t, "xsetroot", "-solid", "#336699")
	x.Start(t, "xterm", "-geometry", "80x20+10+10", "-title", "kvmgate-term", "-e", "sh", "-c", "echo kvmgate xvnc test; sleep 3600")
	x.Start(t, "xclock", "-geometry", "160x160+600+60", "-update", "3600")
	x.Start(t, "xeyes", "-geometry", "150x100+800+400")
	x.WaitWindow(t, "kvmgate-term", 20*time.Second)
	x.Resize(t, 1021, 765)

	runEncodingCases(t, x, []encodingCase{
		{name: "raw", encs: []Encoding{EncodingRaw}, quality: -1},
		{name: "rre", encs: []Encoding{EncodingRRE}, quality: -1},
		{name: "hextile", encs: []Encoding{EncodingHextile}, quality: -1},
		{name: "tight", encs: []Encoding{EncodingTight}, quality: -1},
		{name: "tight-jpeg", encs: []Encoding{EncodingTight}, quality: 5, tol: lossy},
		{name: "zrle", encs: []Encoding{EncodingZRLE}, quality: -1},
		// TigerVNC has no Zlib, TRLE or TightPNG encoder.
		{name: "zrle-16bpp", encs: []Encoding{EncodingZRLE}, quality: -1, pf: &Format16, tol: quantised(Format16)},
		{name: "tight-16bpp", encs: []Encoding{EncodingTight}, quality: -1, pf: &Format16, tol: quantised(Format16)},
		{name: "hextile-8bpp", encs: []Encoding{EncodingHextile}, quality: -1, pf: &Format8, tol: quantised(Format8)},
		{name: "raw-colourmap", encs: []Encoding{EncodingRaw}, quality: -1, pf: &colourMap8, tol: quantised(colourMap8)},
	})

	t.Run("copyrect", func(t *testing.T) {
		opts := NewOptions()
		opts.Encodings = []Encoding{EncodingCopyRect, EncodingZRLE, EncodingRaw}
		lc := connect(t, x.Addr(), opts)
		// A scrolling xterm makes the X server copy areas.
		// It must scroll slowly: a burst is redrawn rather than copied.
		x.Start(t, "xterm", "-geometry", "60x10+300+420", "-title", "kvmgate-scroll", "-e",
			"sh", "-c", "for i in $(seq 1 40); do echo scrolling line $i; sleep 0.05; done; sleep 3600")
		x.WaitWindow(t, "kvmgate-scroll", 20*time.Second)
		waitFor(t, "CopyRect rectangles", 15*time.Second, func() bool {
			return lc.c.Stats().Rects[EncodingCopyRect] > 0
		})
		waitMatch(t, lc, x, nil, 15*time.Second)
	})

	t.Run("resize", func(t *testing.T) {
		lc := connect(t, x.Addr(), NewOptions())
		x.Resize(t, 800, 600)
		waitFor(t, "the client to see 800x600", 15*time.Second, func() bool {
			w, h := lc.c.Size()
			return w == 800 && h == 600
		})
		waitMatch(t, lc, x, nil, 15*time.Second)

		// And back, asked for by the client.
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := lc.c.SetDesktopSize(ctx, 1021, 765); err != nil {
			t.Fatalf("SetDesktopSize: %v", err)
		}
		if w, h, err := x.Size(); err != nil || w != 1021 || h != 765 {
			t.Fatalf("server size %dx%d (%v) after SetDesktopSize", w, h, err)
		}
		waitMatch(t, lc, x, nil, 15*time.Second)
		if w, h := lc.fb.Size(); w != 1021 || h != 765 {
			t.Errorf("framebuffer %dx%d", w, h)
		}
	})

	t.Run("keys", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "typed.txt")
		x.Start(t, "xterm", "-geometry", "40x5+100+500", "-title", "kvmgate-keys", "-e", "sh", "-c", "cat > "+out)
		x.WaitWindow(t, "kvmgate-keys", 20*time.Second)
		lc := connect(t, x.Addr(), NewOptions())
		// Without a window manager the focus follows the pointer.
		if err := lc.c.Pointer(input.PointerEvent{X: 200, Y: 530}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		const text = "Hello, KVM-gate! 123 ~/tmp_x"
		typeText(t, lc.c, text+"\n")
		waitFor(t, "the typed text in "+out, 15*time.Second, func() bool {
			b, _ := os.ReadFile(out)
			return strings.Contains(string(b), text+"\n")
		})
	})

	t.Run("clipboard", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "pasted.txt")
		x.Start(t, "xterm", "-geometry", "40x5+100+620", "-title", "kvmgate-paste", "-e", "sh", "-c", "cat > "+out)
		x.WaitWindow(t, "kvmgate-paste", 20*time.Second)
		lc := connect(t, x.Addr(), NewOptions())
		v := lc.fb.Subscribe()
		defer v.Close()
		var dst framebuffer.Canvas
		v.Take(&dst)

		// Server to client: double-clicking a word in an xterm selects it
		// (PRIMARY), which Xvnc passes on.
		click := func(x, y int, b input.Buttons) {
			for _, bs := range []input.Buttons{0, b, 0} {
				if err := lc.c.Pointer(input.PointerEvent{X: x, Y: y, Buttons: bs}); err != nil {
					t.Fatal(err)
				}
			}
		}
		click(30, 18, input.ButtonLeft)
		click(30, 18, input.ButtonLeft)
		waitFor(t, "the xterm selection on the client", 10*time.Second, func() bool {
			u := v.Take(&dst)
			return u.ClipboardChanged && u.Clipboard == "kvmgate"
		})

		// Client to server: our text becomes the selection, which a
		// middle click pastes into the cat xterm.
		const text = "pasted-by-kvmgate 42"
		if err := lc.c.Clipboard(text); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		click(200, 650, input.ButtonMiddle)
		time.Sleep(300 * time.Millisecond)
		typeText(t, lc.c, "\n")
		waitFor(t, "the pasted text in "+out, 10*time.Second, func() bool {
			b, _ := os.ReadFile(out)
			return strings.Contains(string(b), text)
		})
	})

	t.Run("password", func(t *testing.T) {
		xp := testserver.StartXvnc(t, testserver.XvncOptions{Width: 320, Height: 200, Password: "s3cr3t"})
		opts := NewOptions()
		opts.Password = "s3cr3t"
		lc := connect(t, xp.Addr(), opts)
		if lc.c.Security() != "VncAuth" {
			t.Errorf("security %q", lc.c.Security())
		}
		waitMatch(t, lc, xp, nil, 10*time.Second)

		opts.Password = "wrong"
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := Dial(ctx, xp.Addr(), opts)
		if err == nil {
			c.Close()
			t.Fatal("wrong password accepted")
		}
		var ae *AuthError
		if !errors.As(err, &ae) || ae.Reason == "" || !strings.Contains(err.Error(), ae.Reason) {
			t.Fatalf("wrong password: %v, want an AuthError with the server's reason", err)
		}
		t.Logf("wrong password: %v", err)
	})
}

// TestXvncTLSIntegration runs VeNCrypt against Xvnc: X509 with a verified
// certificate, the same certificate refused without its CA, and servers
// offering only anonymous TLS (refused with a clear error, or avoided when
// plain VncAuth is also allowed).
func TestXvncTLSIntegration(t *testing.T) {
	if testing.Short() {
		t.Skip("real-server test; skipped with -short")
	}
	t.Parallel()
	cert, pool := testCert(t)
	dir := t.TempDir()
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), 0o600); err != nil {
		t.Fatal(err)
	}
	const password = "s3cr3t"
	start := func(types string) *testserver.X {
		return testserver.StartXvnc(t, testserver.XvncOptions{Width: 320, Height: 200, Password: password,
			Args: []string{"-SecurityTypes", types, "-X509Cert", certFile, "-X509Key", keyFile}})
	}
	dial := func(addr string, o Options) (*Client, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		o.Password = password
		return Dial(ctx, addr, o)
	}

	x := start("X509Vnc")
	opts := NewOptions()
	opts.Password = password
	opts.TLSConfig = &tls.Config{RootCAs: pool, ServerName: "kvmgate-test"}
	lc := connect(t, x.Addr(), opts)
	if lc.c.Security() != "VeNCrypt X509Vnc" {
		t.Errorf("security %q", lc.c.Security())
	}
	waitMatch(t, lc, x, nil, 10*time.Second)

	var ue x509.UnknownAuthorityError
	if _, err := dial(x.Addr(), Options{TLSConfig: &tls.Config{ServerName: "kvmgate-test"}}); !errors.As(err, &ue) {
		t.Errorf("untrusted certificate: %v, want an unknown-authority error", err)
	}

	anon := start("TLSVnc")
	if _, err := dial(anon.Addr(), Options{}); err == nil || !strings.Contains(err.Error(), "anonymous Diffie-Hellman") {
		t.Errorf("anonymous TLS only: %v, want an error explaining anonymous TLS", err)
	}
	mixed := start("TLSVnc,VncAuth")
	for _, o := range []Options{{}, {TLSInsecure: true}} {
		c, err := dial(mixed.Addr(), o)
		if err != nil {
			t.Errorf("TLSVnc,VncAuth with %+v: %v", o, err)
			continue
		}
		if !strings.HasSuffix(c.Security(), "VncAuth") {
			t.Errorf("security %q, want plain VncAuth", c.Security())
		}
		c.Close()
	}
}

func TestX11vncIntegration(t *testing.T) {
	if testing.Short() {
		t.Skip("real-server test; skipped with -short")
	}
	t.Parallel()
	x := testserver.StartX11vnc(t, testserver.X11vncOptions{Width: 1021, Height: 765})
	x.Run(t, "xsetroot", "-solid", "#5a2d0c")
	x.Start(t, "xterm", "-geometry", "70x15+20+20", "-title", "kvmgate-term", "-e", "sh", "-c", "echo x11vnc; uname -a; sleep 3600")
	x.Start(t, "xeyes", "-geometry", "150x100+700+300")
	x.WaitWindow(t, "kvmgate-term", 20*time.Second)

	runEncodingCases(t, x, []encodingCase{
		{name: "raw", encs: []Encoding{EncodingRaw}, quality: -1},
		{name: "rre", encs: []Encoding{EncodingRRE}, quality: -1},
		{name: "hextile", encs: []Encoding{EncodingHextile}, quality: -1},
		{name: "zlib", encs: []Encoding{EncodingZlib}, quality: -1},
		{name: "tight", encs: []Encoding{EncodingTight}, quality: -1},
		{name: "tight-jpeg", encs: []Encoding{EncodingTight}, quality: 5, tol: lossy},
		{name: "zrle", encs: []Encoding{EncodingZRLE}, quality: -1},
		// x11vnc (libvncserver) has ZlibHex, which kvmgate does not
		// decode, and no TRLE or TightPNG.
	})

	t.Run("resize", func(t *testing.T) {
		lc := connect(t, x.Addr(), NewOptions())
		x.Resize(t, 900, 700)
		waitFor(t, "the client to see 900x700", 15*time.Second, func() bool {
			w, h := lc.c.Size()
			return w == 900 && h == 700
		})
		waitMatch(t, lc, x, nil, 15*time.Second)
	})
}

func TestQEMUSeaBIOSIntegration(t *testing.T) {
	if testing.Short() {
		t.Skip("real-server test; skipped with -short")
	}
	t.Parallel()
	q := testserver.StartQEMU(t, testserver.QEMUOptions{Guest: testserver.GuestSeaBIOS})
	q.WaitSettled(t, 60*time.Second)
	runEncodingCases(t, q, []encodingCase{
		{name: "raw", encs: []Encoding{EncodingRaw}, quality: -1},
		{name: "hextile", encs: []Encoding{EncodingHextile}, quality: -1},
		{name: "zlib", encs: []Encoding{EncodingZlib}, quality: -1},
		{name: "tight", encs: []Encoding{EncodingTight}, quality: -1},
		{name: "zrle", encs: []Encoding{EncodingZRLE}, quality: -1},
		{name: "tightpng", encs: []Encoding{EncodingTightPNG}, quality: -1},
	})
}

func TestQEMULinuxIntegration(t *testing.T) {
	if testing.Short() {
		t.Skip("real-server test; skipped with -short")
	}
	t.Parallel()
	q := testserver.StartQEMU(t, testserver.QEMUOptions{Guest: testserver.GuestLinux})
	q.WaitSettled(t, 150*time.Second)
	t.Run("keys", func(t *testing.T) {
		lc := connect(t, q.Addr(), NewOptions())
		waitFor(t, "the QEMU extended key event ack", 10*time.Second, func() bool {
			return lc.c.Info().Details["keys"] == "qemu-extended"
		})
		typeText(t, lc.c, "echo TYPED-OK > /dev/ttyS0\n")
		q.WaitSerial(t, "TYPED-OK", 30*time.Second)
		if _, ok := lc.c.LEDs(); !ok {
			t.Log("QEMU sent no LED state")
		}
	})
	// The console now shows the typed command too.
	runEncodingCases(t, q, []encodingCase{
		{name: "raw", encs: []Encoding{EncodingRaw}, quality: -1},
		{name: "hextile", encs: []Encoding{EncodingHextile}, quality: -1},
		{name: "zlib", encs: []Encoding{EncodingZlib}, quality: -1},
		{name: "zrle", encs: []Encoding{EncodingZRLE}, quality: -1},
		{name: "tight", encs: []Encoding{EncodingTight}, quality: -1},
		{name: "tightpng", encs: []Encoding{EncodingTightPNG}, quality: -1},
	})
}
