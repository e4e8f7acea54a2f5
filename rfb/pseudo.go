package rfb

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"

	"kvmgate/framebuffer"
)

// pseudoEncodings are appended to every SetEncodings, after the pixel
// encodings and the quality and compression levels.
var pseudoEncodings = []Encoding{
	EncodingExtendedDesktopSize,
	EncodingDesktopSize,
	EncodingLastRect,
	EncodingCursorWithAlpha,
	EncodingCursor,
	EncodingXCursor,
	EncodingPointerPos,
	EncodingDesktopName,
	EncodingQEMUExtendedKey,
	EncodingQEMULEDState,
	EncodingVMwareLEDState,
	EncodingQEMUPointerMotion,
	EncodingFence,
	EncodingContinuousUpdates,
	EncodingXVP,
	EncodingExtendedClipboard,
}

// Screen is one head of a multi-head desktop, as ExtendedDesktopSize
// reports it.
type Screen struct {
	ID    uint32
	X, Y  int
	W, H  int
	Flags uint32
}

// LEDState holds the keyboard lock LEDs a server reported.
type LEDState uint8

// Lock LEDs, in the bit order of the QEMU and VMware LED state encodings.
const (
	LEDScrollLock LEDState = 1 << iota
	LEDNumLock
	LEDCapsLock
)

func (l LEDState) String() string {
	var s []string
	if l&LEDScrollLock != 0 {
		s = append(s, "scroll")
	}
	if l&LEDNumLock != 0 {
		s = append(s, "num")
	}
	if l&LEDCapsLock != 0 {
		s = append(s, "caps")
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ",")
}

// LEDs returns the lock LEDs the server last reported, and whether it has.
func (c *Client) LEDs() (LEDState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leds, c.ledsKnown
}

// RelativePointer reports whether the server asked for relative pointer
// motion (QEMU with a PS/2 mouse); Pointer then sends deltas.
func (c *Client) RelativePointer() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.relative
}

// Screens returns the screen layout from the last ExtendedDesktopSize.
func (c *Client) Screens() []Screen {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Screen(nil), c.screens...)
}

// pseudo handles a pseudo-encoding rectangle. It reports false for
// encodings that are not pseudo-encodings it knows (pixel encodings).
func (s *session) pseudo(enc Encoding, r framebuffer.Rect) (bool, error) {
	c := s.c
	switch enc {
	case EncodingDesktopSize:
		return true, s.resize(r.W, r.H)
	case EncodingExtendedDesktopSize:
		return true, s.extendedDesktopSize(r)
	case EncodingCursor, EncodingXCursor, EncodingCursorWithAlpha:
		return true, s.cursor(enc, r)
	case EncodingDesktopName:
		name, err := c.r.readString(maxNameLength, "desktop name")
		if err != nil {
			return true, err
		}
		c.mu.Lock()
		c.name = name
		c.mu.Unlock()
		s.fb.SetName(name)
		return true, nil
	case EncodingQEMUExtendedKey:
		c.mu.Lock()
		c.qemuKeys = true
		c.mu.Unlock()
		return true, nil
	case EncodingQEMUPointerMotion:
		c.mu.Lock()
		c.relative = r.X == 0
		c.mu.Unlock()
		c.log.Info("rfb pointer mode", "relative", r.X == 0)
		c.publishCaps(s.fb)
		return true, nil
	case EncodingQEMULEDState:
		v, err := c.r.u8()
		if err != nil {
			return true, fmt.Errorf("rfb: reading QEMU LED state: %w", err)
		}
		s.setLEDs(LEDState(v & 7))
		return true, nil
	case EncodingVMwareLEDState:
		v, err := c.r.u32()
		if err != nil {
			return true, fmt.Errorf("rfb: reading VMware LED state: %w", err)
		}
		s.setLEDs(LEDState(v & 7))
		return true, nil
	case EncodingPointerPos:
		// The server moved the pointer (another client, the desktop
		// itself): the header's x, y is the hotspot's new position.
		// (libvncserver sends it; TigerVNC 1.12 and QEMU do not.)
		s.fb.SetCursorPos(r.X, r.Y)
		return true, nil
	case EncodingQEMUAudio:
		// Not asked for; it carries no data.
		return true, nil
	}
	return false, nil
}

func (s *session) setLEDs(l LEDState) {
	c := s.c
	c.mu.Lock()
	c.leds, c.ledsKnown = l, true
	c.mu.Unlock()
	c.log.Debug("rfb LED state", "leds", l.String())
}

// cursor reads a cursor shape and hands it to the framebuffer.
func (s *session) cursor(enc Encoding, r framebuffer.Rect) error {
	if r.W*r.H > maxCursorPixels {
		return protoErr("%dx%d cursor is too large", r.W, r.H)
	}
	var (
		cur *framebuffer.Cursor
		err error
	)
	switch enc {
	case EncodingCursor:
		cur, err = readCursor(s.d, r)
	case EncodingXCursor:
		cur, err = readXCursor(s.d, r)
	default:
		cur, err = readAlphaCursor(s.d, r)
	}
	if err != nil {
		return fmt.Errorf("rfb: %v %dx%d: %w", enc, r.W, r.H, err)
	}
	s.fb.SetCursor(cur)
	return nil
}

// ResizeError reports a SetDesktopSize request the server refused.
type ResizeError struct {
	Code int // the ExtendedDesktopSize status code
}

func (e *ResizeError) Error() string {
	switch e.Code {
	case 1:
		return "rfb: desktop resize is administratively prohibited"
	case 2:
		return "rfb: desktop resize failed: out of resources"
	case 3:
		return "rfb: desktop resize failed: invalid screen layout"
	case 4:
		return "rfb: desktop resize forwarded to the guest; it may complete later"
	}
	return fmt.Sprintf("rfb: desktop resize failed with code %d", e.Code)
}

// extendedDesktopSize handles an ExtendedDesktopSize rectangle: X is the
// reason, Y the status of a change this client requested.
func (s *session) extendedDesktopSize(r framebuffer.Rect) error {
	c := s.c
	var hdr [4]byte
	if err := c.r.full(hdr[:]); err != nil {
		return fmt.Errorf("rfb: reading ExtendedDesktopSize: %w", err)
	}
	n := int(hdr[0])
	b, err := c.r.readN(16*n, 16*255)
	if err != nil {
		return fmt.Errorf("rfb: reading ExtendedDesktopSize screens: %w", err)
	}
	reason, status := r.X, r.Y
	c.mu.Lock()
	first := !c.extDesktop
	c.extDesktop = true
	var waiter chan error
	if reason == 1 && len(c.resizeWaiters) > 0 {
		waiter = c.resizeWaiters[0]
		c.resizeWaiters = c.resizeWaiters[1:]
	}
	c.mu.Unlock()
	if first {
		c.publishCaps(s.fb)
	}
	if reason == 1 && status != 0 {
		// A refused request: the other fields are undefined.
		err := &ResizeError{Code: status}
		c.log.Warn("rfb SetDesktopSize refused", "code", status, "error", err.Error())
		if waiter != nil {
			waiter <- err
		}
		return nil
	}
	screens := make([]Screen, n)
	for i := range screens {
		e := b[16*i:]
		screens[i] = Screen{
			ID: binary.BigEndian.Uint32(e[0:]),
			X:  int(binary.BigEndian.Uint16(e[4:])), Y: int(binary.BigEndian.Uint16(e[6:])),
			W: int(binary.BigEndian.Uint16(e[8:])), H: int(binary.BigEndian.Uint16(e[10:])),
			Flags: binary.BigEndian.Uint32(e[12:]),
		}
	}
	c.mu.Lock()
	c.screens = screens
	c.mu.Unlock()
	err = s.resize(r.W, r.H)
	if waiter != nil {
		waiter <- err
	}
	return err
}

// SetDesktopSize asks the server to resize the desktop to w×h (one screen,
// keeping the id and flags of the first screen it reported) and waits until
// it answers or ctx ends. Run must be running. It returns ErrUnsupported
// (wrapped) when the server has not shown ExtendedDesktopSize support, and a
// *ResizeError when the server refuses.
func (c *Client) SetDesktopSize(ctx context.Context, w, h int) error {
	if w <= 0 || h <= 0 || w > 65535 || h > 65535 {
		return fmt.Errorf("rfb: bad desktop size %dx%d", w, h)
	}
	c.mu.Lock()
	if !c.extDesktop {
		c.mu.Unlock()
		return fmt.Errorf("rfb: server does not support SetDesktopSize: %w", errUnsupported)
	}
	scr := Screen{W: w, H: h}
	if len(c.screens) > 0 {
		scr.ID, scr.Flags = c.screens[0].ID, c.screens[0].Flags
	}
	done := make(chan error, 1)
	c.resizeWaiters = append(c.resizeWaiters, done)
	c.mu.Unlock()

	msg := []byte{msgSetDesktopSize, 0}
	msg = binary.BigEndian.AppendUint16(msg, uint16(w))
	msg = binary.BigEndian.AppendUint16(msg, uint16(h))
	msg = append(msg, 1, 0)
	msg = binary.BigEndian.AppendUint32(msg, scr.ID)
	msg = appendRect16(msg, framebuffer.Rect{X: scr.X, Y: scr.Y, W: scr.W, H: scr.H})
	msg = binary.BigEndian.AppendUint32(msg, scr.Flags)
	if err := c.send(msg); err != nil {
		c.dropResizeWaiter(done)
		return err
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		c.dropResizeWaiter(done)
		return fmt.Errorf("rfb: waiting for the desktop resize: %w", ctx.Err())
	}
}

func (c *Client) dropResizeWaiter(ch chan error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, w := range c.resizeWaiters {
		if w == ch {
			c.resizeWaiters = append(c.resizeWaiters[:i], c.resizeWaiters[i+1:]...)
			return
		}
	}
}

// Resize asks the server for a w×h desktop with SetDesktopSize
// (backend.Resizer). It returns ErrUnsupported (wrapped) when the server has
// not announced ExtendedDesktopSize, and a *ResizeError when it refuses.
func (c *Client) Resize(ctx context.Context, w, h int) error {
	return c.SetDesktopSize(ctx, w, h)
}

// publishCaps tells fb the pointer kind and whether SetDesktopSize works.
func (c *Client) publishCaps(fb *framebuffer.Framebuffer) {
	c.mu.Lock()
	pointer, resizable := "absolute", c.extDesktop
	if c.relative {
		pointer = "relative"
	}
	c.mu.Unlock()
	fb.SetPointer(pointer)
	fb.SetResizable(resizable)
}
