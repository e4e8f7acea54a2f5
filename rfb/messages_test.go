package rfb

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"

	"kvmgate/backend"
	"kvmgate/framebuffer"
	"kvmgate/input"
)

// liveFake is a client running Run against a fake server that the test
// drives from its own goroutine.
type liveFake struct {
	t    *testing.T
	s    *fakeServer
	c    *Client
	fb   *framebuffer.Framebuffer
	errc chan error
}

// startLive handshakes (RFB 3.8, None) a w×h desktop, starts Run and reads
// the client's first, non-incremental update request.
func startLive(t *testing.T, opts Options, w, h int, pf PixelFormat) *liveFake {
	t.Helper()
	sconnc := make(chan *fakeServer, 1)
	conn := startFake(t, func(s *fakeServer) {
		s.write([]byte("RFB 003.008\n"))
		s.read(12)
		s.write([]byte{1, secNone})
		s.read(1)
		s.write(u32(0))
		s.read(1)
		s.write(serverInitMsg(w, h, pf, "fake"))
		sconnc <- s
	})
	c, err := NewClient(context.Background(), conn, opts)
	if err != nil {
		t.Fatal(err)
	}
	s := <-sconnc
	if !opts.ServerFormat {
		s.expectMsg(msgSetPixelFormat)
	}
	s.expectMsg(msgSetEncodings)
	lf := &liveFake{t: t, s: s, c: c, fb: framebuffer.New(), errc: make(chan error, 1)}
	go func() { lf.errc <- c.Run(context.Background(), lf.fb) }()
	want := append([]byte{msgFramebufferUpdateReq, 0}, appendRect16(nil, framebuffer.Rect{W: w, H: h})...)
	if got := s.msg(); !bytes.Equal(got, want) {
		t.Fatalf("first request % x, want % x", got, want)
	}
	t.Cleanup(func() { c.Close() })
	return lf
}

// sync sends a fence request and waits for its answer: everything the
// server sent before has then been handled by Run.
func (lf *liveFake) sync() {
	lf.t.Helper()
	lf.s.write(serverFence(1<<31, []byte("sync")))
	m := lf.s.expectMsg(msgClientFence)
	if !bytes.Equal(m, appendClientFence(nil, 0, []byte("sync"))) {
		lf.t.Fatalf("fence answer % x", m)
	}
}

// runErr waits for Run to return.
func (lf *liveFake) runErr() error {
	select {
	case err := <-lf.errc:
		return err
	case <-time.After(5 * time.Second):
		lf.t.Fatal("Run did not return")
		return nil
	}
}

func serverFence(flags uint32, payload []byte) []byte {
	b := []byte{msgServerFence, 0, 0, 0}
	b = binary.BigEndian.AppendUint32(b, flags)
	b = append(b, byte(len(payload)))
	return append(b, payload...)
}

func updateHdr(n int) []byte { return append([]byte{msgFramebufferUpdate, 0}, u16(uint16(n))...) }

func rectHdr(x, y, w, h int, e Encoding) []byte {
	b := appendRect16(nil, framebuffer.Rect{X: x, Y: y, W: w, H: h})
	return binary.BigEndian.AppendUint32(b, uint32(e))
}

func TestRunRawUpdate(t *testing.T) {
	lf := startLive(t, NewOptions(), 4, 2, NativeFormat)
	pix := make([]byte, 4*2*4)
	for i := range pix {
		pix[i] = byte(i * 7)
	}
	lf.s.write(updateHdr(1), rectHdr(0, 0, 4, 2, EncodingRaw), pix)
	select {
	case <-lf.c.FullFrame():
	case <-time.After(5 * time.Second):
		t.Fatal("no full frame")
	}
	snap := lf.fb.Snapshot()
	for i := 0; i < 8; i++ {
		want := uint32(pix[4*i]) | uint32(pix[4*i+1])<<8 | uint32(pix[4*i+2])<<16 | 0xff000000
		if got := snap.At(i%4, i/4); got != want {
			t.Errorf("pixel %d = %08x, want %08x", i, got, want)
		}
	}
	want := append([]byte{msgFramebufferUpdateReq, 1}, appendRect16(nil, framebuffer.Rect{W: 4, H: 2})...)
	if got := lf.s.msg(); !bytes.Equal(got, want) {
		t.Errorf("next request % x, want incremental % x", got, want)
	}
}

func TestRunFullFrameFromPieces(t *testing.T) {
	lf := startLive(t, NewOptions(), 4, 2, NativeFormat)
	lf.s.write(updateHdr(1), rectHdr(0, 0, 4, 1, EncodingRaw), make([]byte, 16))
	lf.sync()
	select {
	case <-lf.c.FullFrame():
		t.Fatal("full frame after half the screen")
	default:
	}
	lf.s.write(updateHdr(1), rectHdr(0, 1, 4, 1, EncodingRaw), make([]byte, 16))
	select {
	case <-lf.c.FullFrame():
	case <-time.After(5 * time.Second):
		t.Fatal("no full frame")
	}
}

func TestRunPseudoEncodings(t *testing.T) {
	lf := startLive(t, NewOptions(), 4, 2, NativeFormat)
	s := lf.s
	screen := append(u32(7), appendRect16(nil, framebuffer.Rect{W: 8, H: 6})...)
	screen = append(screen, u32(0x10)...)
	s.write(updateHdr(0xffff),
		rectHdr(0, 0, 0, 0, EncodingDesktopName), str32("Büro desktop"),
		rectHdr(0, 0, 8, 6, EncodingExtendedDesktopSize), []byte{1, 0, 0, 0}, screen,
		rectHdr(0, 0, 0, 0, EncodingQEMUExtendedKey),
		rectHdr(0, 0, 0, 0, EncodingQEMULEDState), []byte{byte(LEDCapsLock | LEDNumLock)},
		rectHdr(0, 0, 0, 0, EncodingQEMUPointerMotion),
		rectHdr(0, 0, 0, 0, EncodingLastRect))
	lf.sync()
	if lf.c.Name() != "Büro desktop" || lf.fb.Name() != "Büro desktop" {
		t.Errorf("name %q / %q", lf.c.Name(), lf.fb.Name())
	}
	if w, h := lf.c.Size(); w != 8 || h != 6 {
		t.Errorf("client size %dx%d, want 8x6", w, h)
	}
	if w, h := lf.fb.Size(); w != 8 || h != 6 {
		t.Errorf("framebuffer size %dx%d, want 8x6", w, h)
	}
	if got := lf.c.Screens(); len(got) != 1 || got[0] != (Screen{ID: 7, W: 8, H: 6, Flags: 0x10}) {
		t.Errorf("screens %+v", got)
	}
	if l, ok := lf.c.LEDs(); !ok || l != LEDCapsLock|LEDNumLock {
		t.Errorf("LEDs %v %v", l, ok)
	}
	if !lf.c.RelativePointer() {
		t.Error("pointer mode not relative")
	}
	if p := lf.fb.Caps().Pointer; p != "relative" {
		t.Errorf("framebuffer pointer kind %q, want relative", p)
	}
	info := lf.c.Info()
	if info.Details["keys"] != "qemu-extended" || info.Details["pointer"] != "relative" || info.Details["leds"] != "num,caps" {
		t.Errorf("info details %v", info.Details)
	}

	// QEMU key events now, with the keysym too.
	if err := lf.c.Key(input.KeyEvent{Code: "ArrowRight", Key: "ArrowRight", Down: true}); err != nil {
		t.Fatal(err)
	}
	if got, want := s.expectMsg(msgQEMU), appendQEMUKeyEvent(nil, true, 0xff53, 0xcd); !bytes.Equal(got, want) {
		t.Errorf("QEMU key % x, want % x", got, want)
	}
	// Relative motion: deltas around 0x7fff.
	if err := lf.c.Pointer(input.PointerEvent{X: 5, Y: 3}); err != nil {
		t.Fatal(err)
	}
	if err := lf.c.Pointer(input.PointerEvent{X: 2, Y: 3, Buttons: input.ButtonLeft}); err != nil {
		t.Fatal(err)
	}
	if got, want := s.expectMsg(msgPointerEvent), appendPointerEvent(nil, 0, 0x7fff+5, 0x7fff+3); !bytes.Equal(got, want) {
		t.Errorf("relative pointer % x, want % x", got, want)
	}
	if got, want := s.expectMsg(msgPointerEvent), appendPointerEvent(nil, 1, 0x7fff-3, 0x7fff); !bytes.Equal(got, want) {
		t.Errorf("relative pointer % x, want % x", got, want)
	}

	// Back to absolute, and a VMware LED update.
	s.write(updateHdr(2), rectHdr(1, 0, 0, 0, EncodingQEMUPointerMotion),
		rectHdr(0, 0, 0, 0, EncodingVMwareLEDState), u32(uint32(LEDScrollLock)))
	lf.sync()
	if l, _ := lf.c.LEDs(); l != LEDScrollLock || lf.c.RelativePointer() {
		t.Errorf("LEDs %v relative %v", l, lf.c.RelativePointer())
	}
	if p := lf.fb.Caps().Pointer; p != "absolute" {
		t.Errorf("framebuffer pointer kind %q after the switch back, want absolute", p)
	}
}

func TestInputMessages(t *testing.T) {
	lf := startLive(t, NewOptions(), 100, 50, NativeFormat)
	tests := []struct {
		name string
		send func(c *Client) error
		want [][]byte
	}{
		{"key a down", func(c *Client) error { return c.Key(input.KeyEvent{Code: "KeyA", Key: "a", Down: true}) },
			[][]byte{{msgKeyEvent, 1, 0, 0, 0, 0, 0, 'a'}}},
		{"shifted key up", func(c *Client) error { return c.Key(input.KeyEvent{Code: "KeyA", Key: "A"}) },
			[][]byte{{msgKeyEvent, 0, 0, 0, 0, 0, 0, 'A'}}},
		{"enter", func(c *Client) error { return c.Key(input.KeyEvent{Code: "Enter", Key: "Enter", Down: true}) },
			[][]byte{{msgKeyEvent, 1, 0, 0, 0, 0, 0xff, 0x0d}}},
		{"pointer", func(c *Client) error {
			return c.Pointer(input.PointerEvent{X: 10, Y: 20, Buttons: input.ButtonLeft | input.ButtonRight})
		}, [][]byte{{msgPointerEvent, 5, 0, 10, 0, 20}}},
		{"pointer clamped", func(c *Client) error { return c.Pointer(input.PointerEvent{X: 1000, Y: -4}) },
			[][]byte{{msgPointerEvent, 0, 0, 99, 0, 0}}},
		{"wheel down twice", func(c *Client) error { return c.Pointer(input.PointerEvent{X: 1, Y: 2, WheelY: 2}) },
			[][]byte{{msgPointerEvent, 0, 0, 1, 0, 2}, {msgPointerEvent, 16, 0, 1, 0, 2}, {msgPointerEvent, 0, 0, 1, 0, 2},
				{msgPointerEvent, 16, 0, 1, 0, 2}, {msgPointerEvent, 0, 0, 1, 0, 2}}},
		{"wheel up with left held", func(c *Client) error {
			return c.Pointer(input.PointerEvent{X: 1, Y: 2, WheelY: -1, Buttons: input.ButtonLeft})
		}, [][]byte{{msgPointerEvent, 1, 0, 1, 0, 2}, {msgPointerEvent, 9, 0, 1, 0, 2}, {msgPointerEvent, 1, 0, 1, 0, 2}}},
		{"wheel left", func(c *Client) error { return c.Pointer(input.PointerEvent{WheelX: -1}) },
			[][]byte{{msgPointerEvent, 0, 0, 0, 0, 0}, {msgPointerEvent, 32, 0, 0, 0, 0}, {msgPointerEvent, 0, 0, 0, 0, 0}}},
		{"wheel right", func(c *Client) error { return c.Pointer(input.PointerEvent{WheelX: 1}) },
			[][]byte{{msgPointerEvent, 0, 0, 0, 0, 0}, {msgPointerEvent, 64, 0, 0, 0, 0}, {msgPointerEvent, 0, 0, 0, 0, 0}}},
		{"refresh", func(c *Client) error { return c.Refresh() },
			[][]byte{{msgFramebufferUpdateReq, 0, 0, 0, 0, 0, 0, 100, 0, 50}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.send(lf.c); err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if got := lf.s.msg(); !bytes.Equal(got, w) {
					t.Errorf("got % x, want % x", got, w)
				}
			}
		})
	}
	if err := lf.c.Key(input.KeyEvent{Code: "NoSuchKey", Key: "Unidentified"}); err == nil {
		t.Error("key without keysym accepted")
	}
}

func TestRunFenceAndContinuousUpdates(t *testing.T) {
	lf := startLive(t, NewOptions(), 16, 8, NativeFormat)
	s := lf.s
	// Unknown flag bits are cleared, known ones kept, payload echoed.
	s.write(serverFence(1<<31|1<<0|1<<2|1<<9, []byte("abc")))
	if got, want := s.msg(), appendClientFence(nil, 1|4, []byte("abc")); !bytes.Equal(got, want) {
		t.Errorf("fence answer % x, want % x", got, want)
	}
	s.write([]byte{msgEndOfContinuousUpdates})
	if got, want := s.msg(), appendEnableContinuousUpdates(nil, true, framebuffer.Rect{W: 16, H: 8}); !bytes.Equal(got, want) {
		t.Errorf("got % x, want EnableContinuousUpdates % x", got, want)
	}
	// In push mode an update brings no new request: the next message is
	// the fence answer.
	s.write(updateHdr(1), rectHdr(0, 0, 16, 8, EncodingRaw), make([]byte, 16*8*4))
	s.write(serverFence(1<<31, []byte("x")))
	if got := s.msg(); got[0] != msgClientFence {
		t.Errorf("got % x, want the fence answer and no update request", got)
	}
	// A resize re-enables continuous updates for the new size.
	s.write(updateHdr(1), rectHdr(0, 0, 20, 10, EncodingDesktopSize))
	if got, want := s.msg(), appendEnableContinuousUpdates(nil, true, framebuffer.Rect{W: 20, H: 10}); !bytes.Equal(got, want) {
		t.Errorf("got % x, want EnableContinuousUpdates % x", got, want)
	}
	if lf.c.Info().Details["updates"] != "continuous" {
		t.Error("info does not say continuous")
	}
	// The server ending them: back to requests.
	s.write([]byte{msgEndOfContinuousUpdates})
	if got, want := s.msg(), appendUpdateRequest(nil, true, framebuffer.Rect{W: 20, H: 10}); !bytes.Equal(got, want) {
		t.Errorf("got % x, want incremental request % x", got, want)
	}
}

func TestXVPAction(t *testing.T) {
	lf := startLive(t, NewOptions(), 4, 4, NativeFormat)
	if err := lf.c.Action(input.ActionReboot); !errors.Is(err, backend.ErrUnsupported) {
		t.Errorf("action before xvp init: %v, want ErrUnsupported", err)
	}
	lf.s.write([]byte{msgServerXVP, 0, 1, 1})
	lf.sync()
	for a, code := range map[input.Action]byte{input.ActionShutdown: 2, input.ActionReboot: 3, input.ActionReset: 4} {
		if err := lf.c.Action(a); err != nil {
			t.Fatal(err)
		}
		if got, want := lf.s.expectMsg(msgXVP), []byte{msgXVP, 0, 1, code}; !bytes.Equal(got, want) {
			t.Errorf("%s: % x, want % x", a, got, want)
		}
	}
	if err := lf.c.Action(input.ActionPowerOn); !errors.Is(err, backend.ErrUnsupported) {
		t.Errorf("power-on: %v, want ErrUnsupported", err)
	}
	if got := lf.c.Info().Actions; len(got) != 3 {
		t.Errorf("actions %v", got)
	}
	lf.s.write([]byte{msgServerXVP, 0, 1, 0}) // XVP_FAIL: logged, not fatal
	lf.sync()
}

func TestSetDesktopSize(t *testing.T) {
	lf := startLive(t, NewOptions(), 8, 8, NativeFormat)
	ctx := context.Background()
	if err := lf.c.Resize(ctx, 20, 10); !errors.Is(err, backend.ErrUnsupported) {
		t.Errorf("before ExtendedDesktopSize: %v", err)
	}
	if c := lf.fb.Caps(); c.Resizable || c.Pointer != "absolute" {
		t.Errorf("caps before ExtendedDesktopSize %+v, want absolute and not resizable", c)
	}
	scr := append(u32(42), appendRect16(nil, framebuffer.Rect{W: 8, H: 8})...)
	scr = append(scr, u32(3)...)
	lf.s.write(updateHdr(1), rectHdr(0, 0, 8, 8, EncodingExtendedDesktopSize), []byte{1, 0, 0, 0}, scr)
	lf.sync()
	if !lf.fb.Caps().Resizable {
		t.Errorf("caps %+v after ExtendedDesktopSize, want resizable", lf.fb.Caps())
	}

	errc := make(chan error, 1)
	go func() { errc <- lf.c.SetDesktopSize(ctx, 20, 10) }()
	want := []byte{msgSetDesktopSize, 0, 0, 20, 0, 10, 1, 0, 0, 0, 0, 42, 0, 0, 0, 0, 0, 20, 0, 10, 0, 0, 0, 3}
	if got := lf.s.expectMsg(msgSetDesktopSize); !bytes.Equal(got, want) {
		t.Errorf("SetDesktopSize % x, want % x", got, want)
	}
	lf.s.write(updateHdr(1), rectHdr(1, 3, 0, 0, EncodingExtendedDesktopSize), []byte{0, 0, 0, 0})
	var re *ResizeError
	if err := <-errc; !errors.As(err, &re) || re.Code != 3 {
		t.Errorf("refused resize: %v, want ResizeError code 3", err)
	}

	go func() { errc <- lf.c.SetDesktopSize(ctx, 20, 10) }()
	lf.s.expectMsg(msgSetDesktopSize)
	scr = append(u32(42), appendRect16(nil, framebuffer.Rect{W: 20, H: 10})...)
	scr = append(scr, u32(3)...)
	lf.s.write(updateHdr(1), rectHdr(1, 0, 20, 10, EncodingExtendedDesktopSize), []byte{1, 0, 0, 0}, scr)
	if err := <-errc; err != nil {
		t.Errorf("accepted resize: %v", err)
	}
	if w, h := lf.c.Size(); w != 20 || h != 10 {
		t.Errorf("size %dx%d after resize", w, h)
	}
}

func TestRunColourMap(t *testing.T) {
	pf := PixelFormat{BitsPerPixel: 8, Depth: 8}
	opts := NewOptions()
	opts.PixelFormat = &pf
	lf := startLive(t, opts, 3, 1, NativeFormat)
	// Entries 1 and 2: red and blue, 16-bit intensities.
	lf.s.write([]byte{msgSetColourMapEntries, 0}, u16(1), u16(2),
		u16(0xffff), u16(0), u16(0), u16(0), u16(0), u16(0x8080))
	lf.s.write(updateHdr(1), rectHdr(0, 0, 3, 1, EncodingRaw), []byte{2, 1, 0})
	<-lf.c.FullFrame()
	snap := lf.fb.Snapshot()
	want := []uint32{0xff800000, 0xff0000ff, 0xff000000}
	for x, w := range want {
		if got := snap.At(x, 0); got != w {
			t.Errorf("pixel %d = %08x, want %08x", x, got, w)
		}
	}
}

func TestBellAndPlainCutText(t *testing.T) {
	lf := startLive(t, NewOptions(), 4, 4, NativeFormat)
	v := lf.fb.Subscribe()
	defer v.Close()
	var dst framebuffer.Canvas
	v.Take(&dst)
	lf.s.write([]byte{msgBell}, []byte{msgServerCutText, 0, 0, 0}, u32(5), []byte("caf\xe9\n"))
	lf.sync()
	u := v.Take(&dst)
	if u.Bells != 1 || !u.ClipboardChanged || u.Clipboard != "café\n" {
		t.Errorf("update %+v", u)
	}
	if err := lf.c.Clipboard("naïve ☃\r\nx"); err != nil {
		t.Fatal(err)
	}
	want := append([]byte{msgClientCutText, 0, 0, 0}, u32(9)...)
	want = append(want, "na\xefve ?\nx"...)
	if got := lf.s.expectMsg(msgClientCutText); !bytes.Equal(got, want) {
		t.Errorf("ClientCutText % x, want % x", got, want)
	}
}

func zlibBytes(b []byte) []byte {
	var z bytes.Buffer
	w := zlib.NewWriter(&z)
	w.Write(b)
	w.Close()
	return z.Bytes()
}

func extCut(flags uint32, body []byte) []byte {
	b := []byte{msgServerCutText, 0, 0, 0}
	b = binary.BigEndian.AppendUint32(b, negLen(4+len(body)))
	b = binary.BigEndian.AppendUint32(b, flags)
	return append(b, body...)
}

func TestExtendedClipboard(t *testing.T) {
	lf := startLive(t, NewOptions(), 4, 4, NativeFormat)
	s := lf.s
	v := lf.fb.Subscribe()
	defer v.Close()
	var dst framebuffer.Canvas
	v.Take(&dst)
	// Server caps: text (limit 1000) and html (limit 0); takes all actions.
	s.write(extCut(clipCaps|clipRequest|clipPeek|clipNotify|clipProvide|clipText|1<<2, append(u32(1000), u32(0)...)))
	m := s.expectMsg(msgClientCutText)
	if m == nil || int32(binary.BigEndian.Uint32(m[4:])) != -8 ||
		binary.BigEndian.Uint32(m[8:])&(clipCaps|clipText|clipProvide) != clipCaps|clipText|clipProvide {
		t.Fatalf("client caps % x", m)
	}

	// Small text is provided at once, zlib-compressed, CRLF, NUL-terminated.
	if err := lf.c.Clipboard("héllo\nx"); err != nil {
		t.Fatal(err)
	}
	m = s.expectMsg(msgClientCutText)
	if binary.BigEndian.Uint32(m[8:]) != clipProvide|clipText {
		t.Fatalf("flags %08x, want provide|text", binary.BigEndian.Uint32(m[8:]))
	}
	zr, err := zlib.NewReader(bytes.NewReader(m[12:]))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := io.ReadAll(zr)
	if want := append(u32(uint32(len("héllo\r\nx\x00"))), "héllo\r\nx\x00"...); !bytes.Equal(payload, want) {
		t.Errorf("provide payload %q, want %q", payload, want)
	}

	// Text over the server's limit is announced, then provided on request.
	long := string(bytes.Repeat([]byte("y"), 2000))
	if err := lf.c.Clipboard(long); err != nil {
		t.Fatal(err)
	}
	if got, want := s.expectMsg(msgClientCutText), appendClipFlags(nil, clipNotify|clipText); !bytes.Equal(got, want) {
		t.Errorf("got % x, want notify", got)
	}
	s.write(extCut(clipRequest|clipText, nil))
	if got, want := s.expectMsg(msgClientCutText), appendClipProvide(nil, long); !bytes.Equal(got, want) {
		t.Errorf("request answered with %d bytes, want the provide", len(got))
	}

	// Server notify → client request; server provide → framebuffer.
	s.write(extCut(clipNotify|clipText, nil))
	if got, want := s.expectMsg(msgClientCutText), appendClipFlags(nil, clipRequest|clipText); !bytes.Equal(got, want) {
		t.Errorf("got % x, want request", got)
	}
	text := append(u32(12), "hi\r\nthere ☃\x00"...)
	text = append(text, u32(3)...) // an html part after the text
	text = append(text, "<b>"...)
	binary.BigEndian.PutUint32(text, uint32(len("hi\r\nthere ☃\x00")))
	s.write(extCut(clipProvide|clipText|1<<2, zlibBytes(text)))
	lf.sync()
	if u := v.Take(&dst); u.Clipboard != "hi\nthere ☃" {
		t.Errorf("clipboard %q", u.Clipboard)
	}
	if lf.c.Info().Details["clipboard"] != "extended" {
		t.Error("info does not say extended clipboard")
	}
}

func TestRunHostileServer(t *testing.T) {
	tests := []struct {
		name string
		msg  [][]byte
	}{
		{"rect outside", [][]byte{updateHdr(1), rectHdr(2, 2, 4, 4, EncodingRaw)}},
		{"rect overflowing width", [][]byte{updateHdr(1), rectHdr(65535, 0, 2, 1, EncodingRaw)}},
		{"unknown encoding", [][]byte{updateHdr(1), rectHdr(0, 0, 1, 1, 12345)}},
		{"unknown message", [][]byte{{77}}},
		{"huge desktop size", [][]byte{updateHdr(1), rectHdr(0, 0, 65535, 65535, EncodingDesktopSize)}},
		{"huge cut text", [][]byte{{msgServerCutText, 0, 0, 0}, u32(0x7ffffff0)}},
		{"huge extended cut text", [][]byte{{msgServerCutText, 0, 0, 0}, u32(0x80000000)}},
		{"short extended cut text", [][]byte{{msgServerCutText, 0, 0, 0}, u32(negLen(2))}},
		{"colour map overflow", [][]byte{{msgSetColourMapEntries, 0}, u16(0xffff), u16(2), make([]byte, 12)}},
		{"huge name", [][]byte{updateHdr(1), rectHdr(0, 0, 0, 0, EncodingDesktopName), u32(1 << 30)}},
		{"huge cursor", [][]byte{updateHdr(1), rectHdr(0, 0, 4096, 4096, EncodingCursor)}},
		{"fence payload too long", [][]byte{serverFence(1<<31, bytes.Repeat([]byte{1}, 65))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lf := startLive(t, NewOptions(), 4, 4, NativeFormat)
			for _, b := range tt.msg {
				lf.s.write(b)
			}
			err := lf.runErr()
			var pe *ProtocolError
			if !errors.As(err, &pe) {
				t.Errorf("Run returned %v, want a ProtocolError", err)
			}
		})
	}
}

func TestRunStops(t *testing.T) {
	lf := startLive(t, NewOptions(), 4, 4, NativeFormat)
	lf.c.Close()
	if err := lf.runErr(); err != nil {
		t.Errorf("Run after Close: %v", err)
	}
	if err := lf.c.Key(input.KeyEvent{Code: "KeyA", Key: "a", Down: true}); err == nil {
		t.Error("Key after Close succeeded")
	}

	sconnc := make(chan *fakeServer, 1)
	conn := startFake(t, func(s *fakeServer) {
		s.write([]byte("RFB 003.008\n"))
		s.read(12)
		s.write([]byte{1, secNone})
		s.read(1)
		s.write(u32(0))
		s.read(1)
		s.write(serverInitMsg(4, 4, NativeFormat, ""))
		sconnc <- s
	})
	c, err := NewClient(context.Background(), conn, NewOptions())
	if err != nil {
		t.Fatal(err)
	}
	<-sconnc
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx, framebuffer.New()) }()
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("Run after cancel: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop")
	}
}

func TestOptionsFromURL(t *testing.T) {
	tests := []struct {
		target  string
		addr    string
		check   func(o Options) bool
		wantErr bool
	}{
		{"vnc://example.org", "example.org:5900", func(o Options) bool { return o.Encodings == nil && !o.Exclusive && o.QualityLevel == -1 }, false},
		{"vnc://10.0.0.1:5901?encodings=zrle,hextile&shared=0", "10.0.0.1:5901", func(o Options) bool {
			return len(o.Encodings) == 2 && o.Encodings[0] == EncodingZRLE && o.Encodings[1] == EncodingHextile && o.Exclusive
		}, false},
		{"vnc://[::1]:5902?quality=6&compress=2&tls=insecure", "[::1]:5902", func(o Options) bool {
			return o.QualityLevel == 6 && o.CompressLevel == 2 && o.TLSInsecure
		}, false},
		{"vnc://h?encodings=bogus", "", nil, true},
		{"vnc://h?quality=11", "", nil, true},
		{"vnc://h?shared=maybe", "", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			u, err := backend.ParseTarget(tt.target)
			if err != nil {
				t.Fatal(err)
			}
			addr, o, err := OptionsFromURL(u, backend.Secrets{Password: "pw"})
			if tt.wantErr {
				if err == nil {
					t.Error("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if addr != tt.addr || o.Password != "pw" || !tt.check(o) {
				t.Errorf("addr %q options %+v", addr, o)
			}
		})
	}
}
