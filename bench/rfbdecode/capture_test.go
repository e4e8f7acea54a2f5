//go:build capture

package rfbdecode

// The capture is a build-tagged test (it needs testserver's testing.TB
// helpers) that ordinary test runs do not compile:
//
//	go test -tags capture -run '^TestCapture$' -v -timeout 10m ./bench/rfbdecode/
//
// It rewrites testdata/. Commit the result together with a fresh run of the
// benchmarks.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"kvmgate/framebuffer"
	"kvmgate/internal/testserver"
	"kvmgate/rfb"
)

const capW, capH = 1920, 1080

// capSpec is one stream to record.
type capSpec struct {
	name     string
	encs     []rfb.Encoding // SetEncodings, pixel encodings and pseudo levels
	enc      rfb.Encoding   // the encoding the updates must use
	stateful bool           // zlib state carries over between updates
}

func TestCapture(t *testing.T) {
	if err := os.MkdirAll("testdata", 0o755); err != nil {
		t.Fatal(err)
	}
	q8 := rfb.EncodingJPEGQuality0 + 8

	// TigerVNC's Xvnc: Raw, RRE, Hextile, Tight, ZRLE (and CopyRect).
	x := testserver.StartXvnc(t, testserver.XvncOptions{Width: capW, Height: capH})
	fifo := desktop(t, x)
	shot := stableShot(t, x, "desktop", nil)
	server := "TigerVNC Xvnc " + xvncVersion()
	for _, sp := range []capSpec{
		{name: "raw", encs: []rfb.Encoding{rfb.EncodingRaw}, enc: rfb.EncodingRaw},
		{name: "rre", encs: []rfb.Encoding{rfb.EncodingRRE}, enc: rfb.EncodingRRE},
		{name: "hextile", encs: []rfb.Encoding{rfb.EncodingHextile}, enc: rfb.EncodingHextile},
		{name: "zrle", encs: []rfb.Encoding{rfb.EncodingZRLE}, enc: rfb.EncodingZRLE, stateful: true},
		{name: "tight", encs: []rfb.Encoding{rfb.EncodingTight}, enc: rfb.EncodingTight, stateful: true},
		{name: "tight-jpeg8", encs: []rfb.Encoding{rfb.EncodingTight, q8}, enc: rfb.EncodingTight, stateful: true},
		// Offered by name but not by Xvnc 1.12: checked and reported.
		{name: "zlib", encs: []rfb.Encoding{rfb.EncodingZlib}, enc: rfb.EncodingZlib, stateful: true},
		{name: "trle", encs: []rfb.Encoding{rfb.EncodingTRLE}, enc: rfb.EncodingTRLE},
	} {
		capture(t, x.Addr(), server, "desktop", shot, sp)
	}
	captureCopyRect(t, x, fifo, server)

	// x11vnc (libvncserver) on Xvfb: RRE, Zlib and TightPNG, which Xvnc
	// lacks. -nocursor keeps x11vnc from drawing the pointer into the
	// framebuffer. Xvfb and Xvnc render the same desktop pixel for pixel;
	// if they ever differ, x11vnc gets a workload of its own.
	x2 := testserver.StartX11vnc(t, testserver.X11vncOptions{Width: capW, Height: capH, Args: []string{"-nocursor"}})
	desktop(t, x2)
	workload2 := "desktop"
	shot2 := stableShot(t, x2, "", nil)
	if !shot2.Equal(shot) {
		workload2 = "x11vnc-desktop"
		stableShot(t, x2, workload2, shot2)
	}
	server2 := "x11vnc " + x11vncVersion()
	for _, sp := range []capSpec{
		{name: "rre", encs: []rfb.Encoding{rfb.EncodingRRE}, enc: rfb.EncodingRRE},
		{name: "zlib", encs: []rfb.Encoding{rfb.EncodingZlib}, enc: rfb.EncodingZlib, stateful: true},
		{name: "tightpng", encs: []rfb.Encoding{rfb.EncodingTightPNG, q8}, enc: rfb.EncodingTightPNG, stateful: true},
		{name: "trle", encs: []rfb.Encoding{rfb.EncodingTRLE}, enc: rfb.EncodingTRLE},
	} {
		capture(t, x2.Addr(), server2, workload2, shot2, sp)
	}
}

// desktop fills the screen: a plaid root window, two xterms of directory
// listings (one coloured), a 24-bit colour gradient, xclock, xeyes and
// xlogo, and an xterm that prints whatever is written to the returned FIFO
// (to make it scroll). The root cursor is blank and the pointer rests on
// the root window, so no cursor is drawn into the framebuffer.
func desktop(t *testing.T, x *testserver.X) string {
	dir := t.TempDir()
	blank := filepath.Join(dir, "blank.xbm")
	xbm := "#define blank_width 16\n#define blank_height 16\nstatic unsigned char blank_bits[] = {\n" +
		strings.Repeat("0x00, ", 31) + "0x00 };\n"
	if err := os.WriteFile(blank, []byte(xbm), 0o644); err != nil {
		t.Fatal(err)
	}
	x.Run(t, "xsetroot", "-cursor", blank, blank)
	x.Run(t, "xsetroot", "-mod", "12", "12", "-fg", "#5b7fa6", "-bg", "#223344")

	grad := filepath.Join(dir, "gradient.txt")
	var b strings.Builder
	for r := 0; r < 24; r++ {
		for c := 0; c < 120; c++ {
			fmt.Fprintf(&b, "\x1b[48;2;%d;%d;%dm\x1b[38;2;%d;%d;%dm%c", c*2, r*10, 255-c*2, 255-r*10, c, 128, 'A'+(r+c)%26)
		}
		b.WriteString("\x1b[0m\r\n")
	}
	if err := os.WriteFile(grad, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "scroll.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	xterm := func(title, geom, cmd string) {
		x.Start(t, "xterm", "-title", title, "-geometry", geom, "-xrm", "XTerm*directColor: true",
			"-hold", "-e", "sh", "-c", cmd)
	}
	xterm("listing", "150x38+0+0", "ls -lR /usr/share/doc | head -n 37")
	xterm("colours", "150x38+0+560", "ls --color=always -l /usr/bin | head -n 37")
	xterm("gradient", "120x24+1000+0", "cat "+grad)
	xterm("scroll", "150x36+1000+600", "head -n 35 /usr/share/common-licenses/GPL-3; exec cat "+fifo)
	x.Start(t, "xclock", "-geometry", "200x200+1000+360", "-update", "3600")
	x.Start(t, "xeyes", "-geometry", "200x200+1220+360")
	x.Start(t, "xlogo", "-geometry", "200x200+1440+360")
	for _, w := range []string{"listing", "colours", "gradient", "scroll", "xclock", "xeyes", "xlogo"} {
		x.WaitWindow(t, w, 20*time.Second)
	}
	return fifo
}

// stableShot waits until two screenshots a second apart agree, saves the
// picture as testdata/<workload>.png (unless workload is "") and returns it.
// A non-nil prev is a screenshot already taken.
func stableShot(t *testing.T, x *testserver.X, workload string, prev *framebuffer.Canvas) *framebuffer.Canvas {
	for i := 0; i < 20; i++ {
		time.Sleep(time.Second)
		c, err := x.Screenshot()
		if err != nil {
			t.Fatal(err)
		}
		if prev != nil && prev.Equal(c) {
			if workload != "" {
				savePNG(t, filepath.Join("testdata", workload+".png"), c)
			}
			return c
		}
		prev = c
	}
	t.Fatalf("%s: the screen never settled", workload)
	return nil
}

func savePNG(t *testing.T, path string, c *framebuffer.Canvas) {
	img := &image.NRGBA{Pix: c.Pix, Stride: c.Stride, Rect: image.Rect(0, 0, c.W, c.H)}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// capture records one stream and checks it before saving: kvmgate's decode
// must reproduce the screenshot (closely for JPEG).
func capture(t *testing.T, addr, server, workload string, shot *framebuffer.Canvas, sp capSpec) {
	c, err := dialCap(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.conn.Close()
	if err := c.setup(sp.encs); err != nil {
		t.Fatal(err)
	}
	s := &Stream{Header: Header{
		Name: sp.name, Workload: workload, Server: server, Encoding: sp.enc, Encodings: sp.encs,
		Width: c.w, Height: c.h, ServerInit: c.serverInit, PixelFormat: rfb.NativeFormat.Marshal(),
		Stateful: sp.stateful, Captured: time.Now().UTC().Format(time.RFC3339),
	}}
	u, err := c.update(false)
	if err != nil {
		t.Fatalf("%s: %v", sp.name, err)
	}
	s.Updates = [][]byte{u}
	if got := firstEncoding(s.Updates[0]); got != sp.enc {
		t.Logf("%s: %s did not use %v (first rectangle is %v); not saved", sp.name, server, sp.enc, got)
		return
	}
	check(t, s, shot)
	if err := s.Save(filepath.Join("testdata", sp.name+".bin.gz")); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d updates, %d bytes", sp.name, len(s.Updates), len(s.Timed()))
}

// captureCopyRect records a full Raw frame, then makes the "scroll" xterm
// scroll by 12 lines and records the incremental update, which Xvnc sends
// as CopyRect plus Raw for the new lines.
func captureCopyRect(t *testing.T, x *testserver.X, fifo, server string) {
	encs := []rfb.Encoding{rfb.EncodingCopyRect, rfb.EncodingRaw}
	c, err := dialCap(x.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.conn.Close()
	if err := c.setup(encs); err != nil {
		t.Fatal(err)
	}
	full, err := c.update(false)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	var lines strings.Builder
	for i := 1; i <= 12; i++ {
		fmt.Fprintf(&lines, "scrolled line %02d: the quick brown fox jumps over the lazy dog 0123456789\n", i)
	}
	if _, err := f.WriteString(lines.String()); err != nil {
		t.Fatal(err)
	}
	f.Close()
	time.Sleep(2 * time.Second)
	inc, err := c.update(true)
	if err != nil {
		t.Fatal(err)
	}
	shot := stableShot(t, x, "desktop-scrolled", nil)
	s := &Stream{Header: Header{
		Name: "copyrect", Workload: "desktop-scrolled", Server: server, Encoding: rfb.EncodingCopyRect, Encodings: encs,
		Width: c.w, Height: c.h, ServerInit: c.serverInit, PixelFormat: rfb.NativeFormat.Marshal(),
		Follow:   "incremental",
		Note:     "Updates[0] is a full Raw frame; Updates[1] answers an incremental request after an xterm scrolled by 12 lines",
		Captured: time.Now().UTC().Format(time.RFC3339),
	}, Updates: [][]byte{full, inc}}
	px, err := s.Pixels(1)
	if err != nil {
		t.Fatal(err)
	}
	if !hasEncoding(inc, rfb.EncodingCopyRect) {
		t.Fatalf("copyrect: Xvnc sent no CopyRect for the scroll")
	}
	check(t, s, shot)
	if err := s.Save(filepath.Join("testdata", "copyrect.bin.gz")); err != nil {
		t.Fatal(err)
	}
	t.Logf("copyrect: %d bytes, %d pixels in the incremental update", len(inc), px)
}

func check(t *testing.T, s *Stream, shot *framebuffer.Canvas) {
	got, err := DecodeKvmgate(s)
	if err != nil {
		t.Fatalf("%s: kvmgate decode: %v", s.Name, err)
	}
	if err := compare(s, got, shot); err != nil {
		t.Fatalf("%s: %v", s.Name, err)
	}
}

func firstEncoding(u []byte) rfb.Encoding {
	if len(u) < 16 || binary.BigEndian.Uint16(u[2:]) == 0 {
		return -1 << 31
	}
	return rfb.Encoding(int32(binary.BigEndian.Uint32(u[12:])))
}

func hasEncoding(u []byte, e rfb.Encoding) bool {
	n := int(binary.BigEndian.Uint16(u[2:]))
	p := 4
	for i := 0; i < n && p+12 <= len(u); i++ {
		w, h := int(binary.BigEndian.Uint16(u[p+4:])), int(binary.BigEndian.Uint16(u[p+6:]))
		enc := rfb.Encoding(int32(binary.BigEndian.Uint32(u[p+8:])))
		if enc == e {
			return true
		}
		p += 12
		switch enc {
		case rfb.EncodingRaw:
			p += 4 * w * h
		case rfb.EncodingCopyRect:
			p += 4
		default:
			return false
		}
	}
	return false
}

// capClient is a minimal RFB 3.8 client that records what the server sends.
type capClient struct {
	conn       net.Conn
	br         *bufio.Reader
	serverInit []byte
	w, h       int
}

func dialCap(addr string) (*capClient, error) {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	c := &capClient{conn: conn, br: bufio.NewReaderSize(conn, 1<<20)}
	ver := make([]byte, 12)
	if _, err := io.ReadFull(c.br, ver); err != nil {
		return nil, fmt.Errorf("version: %w", err)
	}
	if _, err := conn.Write([]byte("RFB 003.008\n")); err != nil {
		return nil, err
	}
	n, err := c.br.ReadByte()
	if err != nil || n == 0 {
		return nil, fmt.Errorf("security types: %d %v", n, err)
	}
	types := make([]byte, n)
	if _, err := io.ReadFull(c.br, types); err != nil {
		return nil, err
	}
	if !bytes.Contains(types, []byte{1}) {
		return nil, fmt.Errorf("server offers no None security: %v", types)
	}
	if _, err := conn.Write([]byte{1}); err != nil {
		return nil, err
	}
	var res [4]byte
	if _, err := io.ReadFull(c.br, res[:]); err != nil || binary.BigEndian.Uint32(res[:]) != 0 {
		return nil, fmt.Errorf("security result %v %v", res, err)
	}
	if _, err := conn.Write([]byte{1}); err != nil { // ClientInit: shared
		return nil, err
	}
	si := make([]byte, 24)
	if _, err := io.ReadFull(c.br, si); err != nil {
		return nil, fmt.Errorf("ServerInit: %w", err)
	}
	name := make([]byte, binary.BigEndian.Uint32(si[20:]))
	if _, err := io.ReadFull(c.br, name); err != nil {
		return nil, fmt.Errorf("ServerInit name: %w", err)
	}
	c.serverInit = append(si, name...)
	c.w, c.h = int(binary.BigEndian.Uint16(si)), int(binary.BigEndian.Uint16(si[2:]))
	if c.w != capW || c.h != capH {
		return nil, fmt.Errorf("server is %dx%d, want %dx%d", c.w, c.h, capW, capH)
	}
	return c, nil
}

func (c *capClient) setup(encs []rfb.Encoding) error {
	msg := append([]byte{0, 0, 0, 0}, rfb.NativeFormat.Marshal()...)
	msg = append(msg, 2, 0)
	msg = binary.BigEndian.AppendUint16(msg, uint16(len(encs)))
	for _, e := range encs {
		msg = binary.BigEndian.AppendUint32(msg, uint32(e))
	}
	_, err := c.conn.Write(msg)
	return err
}

// update asks for the whole screen and returns the server's answer: all
// bytes until the server has been quiet for a second.
func (c *capClient) update(incremental bool) ([]byte, error) {
	inc := byte(0)
	if incremental {
		inc = 1
	}
	req := []byte{3, inc, 0, 0, 0, 0}
	req = binary.BigEndian.AppendUint16(req, uint16(c.w))
	req = binary.BigEndian.AppendUint16(req, uint16(c.h))
	if _, err := c.conn.Write(req); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	buf := make([]byte, 1<<20)
	start := time.Now()
	for {
		quiet := time.Second
		if out.Len() == 0 {
			quiet = 20 * time.Second
		}
		c.conn.SetReadDeadline(time.Now().Add(quiet))
		n, err := c.br.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && out.Len() > 0 {
				break
			}
			return nil, fmt.Errorf("update after %v: %w", time.Since(start), err)
		}
	}
	u := out.Bytes()
	if len(u) < 4 || u[0] != 0 {
		return nil, fmt.Errorf("server sent %d bytes that are not a FramebufferUpdate", len(u))
	}
	return u, nil
}

func xvncVersion() string {
	out, _ := exec.Command("Xvnc", "-version").CombinedOutput()
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "Xvnc TigerVNC ") {
			return strings.Fields(l)[2]
		}
	}
	return "?"
}

func x11vncVersion() string {
	out, _ := exec.Command("x11vnc", "-version").CombinedOutput()
	f := strings.Fields(string(out))
	if len(f) >= 2 {
		return f[1]
	}
	return "?"
}
