package rfbserver

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"kvmgate/framebuffer"
	"kvmgate/input"
	"kvmgate/rfb"
)

// recorder is an InputSink that keeps what it got.
type recorder struct {
	mu       sync.Mutex
	keys     []input.KeyEvent
	pointers []input.PointerEvent
	clips    []string
	changed  chan struct{}
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{}, 1)} }

func (r *recorder) note() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *recorder) Key(ev input.KeyEvent) error {
	r.mu.Lock()
	r.keys = append(r.keys, ev)
	r.mu.Unlock()
	r.note()
	return nil
}

func (r *recorder) Pointer(ev input.PointerEvent) error {
	r.mu.Lock()
	r.pointers = append(r.pointers, ev)
	r.mu.Unlock()
	r.note()
	return nil
}

func (r *recorder) Clipboard(text string) error {
	r.mu.Lock()
	r.clips = append(r.clips, text)
	r.mu.Unlock()
	r.note()
	return nil
}

// waitFor waits until cond holds (checked under r.mu) or fails the test.
func (r *recorder) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		ok := cond()
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.changed:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// syncBuffer is a log sink safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServer serves s on a loopback port until the test ends, and checks
// that Serve returns then.
func startServer(t testing.TB, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Serve did not return after its context ended")
		}
	})
	return ln.Addr().String()
}

// pattern paints content that exercises every encoder path: solid areas,
// two-colour text-like strokes, a few-colour area, a gradient and noise.
func pattern(c *framebuffer.Canvas, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	c.Fill(c.Bounds(), 0xff303030)
	for y := 0; y < c.H; y++ {
		for x := 0; x < c.W; x++ {
			o := c.Offset(x, y)
			switch {
			case y < c.H/4:
				// text-like: light strokes on the background
				if (x/3+y/5)%4 == 0 && x%7 != 0 {
					copy(c.Pix[o:], []byte{0xe0, 0xe0, 0xd0})
				}
			case y < c.H/2:
				copy(c.Pix[o:], []byte{byte(x), byte(y * 2), byte(x + y)})
			case y < 3*c.H/4:
				if x > c.W/2 {
					v := rng.Uint32()
					copy(c.Pix[o:], []byte{byte(v), byte(v >> 8), byte(v >> 16)})
				} else {
					pal := [][]byte{{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 255, 0}, {9, 9, 9}}
					copy(c.Pix[o:], pal[(x/5+y/3)%len(pal)])
				}
			}
			c.Pix[o+3] = 255
		}
	}
}

// quantized returns what a client with pixel format pf should end up with.
func quantized(c *framebuffer.Canvas, pf rfb.PixelFormat) *framebuffer.Canvas {
	d := c.Clone()
	q := func(v byte, max uint16) byte {
		n := (uint32(v)*uint32(max) + 127) / 255
		return byte((n*255 + uint32(max)/2) / uint32(max))
	}
	for i := 0; i < len(d.Pix); i += 4 {
		d.Pix[i] = q(d.Pix[i], pf.RedMax)
		d.Pix[i+1] = q(d.Pix[i+1], pf.GreenMax)
		d.Pix[i+2] = q(d.Pix[i+2], pf.BlueMax)
	}
	return d
}

// diff describes the first difference between two canvases.
func diff(got, want *framebuffer.Canvas) string {
	if got.W != want.W || got.H != want.H {
		return fmt.Sprintf("size %dx%d, want %dx%d", got.W, got.H, want.W, want.H)
	}
	for y := 0; y < got.H; y++ {
		for x := 0; x < got.W; x++ {
			if got.At(x, y) != want.At(x, y) {
				return fmt.Sprintf("pixel %d,%d is %08x, want %08x", x, y, got.At(x, y), want.At(x, y))
			}
		}
	}
	return ""
}

// backend is a test producer publishing into a framebuffer.
type backend struct {
	fb     *framebuffer.Framebuffer
	canvas *framebuffer.Canvas
	batch  framebuffer.Batch
}

func newBackend(t testing.TB, w, h int) *backend {
	c, err := framebuffer.NewCanvas(w, h)
	if err != nil {
		t.Fatal(err)
	}
	pattern(c, 1)
	b := &backend{fb: framebuffer.New(), canvas: c}
	b.fb.Publish(c, &b.batch)
	return b
}

func TestVNCAuthResponse(t *testing.T) {
	// The key bytes are bit-reversed before DES: with a password whose
	// bytes are their own reversal (0x00, 0xff) the result equals plain DES.
	got, err := vncAuthResponse("", make([]byte, 16))
	if err != nil {
		t.Fatal(err)
	}
	// DES of a zero block under the all-zero key.
	want := []byte{0x8c, 0xa6, 0x4d, 0xe9, 0xc1, 0xb1, 0x23, 0xa7}
	if !bytes.Equal(got[:8], want) || !bytes.Equal(got[8:], want) {
		t.Fatalf("response %x, want %x twice", got, want)
	}
	if reverseBits(0x01) != 0x80 || reverseBits(0x12) != 0x48 {
		t.Fatalf("reverseBits wrong")
	}
	a, _ := vncAuthResponse("password", make([]byte, 16))
	b, _ := vncAuthResponse("passwordLONGER", make([]byte, 16))
	if !bytes.Equal(a, b) {
		t.Fatalf("passwords are not truncated to 8 bytes")
	}
}

func TestHandshake(t *testing.T) {
	be := newBackend(t, 64, 48)
	tests := []struct {
		name, version, serverPass, clientPass string
		ok                                    bool
	}{
		{"3.8 none", "RFB 003.008\n", "", "", true},
		{"3.7 none", "RFB 003.007\n", "", "", true},
		{"3.3 none", "RFB 003.003\n", "", "", true},
		{"3.5 means 3.3", "RFB 003.005\n", "", "", true},
		{"3.8 right password", "RFB 003.008\n", "secret", "secret", true},
		{"3.7 right password", "RFB 003.007\n", "secret", "secret", true},
		{"3.3 right password", "RFB 003.003\n", "secret", "secret", true},
		{"3.8 wrong password", "RFB 003.008\n", "secret", "guess", false},
		{"3.3 wrong password", "RFB 003.003\n", "secret", "guess", false},
		{"bad version", "HELLO WORLD\n", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := &syncBuffer{}
			s := &Server{FB: be.fb, Password: tt.serverPass, Name: "test desk", Logger: slog.New(slog.NewTextHandler(logs, nil))}
			addr := startServer(t, s)
			c, err := dialTest(t, addr, tt.version, tt.clientPass)
			if !tt.ok {
				if err == nil {
					t.Fatalf("handshake succeeded, want failure")
				}
				return
			}
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			if c.w != 64 || c.h != 48 || c.name != "test desk" || !c.pf.IsNative() {
				t.Fatalf("ServerInit %dx%d %q %v", c.w, c.h, c.name, c.pf)
			}
			c.request(false)
			if err := c.readUpdate(); err != nil {
				t.Fatal(err)
			}
			if d := diff(c.fb, be.canvas); d != "" {
				t.Fatal(d)
			}
		})
	}
}

func TestWrongPasswordReason(t *testing.T) {
	be := newBackend(t, 8, 8)
	logs := &syncBuffer{}
	addr := startServer(t, &Server{FB: be.fb, Password: "secret", Logger: slog.New(slog.NewTextHandler(logs, nil))})
	_, err := dialTest(t, addr, "RFB 003.008\n", "nope")
	if err == nil || !strings.Contains(err.Error(), "authentication failed") {
		t.Fatalf("err %v, want the 3.8 failure reason", err)
	}
	if !strings.Contains(logs.String(), "wrong password") || strings.Contains(logs.String(), "secret") {
		t.Fatalf("log should say why and hold no secret:\n%s", logs)
	}
}

var testFormats = []struct {
	name string
	pf   rfb.PixelFormat
}{
	{"native", rfb.NativeFormat},
	{"rgb565", rfb.Format16},
	{"rgb565-be", func() rfb.PixelFormat { pf := rfb.Format16; pf.BigEndian = true; return pf }()},
	{"bgr233", rfb.Format8},
	{"32-be", func() rfb.PixelFormat { pf := rfb.NativeFormat; pf.BigEndian = true; return pf }()},
	{"32-high", rfb.PixelFormat{BitsPerPixel: 32, Depth: 24, TrueColour: true, RedMax: 255, GreenMax: 255, BlueMax: 255, RedShift: 24, GreenShift: 16, BlueShift: 8}},
	{"32-high-be", rfb.PixelFormat{BitsPerPixel: 32, Depth: 24, BigEndian: true, TrueColour: true, RedMax: 255, GreenMax: 255, BlueMax: 255, RedShift: 24, GreenShift: 16, BlueShift: 8}},
	{"32-depth32", rfb.PixelFormat{BitsPerPixel: 32, Depth: 32, TrueColour: true, RedMax: 255, GreenMax: 255, BlueMax: 255, RedShift: 16, GreenShift: 8, BlueShift: 0}},
	{"16-rgb555-be", rfb.PixelFormat{BitsPerPixel: 16, Depth: 15, BigEndian: true, TrueColour: true, RedMax: 31, GreenMax: 31, BlueMax: 31, RedShift: 10, GreenShift: 5, BlueShift: 0}},
}

func TestEncodings(t *testing.T) {
	for _, enc := range []rfb.Encoding{rfb.EncodingRaw, rfb.EncodingHextile, rfb.EncodingZRLE} {
		for _, f := range testFormats {
			t.Run(enc.String()+"/"+f.name, func(t *testing.T) {
				be := newBackend(t, 203, 157)
				addr := startServer(t, &Server{FB: be.fb, Logger: slog.New(slog.DiscardHandler)})
				c, err := dialTest(t, addr, "RFB 003.008\n", "")
				if err != nil {
					t.Fatal(err)
				}
				c.setPixelFormat(f.pf)
				c.setEncodings(enc)
				c.request(false)
				if err := c.readUpdate(); err != nil {
					t.Fatal(err)
				}
				if d := diff(c.fb, quantized(be.canvas, f.pf)); d != "" {
					t.Fatalf("full update: %s", d)
				}
				// Incremental updates of a few changed areas.
				for i := range 3 {
					r := framebuffer.Rect{X: 10 + 37*i, Y: 5 + 41*i, W: 50, H: 33}
					sub := &framebuffer.Canvas{}
					sub.Resize(r.W, r.H)
					pattern(sub, uint64(i+10))
					for y := 0; y < r.H; y++ {
						copy(be.canvas.Row(r.X, r.Y+y, r.W), sub.Row(0, (y*3)%r.H, r.W))
					}
					be.batch.Damage(r)
					be.fb.Publish(be.canvas, &be.batch)
					c.request(true)
					if err := c.readUpdate(); err != nil {
						t.Fatal(err)
					}
					if d := diff(c.fb, quantized(be.canvas, f.pf)); d != "" {
						t.Fatalf("update %d: %s", i, d)
					}
				}
				if c.rectCount[enc] == 0 || len(c.rectCount) != 1 {
					t.Fatalf("rectangles by encoding %v, want only %v", c.rectCount, enc)
				}
			})
		}
	}
}

func TestEncodingPreferenceFollowsClientOrder(t *testing.T) {
	be := newBackend(t, 40, 30)
	addr := startServer(t, &Server{FB: be.fb, Logger: slog.New(slog.DiscardHandler)})
	c, err := dialTest(t, addr, "RFB 003.008\n", "")
	if err != nil {
		t.Fatal(err)
	}
	// RRE (unsupported) first, then hextile before ZRLE: hextile wins.
	c.setEncodings(rfb.EncodingRRE, rfb.EncodingCursor, rfb.EncodingHextile, rfb.EncodingZRLE, rfb.EncodingRaw)
	c.request(false)
	if err := c.readUpdate(); err != nil {
		t.Fatal(err)
	}
	if c.rectCount[rfb.EncodingHextile] == 0 || c.rectCount[rfb.EncodingZRLE] != 0 || c.rectCount[rfb.EncodingRaw] != 0 {
		t.Fatalf("rectangles by encoding %v, want hextile", c.rectCount)
	}
}

func TestCopyRect(t *testing.T) {
	for _, enc := range []rfb.Encoding{rfb.EncodingRaw, rfb.EncodingZRLE} {
		t.Run(enc.String(), func(t *testing.T) {
			be := newBackend(t, 160, 120)
			addr := startServer(t, &Server{FB: be.fb, Logger: slog.New(slog.DiscardHandler)})
			c, err := dialTest(t, addr, "RFB 003.008\n", "")
			if err != nil {
				t.Fatal(err)
			}
			c.setEncodings(rfb.EncodingCopyRect, enc)
			c.request(false)
			if err := c.readUpdate(); err != nil {
				t.Fatal(err)
			}
			// Scroll the whole screen up by 16 rows, repaint the bottom.
			src := framebuffer.Rect{X: 0, Y: 16, W: 160, H: 104}
			be.canvas.Move(src, 0, 0)
			be.batch.Move(src, 0, 0)
			bottom := framebuffer.Rect{X: 0, Y: 104, W: 160, H: 16}
			be.canvas.Fill(bottom, 0xff00ff00)
			be.batch.Damage(bottom)
			be.fb.Publish(be.canvas, &be.batch)
			c.request(true)
			if err := c.readUpdate(); err != nil {
				t.Fatal(err)
			}
			if c.rectCount[rfb.EncodingCopyRect] != 1 {
				t.Fatalf("rectangles by encoding %v, want one copyrect", c.rectCount)
			}
			if d := diff(c.fb, be.canvas); d != "" {
				t.Fatal(d)
			}
		})
	}
}

func TestNoCopyRectWithoutSupport(t *testing.T) {
	be := newBackend(t, 64, 64)
	addr := startServer(t, &Server{FB: be.fb, Logger: slog.New(slog.DiscardHandler)})
	c, err := dialTest(t, addr, "RFB 003.008\n", "")
	if err != nil {
		t.Fatal(err)
	}
	c.setEncodings(rfb.EncodingRaw)
	c.request(false)
	if err := c.readUpdate(); err != nil {
		t.Fatal(err)
	}
	src := framebuffer.Rect{X: 0, Y: 0, W: 32, H: 32}
	be.canvas.Move(src, 32, 32)
	be.batch.Move(src, 32, 32)
	be.fb.Publish(be.canvas, &be.batch)
	c.request(true)
	if err := c.readUpdate(); err != nil {
		t.Fatal(err)
	}
	if c.rectCount[rfb.EncodingCopyRect] != 0 {
		t.Fatalf("copyrect sent to a client that did not ask for it")
	}
	if d := diff(c.fb, be.canvas); d != "" {
		t.Fatal(d)
	}
}

func TestDamageWaitsForRequest(t *testing.T) {
	be := newBackend(t, 64, 64)
	addr := startServer(t, &Server{FB: be.fb, Logger: slog.New(slog.DiscardHandler)})
	c, err := dialTest(t, addr, "RFB 003.008\n", "")
	if err != nil {
		t.Fatal(err)
	}
	c.request(false)
	if err := c.readUpdate(); err != nil {
		t.Fatal(err)
	}
	// Many changes without a request: nothing is sent, then one update
	// carries the latest pixels.
	for i := range 20 {
		be.canvas.Fill(framebuffer.Rect{X: i, Y: i, W: 8, H: 8}, 0xff000000|uint32(i*10))
		be.batch.Damage(framebuffer.Rect{X: i, Y: i, W: 8, H: 8})
		be.fb.Publish(be.canvas, &be.batch)
	}
	c.nc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := c.br.ReadByte(); err == nil {
		t.Fatalf("server sent a message without a pending request")
	}
	c.nc.SetReadDeadline(time.Time{})
	c.request(true)
	if err := c.readUpdate(); err != nil {
		t.Fatal(err)
	}
	if d := diff(c.fb, be.canvas); d != "" {
		t.Fatal(d)
	}
}

func TestResize(t *testing.T) {
	for _, ext := range []bool{true, false} {
		t.Run(fmt.Sprintf("extended=%v", ext), func(t *testing.T) {
			be := newBackend(t, 100, 80)
			addr := startServer(t, &Server{FB: be.fb, Logger: slog.New(slog.DiscardHandler)})
			c, err := dialTest(t, addr, "RFB 003.008\n", "")
			if err != nil {
				t.Fatal(err)
			}
			encs := []rfb.Encoding{rfb.EncodingRaw, rfb.EncodingDesktopSize}
			if ext {
				encs = append(encs, rfb.EncodingExtendedDesktopSize)
			}
			c.setEncodings(encs...)
			c.request(false)
			if err := c.readUpdate(); err != nil {
				t.Fatal(err)
			}
			if ext {
				// The non-incremental request is answered with the
				// screen layout first, then pixels.
				if len(c.extSizes) != 1 || c.extSizes[0] != (extSize{0, 0, 100, 80}) {
					t.Fatalf("ext sizes %v", c.extSizes)
				}
				c.request(true)
				if err := c.readUpdate(); err != nil {
					t.Fatal(err)
				}
			}
			if d := diff(c.fb, be.canvas); d != "" {
				t.Fatal(d)
			}
			be.canvas.Resize(130, 70)
			pattern(be.canvas, 5)
			be.fb.Publish(be.canvas, &be.batch)
			c.request(true)
			if err := c.readUpdate(); err != nil {
				t.Fatal(err)
			}
			if c.w != 130 || c.h != 70 {
				t.Fatalf("client size %dx%d after resize", c.w, c.h)
			}
			if ext && c.rectCount[rfb.EncodingDesktopSize] != 0 {
				t.Fatalf("sent DesktopSize to a client that supports the extended one")
			}
			c.request(true)
			if err := c.readUpdate(); err != nil {
				t.Fatal(err)
			}
			if d := diff(c.fb, be.canvas); d != "" {
				t.Fatal(d)
			}
		})
	}
}

func TestSetDesktopSizeRefused(t *testing.T) {
	be := newBackend(t, 50, 40)
	addr := startServer(t, &Server{FB: be.fb, Logger: slog.New(slog.DiscardHandler)})
	c, err := dialTest(t, addr, "RFB 003.008\n", "")
	if err != nil {
		t.Fatal(err)
	}
	c.setEncodings(rfb.EncodingRaw, rfb.EncodingExtendedDesktopSize)
	b := []byte{msgSetDesktopSize, 0, 0, 200, 0, 100, 1, 0}
	b = append(b, make([]byte, 16)...)
	c.send(b)
	c.request(true)
	if err := c.readUpdate(); err != nil {
		t.Fatal(err)
	}
	if len(c.extSizes) != 1 || c.extSizes[0].reason != extSizeClient || c.extSizes[0].status != extSizeProhibited {
		t.Fatalf("ext sizes %v, want a refusal", c.extSizes)
	}
	if c.w != 50 || c.h != 40 {
		t.Fatalf("client size changed to %dx%d", c.w, c.h)
	}
}

// resizingSink is an input sink whose console resizes on request, as a
// session viewer's does: later, as a server-side resize.
type resizingSink struct {
	*recorder
	be   *backend
	asks chan [2]int
}

func (r resizingSink) Resize(w, h int) error {
	r.asks <- [2]int{w, h}
	return nil
}

func TestSetDesktopSizeForwarded(t *testing.T) {
	be := newBackend(t, 50, 40)
	sink := resizingSink{newRecorder(), be, make(chan [2]int, 1)}
	addr := startServer(t, &Server{FB: be.fb, Input: sink, Logger: slog.New(slog.DiscardHandler)})
	c, err := dialTest(t, addr, "RFB 003.008\n", "")
	if err != nil {
		t.Fatal(err)
	}
	c.setEncodings(rfb.EncodingRaw, rfb.EncodingExtendedDesktopSize)
	b := []byte{msgSetDesktopSize, 0, 0, 200, 0, 100, 1, 0}
	b = append(b, make([]byte, 16)...)
	c.send(b)
	c.request(true)
	if err := c.readUpdate(); err != nil {
		t.Fatal(err)
	}
	if len(c.extSizes) != 1 || c.extSizes[0].reason != extSizeClient || c.extSizes[0].status != extSizeForwarded {
		t.Fatalf("ext sizes %v, want one reply \"forwarded\"", c.extSizes)
	}
	var ask [2]int
	select {
	case ask = <-sink.asks:
	case <-time.After(10 * time.Second):
		t.Fatal("the sink was not asked to resize")
	}
	if ask != [2]int{200, 100} {
		t.Fatalf("resize asked for %v, want 200x100", ask)
	}
	// The console resizes; the client learns it as a server-side resize.
	cv, err := framebuffer.NewCanvas(200, 100)
	if err != nil {
		t.Fatal(err)
	}
	pattern(cv, 2)
	be.canvas = cv
	be.fb.Publish(cv, &be.batch)
	for c.w != 200 || c.h != 100 {
		c.request(true)
		if err := c.readUpdate(); err != nil {
			t.Fatal(err)
		}
	}
	if last := c.extSizes[len(c.extSizes)-1]; last.reason != extSizeServer {
		t.Fatalf("resize announced as %+v, want reason server", last)
	}
}

func TestEvents(t *testing.T) {
	be := newBackend(t, 32, 32)
	addr := startServer(t, &Server{FB: be.fb, Logger: slog.New(slog.DiscardHandler)})
	c, err := dialTest(t, addr, "RFB 003.008\n", "")
	if err != nil {
		t.Fatal(err)
	}
	c.setPixelFormat(rfb.Format16)
	c.setEncodings(rfb.EncodingZRLE, rfb.EncodingCursor, rfb.EncodingDesktopName, rfb.EncodingQEMUExtendedKey)
	c.request(false)
	if err := c.readUpdate(); err != nil {
		t.Fatal(err)
	}
	if c.rectCount[rfb.EncodingQEMUExtendedKey] != 1 {
		t.Fatalf("QEMU extended key support not confirmed: %v", c.rectCount)
	}
	cur := &framebuffer.Cursor{W: 10, H: 3, HotX: 2, HotY: 1, Pix: make([]byte, 4*30)}
	for i := 0; i < 30; i++ {
		copy(cur.Pix[4*i:], []byte{255, 0, 0, byte(i % 2 * 255)})
	}
	be.fb.SetCursor(cur)
	be.fb.SetName("renamed")
	be.fb.Bell()
	be.fb.SetClipboard("héllo ☃")
	c.request(true)
	if err := c.readUpdate(); err != nil {
		t.Fatal(err)
	}
	if c.bells != 1 || len(c.cutText) != 1 || c.cutText[0] != "héllo ?" || c.name != "renamed" {
		t.Fatalf("bells %d, cut text %q, name %q", c.bells, c.cutText, c.name)
	}
	if c.cursor == nil || c.cursor.W != 10 || c.cursor.HotX != 2 || c.cursor.HotY != 1 {
		t.Fatalf("cursor %+v", c.cursor)
	}
	for i := 0; i < 30; i++ {
		want := []byte{255, 0, 0, byte(i % 2 * 255)}
		if !bytes.Equal(c.cursor.Pix[4*i:4*i+4], want) {
			t.Fatalf("cursor pixel %d: %v, want %v", i, c.cursor.Pix[4*i:4*i+4], want)
		}
	}
	be.fb.SetCursor(nil)
	c.request(true)
	if err := c.readUpdate(); err != nil {
		t.Fatal(err)
	}
	if c.cursor != nil {
		t.Fatalf("cursor not hidden")
	}
}

func TestInput(t *testing.T) {
	be := newBackend(t, 32, 32)
	rec := newRecorder()
	addr := startServer(t, &Server{FB: be.fb, Input: rec, Logger: slog.New(slog.DiscardHandler)})
	c, err := dialTest(t, addr, "RFB 003.008\n", "")
	if err != nil {
		t.Fatal(err)
	}
	key := func(ks uint32, down bool) []byte {
		b := []byte{msgKeyEvent, 0, 0, 0}
		if down {
			b[1] = 1
		}
		return binary.BigEndian.AppendUint32(b, ks)
	}
	qkey := func(ks, code uint32, down bool) []byte {
		b := []byte{msgQEMU, 0, 0, 0}
		if down {
			b[3] = 1
		}
		b = binary.BigEndian.AppendUint32(b, ks)
		return binary.BigEndian.AppendUint32(b, code)
	}
	ptr := func(mask byte, x, y uint16) []byte {
		b := []byte{msgPointerEvent, mask}
		b = binary.BigEndian.AppendUint16(b, x)
		return binary.BigEndian.AppendUint16(b, y)
	}
	var msgs []byte
	msgs = append(msgs, key('A', true)...)
	msgs = append(msgs, key('A', false)...)
	msgs = append(msgs, key(0xffe3, true)...)     // Control_L
	msgs = append(msgs, key(0xffff, true)...)     // Delete
	msgs = append(msgs, key('!', true)...)        // shifted 1
	msgs = append(msgs, key(0x010020ac, true)...) // € as a Unicode keysym
	msgs = append(msgs, qkey('a', 0x1e, true)...)
	msgs = append(msgs, qkey(0xff53, 0xcd, false)...) // Right, E0 4D
	msgs = append(msgs, ptr(0, 10, 20)...)
	msgs = append(msgs, ptr(1, 11, 21)...)
	msgs = append(msgs, ptr(1|16, 11, 21)...) // wheel down pressed
	msgs = append(msgs, ptr(1, 11, 21)...)    // released
	msgs = append(msgs, ptr(8, 11, 21)...)    // wheel up
	cut := []byte{msgClientCutText, 0, 0, 0}
	cut = binary.BigEndian.AppendUint32(cut, 5)
	cut = append(cut, 'c', 'a', 'f', 0xe9, '!')
	msgs = append(msgs, cut...)
	c.send(msgs)
	rec.waitFor(t, "input", func() bool { return len(rec.clips) == 1 })

	wantKeys := []input.KeyEvent{
		{Key: "A", Code: "KeyA", Down: true},
		{Key: "A", Code: "KeyA", Down: false},
		{Key: "Control", Code: "ControlLeft", Down: true},
		{Key: "Delete", Code: "Delete", Down: true},
		{Key: "!", Code: "Digit1", Down: true},
		{Key: "€", Code: "", Down: true},
		{Key: "a", Code: "KeyA", Down: true},
		{Key: "ArrowRight", Code: "ArrowRight", Down: false},
	}
	if fmt.Sprint(rec.keys) != fmt.Sprint(wantKeys) {
		t.Errorf("keys\n%v\nwant\n%v", rec.keys, wantKeys)
	}
	wantPtr := []input.PointerEvent{
		{X: 10, Y: 20},
		{X: 11, Y: 21, Buttons: input.ButtonLeft},
		{X: 11, Y: 21, Buttons: input.ButtonLeft, WheelY: 1},
		{X: 11, Y: 21, Buttons: input.ButtonLeft},
		{X: 11, Y: 21, WheelY: -1},
	}
	if fmt.Sprint(rec.pointers) != fmt.Sprint(wantPtr) {
		t.Errorf("pointer\n%v\nwant\n%v", rec.pointers, wantPtr)
	}
	if rec.clips[0] != "café!" {
		t.Errorf("clipboard %q", rec.clips[0])
	}
}

func TestKeysymMapping(t *testing.T) {
	tests := []struct {
		ks        uint32
		key, code string
	}{
		{'a', "a", "KeyA"}, {'Z', "Z", "KeyZ"}, {'5', "5", "Digit5"}, {'%', "%", "Digit5"},
		{' ', " ", "Space"}, {'~', "~", "Backquote"}, {'?', "?", "Slash"}, {'"', "\"", "Quote"},
		{0xff0d, "Enter", "Enter"}, {0xff08, "Backspace", "Backspace"}, {0xffbe, "F1", "F1"},
		{0xffc9, "F12", "F12"}, {0xffb7, "7", "Numpad7"}, {0xffea, "Alt", "AltRight"},
		{0xe9, "é", ""}, {0xfe51, "Dead", ""}, {0x12345, "Unidentified", ""},
	}
	for _, tt := range tests {
		ev := keyEventFromKeysym(tt.ks, true)
		if ev.Key != tt.key || ev.Code != tt.code || !ev.Down {
			t.Errorf("keysym %#x: %+v, want key %q code %q", tt.ks, ev, tt.key, tt.code)
		}
	}
}

// TestManyClientsAndHostile runs well-behaved clients next to hostile ones:
// each hostile client is dropped with a logged reason, the others keep
// getting correct pictures.
func TestManyClientsAndHostile(t *testing.T) {
	be := newBackend(t, 120, 90)
	logs := &syncBuffer{}
	addr := startServer(t, &Server{FB: be.fb, MaxCutText: 4096, Logger: slog.New(slog.NewTextHandler(logs, nil))})

	var good []*testClient
	for i := range 8 {
		c, err := dialTest(t, addr, "RFB 003.008\n", "")
		if err != nil {
			t.Fatal(err)
		}
		c.setEncodings([]rfb.Encoding{rfb.EncodingRaw, rfb.EncodingHextile, rfb.EncodingZRLE}[i%3], rfb.EncodingCopyRect)
		c.request(false)
		if err := c.readUpdate(); err != nil {
			t.Fatal(err)
		}
		good = append(good, c)
	}

	hostile := []struct {
		name   string
		msg    []byte
		reason string
	}{
		{"garbage", []byte{0x77, 1, 2, 3, 4}, "unsupported message type 119"},
		{"huge cut text", []byte{msgClientCutText, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff}, "ClientCutText of 2147483647 bytes"},
		{"cut text over limit", []byte{msgClientCutText, 0, 0, 0, 0, 0, 0x10, 1}, "ClientCutText of 4097 bytes"},
		{"absurd encodings count", []byte{msgSetEncodings, 0, 0xff, 0xff}, "SetEncodings lists 65535 encodings"},
		{"colour map", append([]byte{msgSetPixelFormat, 0, 0, 0}, (&rfb.PixelFormat{BitsPerPixel: 8, Depth: 8}).Marshal()...), "colour-map"},
		{"24 bpp", append([]byte{msgSetPixelFormat, 0, 0, 0}, (&rfb.PixelFormat{BitsPerPixel: 24, Depth: 24, TrueColour: true, RedMax: 255, GreenMax: 255, BlueMax: 255}).Marshal()...), "bits-per-pixel 24"},
		{"bad qemu submessage", []byte{msgQEMU, 9}, "QEMU submessage 9"},
	}
	for _, h := range hostile {
		t.Run(h.name, func(t *testing.T) {
			c, err := dialTest(t, addr, "RFB 003.008\n", "")
			if err != nil {
				t.Fatal(err)
			}
			c.send(h.msg)
			c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.Copy(io.Discard, c.nc); err != nil {
				t.Fatalf("want the server to close the connection, got %v", err)
			}
			// The reason is logged before the socket closes.
			if !strings.Contains(logs.String(), h.reason) {
				t.Fatalf("log lacks %q:\n%s", h.reason, logs)
			}
		})
	}

	// The well-behaved clients still follow changes.
	for round := range 3 {
		r := framebuffer.Rect{X: 7 * round, Y: 11 * round, W: 60, H: 40}
		pattern(be.canvas, uint64(round+100))
		be.batch.Damage(be.canvas.Bounds())
		src := framebuffer.Rect{X: 0, Y: 10, W: 120, H: 80}
		be.canvas.Move(src, 0, 0)
		be.batch.Move(src, 0, 0)
		be.canvas.Fill(r, 0xff0000ff)
		be.batch.Damage(r)
		be.fb.Publish(be.canvas, &be.batch)
		for i, c := range good {
			c.request(true)
			if err := c.readUpdate(); err != nil {
				t.Fatalf("client %d: %v", i, err)
			}
			if d := diff(c.fb, be.canvas); d != "" {
				t.Fatalf("client %d round %d: %s", i, round, d)
			}
		}
	}
	if n := be.fb.Viewers(); n != len(good) {
		t.Fatalf("%d viewers subscribed, want %d (hostile ones must be gone)", n, len(good))
	}
}

func TestServeConnEndsWithContext(t *testing.T) {
	be := newBackend(t, 16, 16)
	s := &Server{FB: be.fb, Logger: slog.New(slog.DiscardHandler)}
	a, b := net.Pipe()
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ServeConn(ctx, a) }()
	var v [12]byte
	if _, err := io.ReadFull(b, v[:]); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ServeConn after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ServeConn did not return after its context ended")
	}
	if be.fb.Viewers() != 0 {
		t.Fatal("viewer left subscribed")
	}
}

func TestPixelFormatChecks(t *testing.T) {
	bad := []rfb.PixelFormat{
		{BitsPerPixel: 8, Depth: 8}, // colour map
		{BitsPerPixel: 16, Depth: 16, TrueColour: true, RedMax: 255, GreenMax: 1, BlueMax: 1, RedShift: 11}, // overflow
		{BitsPerPixel: 12, Depth: 12, TrueColour: true, RedMax: 15, GreenMax: 15, BlueMax: 15},
	}
	for _, pf := range bad {
		if err := checkPixelFormat(pf); err == nil {
			t.Errorf("%v accepted", pf)
		}
	}
	for _, f := range testFormats {
		if err := checkPixelFormat(f.pf); err != nil {
			t.Errorf("%s: %v", f.name, err)
		}
	}
	var pe *ProtocolError
	if !errors.As(protocolErrorf("x"), &pe) {
		t.Fatal("protocolErrorf does not make a ProtocolError")
	}
}

// TestClientThatStopsReading checks that a client which asks for updates
// but never reads them is dropped by the write deadline, with a logged
// reason, and leaves no viewer behind.
func TestClientThatStopsReading(t *testing.T) {
	be := newBackend(t, 1024, 768)
	logs := &syncBuffer{}
	addr := startServer(t, &Server{FB: be.fb, WriteTimeout: 200 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	c, err := dialTest(t, addr, "RFB 003.008\n", "")
	if err != nil {
		t.Fatal(err)
	}
	c.setEncodings(rfb.EncodingRaw)
	// Each non-incremental request is answered with a full 3 MB frame;
	// enough of them fill any socket buffer.
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(logs.String(), "dropping client") {
		if time.Now().After(deadline) {
			t.Fatalf("slow client not dropped; log:\n%s", logs)
		}
		c.nc.SetWriteDeadline(time.Now().Add(time.Second))
		c.nc.Write([]byte{msgUpdateRequest, 0, 0, 0, 0, 0, 4, 0, 3, 0})
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "timeout") {
		t.Fatalf("drop reason is not the write timeout:\n%s", logs)
	}
	for be.fb.Viewers() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("viewer left subscribed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
