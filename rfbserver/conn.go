package rfbserver

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"unicode/utf8"

	"kvmgate/framebuffer"
	"kvmgate/input"
	"kvmgate/rfb"
)

// Client-to-server message types.
const (
	msgSetPixelFormat  = 0
	msgSetEncodings    = 2
	msgUpdateRequest   = 3
	msgKeyEvent        = 4
	msgPointerEvent    = 5
	msgClientCutText   = 6
	msgEnableCU        = 150
	msgClientFence     = 248
	msgSetDesktopSize  = 251
	msgQEMU            = 255
	qemuExtendedKeySub = 0
)

// maxForced bounds the non-incremental request areas kept per client;
// beyond it they merge into their bounding box.
const maxForced = 16

// maxSizeReplies bounds the unanswered SetDesktopSize requests kept.
const maxSizeReplies = 8

// maxFenceReplies bounds the client fences awaiting their answer; a client
// that sends more without reading is dropped.
const maxFenceReplies = 64

// maxFencePayload is the longest fence payload the protocol allows.
const maxFencePayload = 64

// fence is a client's fence request, to be answered in order.
type fence struct {
	flags   uint32
	payload []byte
}

// ProtocolError says what a client sent that broke the protocol or the
// server's limits. The connection is dropped after it.
type ProtocolError struct {
	Msg string
}

func (e *ProtocolError) Error() string { return "rfbserver: client protocol error: " + e.Msg }

func protocolErrorf(format string, args ...any) error {
	return &ProtocolError{Msg: fmt.Sprintf(format, args...)}
}

// conn is one client connection. The goroutine running ServeConn owns the
// reads (handshake, then readLoop); the sender owns the writes after the
// handshake.
type conn struct {
	s   *Server
	in  InputSink // nil: view-only
	nc  net.Conn
	br  *bufio.Reader
	log *slog.Logger

	// Set by the handshake, read-only afterwards.
	version       protoVersion
	auth          string
	initW, initH  int
	initName      string
	failureLogged bool // the handshake logged why it failed

	// wake tells the sender that the reader changed the state below.
	wake chan struct{}

	mu sync.Mutex
	// mu guards the following: written by the reader, taken by the sender.
	pf          *rfb.PixelFormat   // new pixel format, nil if unchanged
	encs        []rfb.Encoding     // new encodings, nil if unchanged
	requested   bool               // a FramebufferUpdateRequest arrived
	nonIncr     bool               // one of them was non-incremental
	forced      []framebuffer.Rect // areas of non-incremental requests
	sizeReplies []int              // statuses of SetDesktopSize requests to answer
	cuSet       bool               // an EnableContinuousUpdates arrived
	cuEnable    bool               // its enable flag
	fences      []fence            // client fence requests to answer
	fenceAcks   int                // answers to the server's fences
	clip        clipRequests       // extended clipboard work for the sender

	// Reader state.
	buttons input.Buttons // last pointer button mask, for wheel edges
}

func newConn(s *Server, nc net.Conn, log *slog.Logger) *conn {
	return &conn{
		s: s, nc: nc, log: log,
		br:   bufio.NewReaderSize(nc, 16<<10),
		wake: make(chan struct{}, 1),
	}
}

func (c *conn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// readLoop reads client messages until the connection fails or the client
// breaks the protocol.
func (c *conn) readLoop() error {
	var hdr [20]byte
	for {
		t, err := c.br.ReadByte()
		if err != nil {
			return err
		}
		switch t {
		case msgSetPixelFormat:
			if _, err := io.ReadFull(c.br, hdr[:19]); err != nil {
				return readErr("SetPixelFormat", err)
			}
			pf := rfb.UnmarshalPixelFormat(hdr[3:19])
			if err := checkPixelFormat(pf); err != nil {
				return &ProtocolError{Msg: err.Error()}
			}
			c.mu.Lock()
			c.pf = &pf
			c.mu.Unlock()
			c.signal()
		case msgSetEncodings:
			if _, err := io.ReadFull(c.br, hdr[:3]); err != nil {
				return readErr("SetEncodings", err)
			}
			n := int(binary.BigEndian.Uint16(hdr[1:3]))
			if n > MaxEncodings {
				return protocolErrorf("SetEncodings lists %d encodings (limit %d)", n, MaxEncodings)
			}
			encs := make([]rfb.Encoding, n)
			for i := range encs {
				if _, err := io.ReadFull(c.br, hdr[:4]); err != nil {
					return readErr("SetEncodings", err)
				}
				encs[i] = rfb.Encoding(int32(binary.BigEndian.Uint32(hdr[:4])))
			}
			c.mu.Lock()
			c.encs = encs
			c.mu.Unlock()
			c.signal()
		case msgUpdateRequest:
			if _, err := io.ReadFull(c.br, hdr[:9]); err != nil {
				return readErr("FramebufferUpdateRequest", err)
			}
			incremental := hdr[0] != 0
			r := framebuffer.Rect{
				X: int(binary.BigEndian.Uint16(hdr[1:])), Y: int(binary.BigEndian.Uint16(hdr[3:])),
				W: int(binary.BigEndian.Uint16(hdr[5:])), H: int(binary.BigEndian.Uint16(hdr[7:])),
			}
			c.mu.Lock()
			c.requested = true
			if !incremental {
				c.nonIncr = true
				c.forced = addForced(c.forced, r)
			}
			c.mu.Unlock()
			c.signal()
		case msgKeyEvent:
			if _, err := io.ReadFull(c.br, hdr[:7]); err != nil {
				return readErr("KeyEvent", err)
			}
			ev := keyEventFromKeysym(binary.BigEndian.Uint32(hdr[3:7]), hdr[0] != 0)
			c.input("key", func(in InputSink) error { return in.Key(ev) })
		case msgPointerEvent:
			if _, err := io.ReadFull(c.br, hdr[:5]); err != nil {
				return readErr("PointerEvent", err)
			}
			ev := c.pointerEvent(hdr[0], int(binary.BigEndian.Uint16(hdr[1:])), int(binary.BigEndian.Uint16(hdr[3:])))
			c.input("pointer", func(in InputSink) error { return in.Pointer(ev) })
		case msgClientCutText:
			if _, err := io.ReadFull(c.br, hdr[:7]); err != nil {
				return readErr("ClientCutText", err)
			}
			n := binary.BigEndian.Uint32(hdr[3:7])
			if int32(n) < 0 {
				if err := c.readExtendedClipboard(-int64(int32(n))); err != nil {
					return err
				}
				continue
			}
			if int64(n) > int64(c.s.maxCutText()) {
				return protocolErrorf("ClientCutText of %d bytes (limit %d)", n, c.s.maxCutText())
			}
			b := make([]byte, n)
			if _, err := io.ReadFull(c.br, b); err != nil {
				return readErr("ClientCutText", err)
			}
			text := latin1ToString(b)
			c.input("clipboard", func(in InputSink) error { return in.Clipboard(text) })
		case msgSetDesktopSize:
			if _, err := io.ReadFull(c.br, hdr[:7]); err != nil {
				return readErr("SetDesktopSize", err)
			}
			screens := int64(hdr[5])
			if _, err := io.CopyN(io.Discard, c.br, 16*screens); err != nil {
				return readErr("SetDesktopSize", err)
			}
			status := c.resize(int(binary.BigEndian.Uint16(hdr[1:3])), int(binary.BigEndian.Uint16(hdr[3:5])))
			c.mu.Lock()
			if len(c.sizeReplies) < maxSizeReplies {
				c.sizeReplies = append(c.sizeReplies, status)
			}
			c.mu.Unlock()
			c.signal()
		case msgEnableCU:
			if _, err := io.ReadFull(c.br, hdr[:9]); err != nil {
				return readErr("EnableContinuousUpdates", err)
			}
			c.mu.Lock()
			c.cuSet, c.cuEnable = true, hdr[0] != 0
			c.mu.Unlock()
			c.signal()
		case msgClientFence:
			if _, err := io.ReadFull(c.br, hdr[:8]); err != nil {
				return readErr("ClientFence", err)
			}
			flags := binary.BigEndian.Uint32(hdr[3:7])
			n := int(hdr[7])
			if n > maxFencePayload {
				return protocolErrorf("ClientFence payload of %d bytes (limit %d)", n, maxFencePayload)
			}
			payload := make([]byte, n)
			if _, err := io.ReadFull(c.br, payload); err != nil {
				return readErr("ClientFence", err)
			}
			c.mu.Lock()
			if flags&fenceRequest == 0 {
				c.fenceAcks++
			} else {
				if len(c.fences) >= maxFenceReplies {
					c.mu.Unlock()
					return protocolErrorf("more than %d unanswered fences", maxFenceReplies)
				}
				c.fences = append(c.fences, fence{flags: flags, payload: payload})
			}
			c.mu.Unlock()
			c.signal()
		case msgQEMU:
			sub, err := c.br.ReadByte()
			if err != nil {
				return readErr("QEMU message", err)
			}
			if sub != qemuExtendedKeySub {
				return protocolErrorf("unsupported QEMU submessage %d", sub)
			}
			if _, err := io.ReadFull(c.br, hdr[:10]); err != nil {
				return readErr("QEMU extended key event", err)
			}
			down := binary.BigEndian.Uint16(hdr[0:]) != 0
			keysym := binary.BigEndian.Uint32(hdr[2:])
			keycode := binary.BigEndian.Uint32(hdr[6:])
			ev := keyEventFromKeysym(keysym, down)
			if code, ok := input.CodeForQEMUKeycode(keycode); ok {
				ev.Code = code
			}
			c.input("key", func(in InputSink) error { return in.Key(ev) })
		default:
			return protocolErrorf("unsupported message type %d", t)
		}
	}
}

// readErr wraps a read error in the middle of a message.
func readErr(msg string, err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("rfbserver: reading %s: %w", msg, err)
}

// input hands one event to the sink; its errors are logged, not fatal.
// resize passes a client's SetDesktopSize to the input sink when it can
// resize the console, and returns the status to answer with: 4 (forwarded:
// the new size arrives later as a server-side resize) or 1 (prohibited).
// The screen layout is not passed on: consoles have one screen.
func (c *conn) resize(w, h int) int {
	r, ok := c.in.(Resizer)
	if !ok || w == 0 || h == 0 {
		return extSizeProhibited
	}
	if err := r.Resize(w, h); err != nil {
		c.log.Debug("rfbserver: resize refused", "width", w, "height", h, "err", err)
		return extSizeProhibited
	}
	return extSizeForwarded
}

func (c *conn) input(kind string, fn func(InputSink) error) {
	if c.in == nil {
		return
	}
	if err := fn(c.in); err != nil {
		c.log.Debug("rfbserver: input not delivered", "kind", kind, "err", err)
	}
}

// pointerEvent turns an RFB button mask into a PointerEvent: buttons 4–7
// become wheel steps, counted on each press.
func (c *conn) pointerEvent(mask byte, x, y int) input.PointerEvent {
	b := input.Buttons(mask)
	pressed := b &^ c.buttons
	c.buttons = b
	ev := input.PointerEvent{X: x, Y: y, Buttons: b &^ (input.WheelUp | input.WheelDown | input.WheelLeft | input.WheelRight)}
	if pressed&input.WheelUp != 0 {
		ev.WheelY--
	}
	if pressed&input.WheelDown != 0 {
		ev.WheelY++
	}
	if pressed&input.WheelLeft != 0 {
		ev.WheelX--
	}
	if pressed&input.WheelRight != 0 {
		ev.WheelX++
	}
	return ev
}

// addForced records a non-incremental request area, keeping the list short.
func addForced(list []framebuffer.Rect, r framebuffer.Rect) []framebuffer.Rect {
	if r.Empty() {
		return list
	}
	for _, f := range list {
		if r.In(f) {
			return list
		}
	}
	if len(list) < maxForced {
		return append(list, r)
	}
	u := r
	for _, f := range list {
		u = u.Union(f)
	}
	return append(list[:0], u)
}

// latin1ToString decodes ISO 8859-1 text as RFB's cut text is defined.
func latin1ToString(b []byte) string {
	ascii := true
	for _, c := range b {
		if c >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return string(b)
	}
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

// stringToLatin1 encodes text as ISO 8859-1, replacing what it cannot hold
// with '?'.
func stringToLatin1(s string) []byte {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		switch {
		case r == utf8.RuneError:
			b = append(b, '?')
		case r < 0x100:
			b = append(b, byte(r))
		default:
			b = append(b, '?')
		}
	}
	return b
}
