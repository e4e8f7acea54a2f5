package testserver

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"kvmgate/framebuffer"
)

// XvncOptions configures StartXvnc. The zero value is a 1024×768, 24-bit
// screen without authentication.
type XvncOptions struct {
	// Width and Height are the initial screen size (default 1024×768).
	Width, Height int
	// Depth is the X visual depth (default 24).
	Depth int
	// Password, when set, makes the server require VNC authentication
	// (SecurityTypes VncAuth) with this password (8 bytes are significant).
	Password string
	// Args are extra Xvnc arguments, such as "-CompareFB", "0".
	Args []string
}

// X11vncOptions configures StartX11vnc. The zero value is a 1024×768,
// 24-bit Xvfb screen without authentication.
type X11vncOptions struct {
	// Width and Height are the initial screen size (default 1024×768).
	Width, Height int
	// MaxWidth and MaxHeight bound what Resize can reach: Xvfb cannot grow
	// its screen beyond the size it started with (default: the larger of the
	// initial size and 1920×1200).
	MaxWidth, MaxHeight int
	// Password, when set, makes x11vnc require VNC authentication with this
	// password.
	Password string
	// Args are extra x11vnc arguments, such as "-ncache", "0".
	Args []string
}

// X is a running X server reachable over VNC: TigerVNC's Xvnc, or Xvfb
// exported by x11vnc.
type X struct {
	display  int
	addr     string
	password string
	xvfb     bool
	server   *Proc // Xvnc or Xvfb
	vnc      *Proc // x11vnc, nil for Xvnc

	mu     sync.Mutex // guards output and modes
	output string     // RandR output name, found on first Resize
	modes  int        // RandR modes added by Resize
}

const startTimeout = 30 * time.Second

// StartXvnc starts TigerVNC's Xvnc on a free X display and a free port on
// 127.0.0.1, and waits until it accepts VNC connections. The server is killed
// when the test ends.
func StartXvnc(t testing.TB, o XvncOptions) *X {
	t.Helper()
	bin := need(t, "Xvnc")
	w, h := orDefault(o.Width, 1024), orDefault(o.Height, 768)
	depth := orDefault(o.Depth, 24)
	security := []string{"-SecurityTypes", "None"}
	if o.Password != "" {
		security = []string{"-SecurityTypes", "VncAuth", "-PasswordFile", vncPasswordFile(t, o.Password)}
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		args := []string{
			"-geometry", fmt.Sprintf("%dx%d", w, h),
			"-depth", strconv.Itoa(depth),
			"-rfbport", strconv.Itoa(port),
			// -interface alone: -localhost would add [::1] as well.
			"-interface", "127.0.0.1",
			"-AlwaysShared",
			"-nolisten", "tcp", "-noreset",
			"-desktop", "kvmgate-test",
		}
		args = append(args, security...)
		args = append(args, o.Args...)
		x, err := startXServer(t, "Xvnc", bin, args)
		if err != nil {
			lastErr = err
			continue
		}
		x.addr = fmt.Sprintf("127.0.0.1:%d", port)
		x.password = o.Password
		if err := waitTCP(x.server, x.addr, startTimeout); err != nil {
			x.server.Kill()
			lastErr = err
			continue
		}
		return x
	}
	t.Fatalf("testserver: Xvnc did not start: %v", lastErr)
	return nil
}

// StartX11vnc starts Xvfb on a free X display and x11vnc exporting it on a
// free port on 127.0.0.1, and waits until x11vnc accepts VNC connections.
// Both are killed when the test ends.
func StartX11vnc(t testing.TB, o X11vncOptions) *X {
	t.Helper()
	xvfbBin := need(t, "Xvfb")
	vncBin := need(t, "x11vnc")
	w, h := orDefault(o.Width, 1024), orDefault(o.Height, 768)
	maxW, maxH := orDefault(o.MaxWidth, max(w, 1920)), orDefault(o.MaxHeight, max(h, 1200))
	if w > maxW || h > maxH {
		t.Fatalf("testserver: X11vnc size %dx%d larger than its maximum %dx%d", w, h, maxW, maxH)
	}
	x, err := startXServer(t, "Xvfb", xvfbBin, []string{
		"-screen", "0", fmt.Sprintf("%dx%dx24", maxW, maxH),
		// Without -noreset the server resets, losing the root colour and
		// the size, each time its last client leaves.
		"-nolisten", "tcp", "-noreset",
	})
	if err != nil {
		t.Fatalf("testserver: Xvfb did not start: %v", err)
	}
	x.xvfb = true
	if w != maxW || h != maxH {
		if err := x.resize(w, h); err != nil {
			t.Fatalf("testserver: Xvfb: %v", err)
		}
	}
	auth := []string{"-nopw"}
	if o.Password != "" {
		f := filepath.Join(tempDir(t, "kvmgate-x11vnc-"), "passwd")
		if out, err := exec.Command(vncBin, "-storepasswd", o.Password, f).CombinedOutput(); err != nil {
			t.Fatalf("testserver: x11vnc -storepasswd: %v: %s", err, out)
		}
		auth = []string{"-rfbauth", f}
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		args := []string{
			"-display", x.Display(),
			"-rfbport", strconv.Itoa(port),
			// Debian's x11vnc listens on IPv6 too, and libvncserver on
			// [::]:5900, unless told otherwise.
			"-listen", "127.0.0.1", "-noipv6", "-no6", "-rfbportv6", "-1",
			"-forever", "-shared", "-noxdamage",
			"-norc", "-nocmds",
			"-xrandr", "newfbsize",
		}
		args = append(args, auth...)
		args = append(args, o.Args...)
		cmd := exec.Command(vncBin, args...)
		p, err := startProc(t, "x11vnc", cmd)
		if err != nil {
			t.Fatal(err)
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		if err := waitTCP(p, addr, startTimeout); err != nil {
			p.Kill()
			lastErr = err
			continue
		}
		x.vnc, x.addr, x.password = p, addr, o.Password
		return x
	}
	t.Fatalf("testserver: x11vnc did not start: %v", lastErr)
	return nil
}

// startXServer starts an X server that reports its display number through
// -displayfd, so no two servers race for the same display.
func startXServer(t testing.TB, name, bin string, args []string) (*X, error) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("testserver: %s: %w", name, err)
	}
	defer r.Close()
	cmd := exec.Command(bin, append([]string{"-displayfd", "3"}, args...)...)
	cmd.ExtraFiles = []*os.File{w}
	p, err := startProc(t, name, cmd)
	w.Close()
	if err != nil {
		return nil, err
	}
	type result struct {
		line string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		line, err := bufio.NewReader(r).ReadString('\n')
		ch <- result{line, err}
	}()
	var res result
	select {
	case res = <-ch:
	case <-time.After(startTimeout):
		p.Kill()
		return nil, fmt.Errorf("testserver: %s reported no display within %v", name, startTimeout)
	}
	if res.err != nil {
		p.Kill()
		return nil, fmt.Errorf("testserver: %s reported no display: %w; output:\n%s", name, res.err, tail(p.Output(), 4096))
	}
	n, err := strconv.Atoi(strings.TrimSpace(res.line))
	if err != nil {
		p.Kill()
		return nil, fmt.Errorf("testserver: %s reported display %q: %w", name, res.line, err)
	}
	return &X{display: n, server: p}, nil
}

// vncPasswordFile writes password in the obfuscated form of vncpasswd -f.
func vncPasswordFile(t testing.TB, password string) string {
	t.Helper()
	bin := need(t, "vncpasswd")
	cmd := exec.Command(bin, "-f")
	cmd.Stdin = strings.NewReader(password + "\n")
	out, err := cmd.Output()
	if err != nil || len(out) == 0 {
		t.Fatalf("testserver: vncpasswd -f: %v", err)
	}
	f := filepath.Join(tempDir(t, "kvmgate-xvnc-"), "passwd")
	if err := os.WriteFile(f, out, 0o600); err != nil {
		t.Fatalf("testserver: %v", err)
	}
	return f
}

func orDefault(v, d int) int {
	if v == 0 {
		return d
	}
	return v
}

// Display returns the X display name, such as ":3".
func (x *X) Display() string { return ":" + strconv.Itoa(x.display) }

// Addr returns the host:port of the VNC listener on 127.0.0.1.
func (x *X) Addr() string { return x.addr }

// Password returns the VNC password, or "" when the server needs none.
func (x *X) Password() string { return x.password }

// Server returns the X server process (Xvnc or Xvfb).
func (x *X) Server() *Proc { return x.server }

// VNC returns the x11vnc process, or nil for Xvnc (whose VNC server is the X
// server itself).
func (x *X) VNC() *Proc { return x.vnc }

// env returns the environment for X clients of this display.
func (x *X) env() []string {
	env := []string{"DISPLAY=" + x.Display()}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DISPLAY=") && !strings.HasPrefix(kv, "XAUTHORITY=") {
			env = append(env, kv)
		}
	}
	return env
}

// Start starts a long-running X client (xterm, xclock, xeyes...) on this
// display. It is killed when the test ends.
func (x *X) Start(t testing.TB, name string, args ...string) *Proc {
	t.Helper()
	cmd := exec.Command(need(t, name), args...)
	cmd.Env = x.env()
	p, err := startProc(t, name, cmd)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Run runs an X client to completion (xsetroot, xrandr...) and returns its
// standard output. It fails the test if the client fails.
func (x *X) Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := x.run(name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (x *X) run(name string, args ...string) (string, error) {
	bin, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("testserver: %s not found (Debian package %s): %w", name, debianPackages[name], err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = x.env()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("testserver: %s %s on %s: %w: %s", name, strings.Join(args, " "), x.Display(), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// WaitWindow waits until a window with this name (an xterm's -title, say) is
// mapped and viewable, or fails the test after timeout.
func (x *X) WaitWindow(t testing.TB, name string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out, err := x.run("xwininfo", "-name", name)
		if err == nil && strings.Contains(out, "IsViewable") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("testserver: window %q not viewable on %s after %v (%v)", name, x.Display(), timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Screenshot captures the root window with xwd and decodes it.
func (x *X) Screenshot() (*framebuffer.Canvas, error) {
	bin, err := exec.LookPath("xwd")
	if err != nil {
		return nil, fmt.Errorf("testserver: xwd not found (Debian package x11-apps): %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-root", "-silent")
	cmd.Env = x.env()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("testserver: xwd on %s: %w: %s", x.Display(), err, strings.TrimSpace(stderr.String()))
	}
	c, err := ParseXWD(out)
	if err != nil {
		return nil, fmt.Errorf("testserver: screenshot of %s: %w", x.Display(), err)
	}
	return c, nil
}

// Size returns the current screen size as RandR reports it.
func (x *X) Size() (w, h int, err error) {
	out, err := x.run("xrandr", "--current")
	if err != nil {
		return 0, 0, err
	}
	m := currentRe.FindStringSubmatch(out)
	if m == nil {
		return 0, 0, fmt.Errorf("testserver: no current size in xrandr output:\n%s", out)
	}
	w, _ = strconv.Atoi(m[1])
	h, _ = strconv.Atoi(m[2])
	return w, h, nil
}

var (
	currentRe   = regexp.MustCompile(`current (\d+) x (\d+)`)
	connectedRe = regexp.MustCompile(`(?m)^(\S+) connected`)
)

// Resize changes the screen to w×h, any size including odd ones such as
// 1021×765, and fails the test if the server did not take it. VNC clients
// see a desktop size change. On Xvnc it adds a RandR mode of exactly that
// size; on Xvfb (x11vnc) it resizes the screen within the maximum the server
// started with.
func (x *X) Resize(t testing.TB, w, h int) {
	t.Helper()
	if err := x.resize(w, h); err != nil {
		t.Fatal(err)
	}
}

func (x *X) resize(w, h int) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.output == "" {
		out, err := x.run("xrandr", "--current")
		if err != nil {
			return err
		}
		m := connectedRe.FindStringSubmatch(out)
		if m == nil {
			return fmt.Errorf("testserver: no connected RandR output on %s:\n%s", x.Display(), out)
		}
		x.output = m[1]
	}
	if gw, gh, err := x.Size(); err == nil && gw == w && gh == h {
		return nil
	}
	if x.xvfb {
		return x.resizeXvfb(w, h)
	}
	size := fmt.Sprintf("%dx%d", w, h)
	x.modes++
	mode := fmt.Sprintf("kvmgate-%s-%d", size, x.modes)
	// A mode whose timings equal its size; Xvnc ignores the clock.
	ws, hs := strconv.Itoa(w), strconv.Itoa(h)
	steps := [][]string{
		{"--newmode", mode, "60", ws, ws, ws, ws, hs, hs, hs, hs},
		{"--addmode", x.output, mode},
		{"--output", x.output, "--mode", mode, "--fb", size},
	}
	for _, args := range steps {
		if _, err := x.run("xrandr", args...); err != nil {
			return err
		}
	}
	gw, gh, err := x.Size()
	if err != nil {
		return err
	}
	if gw != w || gh != h {
		return fmt.Errorf("testserver: resize %s to %s: screen is %dx%d", x.Display(), size, gw, gh)
	}
	return nil
}

// x11vncSizeRe matches x11vnc's log line for a framebuffer it made after a
// RandR change.
var x11vncSizeRe = regexp.MustCompile(`check_xrandr_event: fb +WxH: (\d+)x(\d+)`)

// resizeXvfb resizes Xvfb's screen and, when x11vnc exports it, waits until
// x11vnc has made its framebuffer that size.
//
// Xvfb has one fixed mode, its start size, and accepts no new ones.
// Shrinking the screen below that mode makes xrandr turn the CRTC off, set
// the size, then fail to turn the CRTC back on: the screen keeps the new
// size, which is all a VNC server exports, and later sizes up to the maximum
// go through cleanly. So xrandr's exit status means little here; the size
// checks decide.
//
// x11vnc notices the RandR event in its main loop but can drop it while it
// accepts a client, so a resize that x11vnc missed is repeated through a
// one-pixel detour.
func (x *X) resizeXvfb(w, h int) error {
	size := fmt.Sprintf("%dx%d", w, h)
	for attempt := 0; ; attempt++ {
		var mark int64
		if x.vnc != nil {
			mark = x.vnc.out.mark()
		}
		if attempt > 0 {
			detour := h - 1
			if h == 1 {
				detour = 2
			}
			_, _ = x.run("xrandr", "--fb", fmt.Sprintf("%dx%d", w, detour))
		}
		_, _ = x.run("xrandr", "--fb", size)
		gw, gh, err := x.Size()
		if err != nil {
			return err
		}
		if gw != w || gh != h {
			return fmt.Errorf("testserver: resize %s to %s: screen is %dx%d", x.Display(), size, gw, gh)
		}
		if x.vnc == nil {
			return nil
		}
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			m := x11vncSizeRe.FindAllStringSubmatch(x.vnc.out.since(mark), -1)
			if len(m) > 0 && m[len(m)-1][1] == strconv.Itoa(w) && m[len(m)-1][2] == strconv.Itoa(h) {
				return nil
			}
			time.Sleep(20 * time.Millisecond)
		}
		if attempt == 2 {
			return fmt.Errorf("testserver: x11vnc on %s did not follow the resize to %s", x.Display(), size)
		}
	}
}
