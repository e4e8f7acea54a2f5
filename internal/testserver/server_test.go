package testserver

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"kvmgate/framebuffer"
)

// rfbHandshake does the first steps of an RFB 3.8 handshake and returns the
// security types the server offers. If the server offers None (1), it picks
// it, sends a shared ClientInit and returns the desktop size from
// ServerInit; otherwise w and h are 0.
func rfbHandshake(t *testing.T, addr string) (types []byte, w, h int) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	version := make([]byte, 12)
	if _, err := io.ReadFull(r, version); err != nil {
		t.Fatalf("%s: read RFB version: %v", addr, err)
	}
	if !strings.HasPrefix(string(version), "RFB 003.") {
		t.Fatalf("%s: not an RFB server: %q", addr, version)
	}
	if _, err := c.Write([]byte("RFB 003.008\n")); err != nil {
		t.Fatal(err)
	}
	n, err := r.ReadByte()
	if err != nil || n == 0 {
		t.Fatalf("%s: security types: n=%d err=%v", addr, n, err)
	}
	types = make([]byte, n)
	if _, err := io.ReadFull(r, types); err != nil {
		t.Fatalf("%s: security types: %v", addr, err)
	}
	if !slices.Contains(types, 1) {
		return types, 0, 0
	}
	// Security None, SecurityResult, ClientInit (shared), ServerInit.
	if _, err := c.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	var res [4]byte
	if _, err := io.ReadFull(r, res[:]); err != nil || res != [4]byte{} {
		t.Fatalf("%s: security result %v, %v", addr, res, err)
	}
	if _, err := c.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	var init [4]byte
	if _, err := io.ReadFull(r, init[:]); err != nil {
		t.Fatalf("%s: ServerInit: %v", addr, err)
	}
	return types, int(binary.BigEndian.Uint16(init[0:])), int(binary.BigEndian.Uint16(init[2:]))
}

// waitRFBSize waits until a new RFB connection sees a w×h desktop.
func waitRFBSize(t *testing.T, addr string, w, h int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, gw, gh := rfbHandshake(t, addr)
		if gw == w && gh == h {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: RFB desktop is %dx%d, want %dx%d", addr, gw, gh, w, h)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// countColour returns how many pixels of c have the colour rgb (R in the
// low byte).
func countColour(c *framebuffer.Canvas, rgb uint32) int {
	n := 0
	for y := 0; y < c.H; y++ {
		row := c.Row(0, y, c.W)
		for i := 0; i < len(row); i += 4 {
			if uint32(row[i])|uint32(row[i+1])<<8|uint32(row[i+2])<<16 == rgb {
				n++
			}
		}
	}
	return n
}

// checkScreen fails the test unless c is w×h, opaque and not one colour.
func checkScreen(t *testing.T, c *framebuffer.Canvas, w, h int) {
	t.Helper()
	if c.W != w || c.H != h {
		t.Fatalf("screenshot is %dx%d, want %dx%d", c.W, c.H, w, h)
	}
	first := c.At(0, 0)
	uniform := true
	for y := 0; y < c.H; y++ {
		row := c.Row(0, y, c.W)
		for i := 0; i < len(row); i += 4 {
			if row[i+3] != 0xff {
				t.Fatalf("pixel %d,%d has alpha %d", i/4, y, row[i+3])
			}
			if uniform && uint32(row[i])|uint32(row[i+1])<<8|uint32(row[i+2])<<16|uint32(row[i+3])<<24 != first {
				uniform = false
			}
		}
	}
	if uniform {
		t.Fatalf("screenshot is a single colour %#08x", first)
	}
}

const (
	red  = 0x0000ff
	blue = 0xff0000
)

func TestXvnc(t *testing.T) {
	t.Parallel()
	x := StartXvnc(t, XvncOptions{Width: 640, Height: 480})
	if got, w, h := rfbHandshake(t, x.Addr()); !slices.Contains(got, 1) || w != 640 || h != 480 {
		t.Errorf("Xvnc without password: security types %v, desktop %dx%d; want None (1), 640x480", got, w, h)
	}
	x.Run(t, "xsetroot", "-solid", "red")
	x.Start(t, "xterm", "-title", "kvmgate-xterm", "-geometry", "40x10+10+10")
	x.WaitWindow(t, "kvmgate-xterm", 20*time.Second)
	c, err := x.Screenshot()
	if err != nil {
		t.Fatal(err)
	}
	checkScreen(t, c, 640, 480)
	if n := countColour(c, red); n < 640*480/2 {
		t.Errorf("%d red pixels, want most of the screen", n)
	}
	if got := c.At(639, 479) & 0xffffff; got != red {
		t.Errorf("bottom right pixel %#06x, want red", got)
	}

	for _, sz := range [][2]int{{1021, 765}, {800, 600}, {333, 222}} {
		x.Resize(t, sz[0], sz[1])
		c, err := x.Screenshot()
		if err != nil {
			t.Fatal(err)
		}
		checkScreen(t, c, sz[0], sz[1])
		waitRFBSize(t, x.Addr(), sz[0], sz[1])
	}
}

func TestXvncPassword(t *testing.T) {
	t.Parallel()
	// Depth 16 also takes ParseXWD's general path on real xwd output.
	x := StartXvnc(t, XvncOptions{Width: 320, Height: 200, Depth: 16, Password: "s3cret"})
	if x.Password() != "s3cret" {
		t.Errorf("Password() = %q", x.Password())
	}
	if got, _, _ := rfbHandshake(t, x.Addr()); !slices.Contains(got, 2) || slices.Contains(got, 1) {
		t.Errorf("Xvnc with password offers security types %v, want VNC auth (2) and not None", got)
	}
	x.Run(t, "xsetroot", "-solid", "red")
	c, err := x.Screenshot()
	if err != nil {
		t.Fatal(err)
	}
	if c.W != 320 || c.H != 200 || countColour(c, red) != 320*200 {
		t.Errorf("16-bit screen: %dx%d with %d red pixels, want 320x200 all red", c.W, c.H, countColour(c, red))
	}
}

func TestX11vnc(t *testing.T) {
	t.Parallel()
	x := StartX11vnc(t, X11vncOptions{Width: 640, Height: 480, MaxWidth: 1280, MaxHeight: 1024})
	if got, w, h := rfbHandshake(t, x.Addr()); !slices.Contains(got, 1) || w != 640 || h != 480 {
		t.Errorf("x11vnc without password: security types %v, desktop %dx%d; want None (1), 640x480", got, w, h)
	}
	x.Run(t, "xsetroot", "-solid", "blue")
	x.Start(t, "xterm", "-title", "kvmgate-xterm", "-geometry", "40x10+10+10")
	x.WaitWindow(t, "kvmgate-xterm", 20*time.Second)
	c, err := x.Screenshot()
	if err != nil {
		t.Fatal(err)
	}
	checkScreen(t, c, 640, 480)
	if n := countColour(c, blue); n < 640*480/2 {
		t.Errorf("%d blue pixels, want most of the screen", n)
	}
	for _, sz := range [][2]int{{1021, 765}, {800, 600}} {
		x.Resize(t, sz[0], sz[1])
		c, err := x.Screenshot()
		if err != nil {
			t.Fatal(err)
		}
		checkScreen(t, c, sz[0], sz[1])
		waitRFBSize(t, x.Addr(), sz[0], sz[1])
	}
}

func TestQEMUSeaBIOS(t *testing.T) {
	t.Parallel()
	q := StartQEMU(t, QEMUOptions{Guest: GuestSeaBIOS, Password: "pw"})
	if got, _, _ := rfbHandshake(t, q.Addr()); !slices.Contains(got, 2) {
		t.Errorf("QEMU with password offers security types %v, want VNC auth (2)", got)
	}
	c := q.WaitSettled(t, 60*time.Second)
	checkScreen(t, c, 720, 400)
	out, err := q.Monitor("info vnc")
	if err != nil {
		t.Fatal(err)
	}
	if _, port, _ := net.SplitHostPort(q.Addr()); !strings.Contains(out, port) {
		t.Errorf("info vnc does not mention port %s:\n%s", port, out)
	}
}

func TestQEMULinux(t *testing.T) {
	t.Parallel()
	// The first machine boots and saves a snapshot unless one is cached; the
	// second always starts from the snapshot.
	for _, name := range []string{"first", "restored"} {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			q := StartQEMU(t, QEMUOptions{Guest: GuestLinux})
			if !strings.Contains(q.Serial(), GuestReady) {
				t.Fatalf("StartQEMU returned before the guest was ready")
			}
			t.Logf("Linux guest at its prompt after %v", time.Since(start).Round(100*time.Millisecond))
			c := q.WaitSettled(t, time.Minute)
			checkScreen(t, c, 720, 400)
			if got, w, h := rfbHandshake(t, q.Addr()); !slices.Contains(got, 1) || w != 720 || h != 400 {
				t.Errorf("QEMU without password: security types %v, desktop %dx%d; want None (1), 720x400", got, w, h)
			}

			q.TypeText(t, "echo TYPED-OK > /dev/ttyS0\n")
			q.WaitSerial(t, "TYPED-OK", 30*time.Second)
			if strings.Contains(q.Serial(), "echo TYPED-OK") {
				t.Errorf("the command line was echoed on the serial port, want only on tty1")
			}
			after, err := q.Screenshot()
			if err != nil {
				t.Fatal(err)
			}
			if d := diffBounds(c, after); d.W < 9*20 {
				t.Errorf("typing changed only %v of the screen, want at least 20 characters", d)
			}
			q.SendKey(t, "ctrl", "alt", "delete")
			q.WaitSerial(t, GuestCtrlAltDel, 30*time.Second)
		})
	}
}

func TestQEMUColdBoot(t *testing.T) {
	t.Parallel()
	start := time.Now()
	q := StartQEMU(t, QEMUOptions{Guest: GuestLinux, ColdBoot: true, VNCOptions: "share=force-shared"})
	q.WaitSerial(t, GuestReady, LinuxBootTimeout)
	t.Logf("Linux guest booted (TCG unless /dev/kvm works) in %v", time.Since(start).Round(100*time.Millisecond))
	checkScreen(t, q.WaitSettled(t, time.Minute), 720, 400)
}

// TestLoopbackOnly checks that no server listens beyond 127.0.0.1, using
// the kernel's table of listening sockets.
func TestLoopbackOnly(t *testing.T) {
	t.Parallel()
	x := StartX11vnc(t, X11vncOptions{Width: 320, Height: 200})
	y := StartXvnc(t, XvncOptions{Width: 320, Height: 200})
	q := StartQEMU(t, QEMUOptions{})
	for _, s := range []struct {
		name string
		pid  int
	}{
		{"x11vnc", x.vnc.Pid()},
		{"Xvnc", y.Server().Pid()},
		{"qemu", q.Proc().Pid()},
	} {
		addrs, err := listeningAddrs(s.pid)
		if err != nil {
			t.Fatal(err)
		}
		if len(addrs) == 0 {
			t.Errorf("%s: no listening TCP socket found", s.name)
		}
		for _, a := range addrs {
			if !strings.HasPrefix(a, "127.0.0.1:") {
				t.Errorf("%s listens on %s, want 127.0.0.1 only", s.name, a)
			}
		}
	}
}

// listeningAddrs returns the addresses of the TCP sockets process pid
// listens on, from /proc.
func listeningAddrs(pid int) ([]string, error) {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return nil, err
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	var addrs []string
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			return nil, err
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] {
				continue
			}
			addrs = append(addrs, procNetAddr(f[1]))
		}
	}
	return addrs, nil
}

// procNetAddr turns /proc/net/tcp's "0100007F:1F90" (32-bit words in host
// byte order, port in hex) into "127.0.0.1:8080".
func procNetAddr(s string) string {
	hexIP, hexPort, _ := strings.Cut(s, ":")
	raw, err := hex.DecodeString(hexIP)
	if err != nil {
		return s
	}
	for i := 0; i+4 <= len(raw); i += 4 {
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	port, _ := strconv.ParseUint(hexPort, 16, 16)
	return net.JoinHostPort(net.IP(raw).String(), strconv.Itoa(int(port)))
}
