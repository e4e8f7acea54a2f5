package aten

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"

	"kvmgate/framebuffer"
	video "kvmgate/ipmi/aten"
)

// ATEN video encodings (see kvmgate/ipmi/aten).
const (
	EncodingAST2100      = video.EncodingAST2100
	EncodingHermon       = video.EncodingHermon
	EncodingHermonLegacy = video.EncodingHermonLegacy
)

// NoSignalWidth and NoSignalHeight are the rectangle size, as signed 16-bit
// numbers, with which the BMC says the host shows no picture.
const (
	NoSignalWidth  = -640
	NoSignalHeight = -480
)

// Limits.
const (
	// MaxVideoBody bounds one rectangle's ATEN payload.
	MaxVideoBody = 32 << 20
	maxCutText   = 1 << 20
)

// AppendKeyEvent appends an 18-byte ATEN key event carrying a USB HID
// usage: type, padding, down flag, 2 padding bytes, the usage as a 32-bit
// big-endian number and 9 padding bytes.
func AppendKeyEvent(b []byte, usage uint8, down bool) []byte {
	var m [KeyEventLen]byte
	m[0] = MsgKeyEvent
	if down {
		m[2] = 1
	}
	binary.BigEndian.PutUint32(m[5:9], uint32(usage))
	return append(b, m[:]...)
}

// AppendPointerEvent appends an 18-byte ATEN pointer event: type, padding,
// button mask, absolute x and y (16-bit big-endian) and 11 padding bytes.
func AppendPointerEvent(b []byte, mask uint8, x, y int) []byte {
	var m [PointerEventLen]byte
	m[0] = MsgPointerEvent
	m[2] = mask
	binary.BigEndian.PutUint16(m[3:5], uint16(x))
	binary.BigEndian.PutUint16(m[5:7], uint16(y))
	return append(b, m[:]...)
}

// AppendKeepAlive appends the client keepalive (type 0x16 and one byte).
func AppendKeepAlive(b []byte) []byte { return append(b, MsgClientKeepAlive, 0) }

// AppendUpdateRequest appends a standard 10-byte FramebufferUpdateRequest
// for the rectangle (0, 0, w, h).
func AppendUpdateRequest(b []byte, incremental bool, w, h int) []byte {
	inc := byte(0)
	if incremental {
		inc = 1
	}
	b = append(b, MsgUpdateRequest, inc, 0, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(clamp(w, 0)))
	return binary.BigEndian.AppendUint16(b, uint16(clamp(h, 0)))
}

// AppendSetEncodings appends a standard SetEncodings message.
func AppendSetEncodings(b []byte, encs []int32) []byte {
	b = append(b, MsgSetEncodings, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(encs)))
	for _, e := range encs {
		b = binary.BigEndian.AppendUint32(b, uint32(e))
	}
	return b
}

// AppendCredentials appends the 48-byte credential reply: user and
// password (or token), each NUL-padded to 24 bytes. Longer values are cut;
// NewClient rejects them before.
func AppendCredentials(b []byte, user, password string) []byte {
	var m [2 * CredentialFieldLen]byte
	copy(m[:CredentialFieldLen], user)
	copy(m[CredentialFieldLen:], password)
	return append(b, m[:]...)
}

// ParseSessionMessage parses the 264-byte body of a 0x39 message: two
// 32-bit numbers and a NUL-terminated text of up to 256 bytes.
func ParseSessionMessage(body []byte) (SessionMessage, error) {
	if len(body) < 8 {
		return SessionMessage{}, protoErr("session message of %d bytes, want at least 8", len(body))
	}
	text := body[8:]
	if i := bytes.IndexByte(text, 0); i >= 0 {
		text = text[:i]
	}
	return SessionMessage{
		Code: binary.BigEndian.Uint32(body[0:4]),
		Arg:  binary.BigEndian.Uint32(body[4:8]),
		Text: strings.ToValidUTF8(string(text), "?"),
	}, nil
}

// ViewOnly reports whether a session message takes keyboard and mouse
// away from this viewer. There is no public table of the codes; the Java
// viewer shows the text, so the text decides: "view only" / "read only"
// mean no input, "full control" / "control granted" give it back. ok is
// false when the message says neither.
func (m SessionMessage) ViewOnly() (viewOnly, ok bool) {
	t := strings.ToLower(m.Text)
	switch {
	case strings.Contains(t, "view only"), strings.Contains(t, "view-only"), strings.Contains(t, "read only"):
		return true, true
	case strings.Contains(t, "full control"), strings.Contains(t, "control granted"):
		return false, true
	}
	return false, false
}

// SessionEvent is what a session message announces, from its event code:
// the message's second word, four bytes that are each one decimal digit
// ("0003" is event 3), as the viewers that reimplement the Java applet
// read it. The first word counts messages; the text holds the other
// user's id, name and address, separated by spaces.
type SessionEvent int

// The session events known from public reimplementations of the viewer;
// 5 to 7 are unnamed there.
const (
	EventUserJoined     SessionEvent = 0 // 1 means the same
	EventUserLeft       SessionEvent = 2
	EventLoggedOut      SessionEvent = 3 // the BMC web session ended
	EventTooManyUsers   SessionEvent = 4
	EventBIOSUpdate     SessionEvent = 8 // the BMC is flashing the host BIOS
	EventFirmwareUpdate SessionEvent = 9 // the BMC is flashing itself
	EventUnknown        SessionEvent = -1
)

// Event decodes the message's event code. Words whose bytes are not all
// decimal digits give EventUnknown.
func (m SessionMessage) Event() SessionEvent {
	code := 0
	for i := 3; i >= 0; i-- {
		d := byte(m.Arg >> (8 * i))
		if d > 9 {
			return EventUnknown
		}
		code = code*10 + int(d)
	}
	if code == 1 {
		return EventUserJoined
	}
	return SessionEvent(code)
}

// EndsSession reports whether the BMC drops the viewer after this event.
func (e SessionEvent) EndsSession() bool {
	switch e {
	case EventLoggedOut, EventTooManyUsers, EventBIOSUpdate, EventFirmwareUpdate:
		return true
	}
	return false
}

func (e SessionEvent) String() string {
	switch e {
	case EventUserJoined:
		return "another user joined"
	case EventUserLeft:
		return "another user left"
	case EventLoggedOut:
		return "the BMC web session was logged out"
	case EventTooManyUsers:
		return "too many users are connected"
	case EventBIOSUpdate:
		return "a BIOS update is in progress"
	case EventFirmwareUpdate:
		return "a BMC firmware update is in progress"
	case EventUnknown:
		return "unknown event"
	}
	return fmt.Sprintf("event %d", int(e))
}

// RectHeader is a FramebufferUpdate rectangle header with the ATEN prefix.
type RectHeader struct {
	X, Y, W, H int    // as sent; W and H are signed for the no-signal test
	Encoding   int32  // 0x57, 0x59 or 0x00
	Flag       uint32 // the prefix's unknown first word
	Length     uint32 // payload bytes that follow
}

// NoSignal reports whether the rectangle is the −640×−480 no-signal mark.
func (h RectHeader) NoSignal() bool { return h.W == NoSignalWidth && h.H == NoSignalHeight }

// ParseRectHeader parses the 12-byte rectangle header and the 8-byte ATEN
// prefix of an ATEN video rectangle (20 bytes).
func ParseRectHeader(b []byte) (RectHeader, error) {
	if len(b) < 20 {
		return RectHeader{}, protoErr("rectangle header of %d bytes, want 20", len(b))
	}
	h := RectHeader{
		X:        int(binary.BigEndian.Uint16(b[0:2])),
		Y:        int(binary.BigEndian.Uint16(b[2:4])),
		W:        int(int16(binary.BigEndian.Uint16(b[4:6]))),
		H:        int(int16(binary.BigEndian.Uint16(b[6:8]))),
		Encoding: int32(binary.BigEndian.Uint32(b[8:12])),
		Flag:     binary.BigEndian.Uint32(b[12:16]),
		Length:   binary.BigEndian.Uint32(b[16:20]),
	}
	switch h.Encoding {
	case EncodingAST2100, EncodingHermon, EncodingHermonLegacy:
	default:
		return h, protoErr("rectangle encoding %#x is not an ATEN video encoding", h.Encoding)
	}
	if h.Length > MaxVideoBody {
		return h, protoErr("rectangle payload of %d bytes exceeds %d", h.Length, MaxVideoBody)
	}
	if !h.NoSignal() {
		if h.W < 0 || h.H < 0 {
			return h, protoErr("rectangle size %dx%d", h.W, h.H)
		}
		if h.W > 0 && h.H > 0 {
			if err := framebuffer.CheckSize(h.X+h.W, h.Y+h.H); err != nil {
				return h, protoErr("rectangle %dx%d+%d+%d: %v", h.W, h.H, h.X, h.Y, err)
			}
		}
	}
	return h, nil
}

// decoder holds the video decoding state Run owns.
type decoder struct {
	canvas *framebuffer.Canvas
	batch  framebuffer.Batch
	ast    video.AST2100Decoder
	body   []byte
}

// loop reads server messages until an error.
func (c *Client) loop(fb *framebuffer.Framebuffer) error {
	d := &decoder{canvas: &framebuffer.Canvas{}}
	fb.SetName(c.name)
	var typ [1]byte
	for {
		if err := c.full(typ[:]); err != nil {
			return fmt.Errorf("aten: reading message type: %w", err)
		}
		switch t := typ[0]; t {
		case MsgFramebufferUpdate:
			if err := c.update(d, fb); err != nil {
				return err
			}
		case MsgBell:
			fb.Bell()
		case MsgServerCutText:
			var h [7]byte
			if err := c.full(h[:]); err != nil {
				return fmt.Errorf("aten: reading ServerCutText: %w", err)
			}
			n := binary.BigEndian.Uint32(h[3:7])
			if n > maxCutText {
				return protoErr("ServerCutText of %d bytes", n)
			}
			text := make([]byte, n)
			if err := c.full(text); err != nil {
				return fmt.Errorf("aten: reading ServerCutText: %w", err)
			}
			fb.SetClipboard(string(text))
		default:
			n, ok := c.profile.ServerMessages[t]
			if !ok {
				return protoErr("unknown server message type %#02x (profile %s)", t, c.profile.Name)
			}
			if cap(c.readBuf) < n {
				c.readBuf = make([]byte, n)
			}
			body := c.readBuf[:n]
			if err := c.full(body); err != nil {
				return fmt.Errorf("aten: reading message %#02x: %w", t, err)
			}
			if err := c.extra(t, body); err != nil {
				return err
			}
		}
	}
}

// extra handles an ATEN server message whose body has been read. It
// returns an error when the message ends the session (a session message
// saying the BMC dropped this viewer).
func (c *Client) extra(t byte, body []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stats.Extra[t]++
	cp := func() []byte { return append([]byte(nil), body...) }
	switch t {
	case MsgKeepAlive:
		c.stats.KeepAlives++
	case MsgVideoGetInfo:
		c.videoInfo = cp()
	case MsgMouseGetInfo:
		c.mouseInfo = cp()
	case MsgGetViewerLang:
		c.lang = cp()
	case MsgSessionMessage:
		m, err := ParseSessionMessage(body)
		if err != nil {
			c.log.Warn("aten: bad session message", "err", err)
			return nil
		}
		c.lastSession = m
		if vo, ok := m.ViewOnly(); ok {
			c.viewOnly = vo
		}
		ev := m.Event()
		c.log.Info("aten session message", "event", ev.String(), "count", m.Code, "text", m.Text, "viewonly", c.viewOnly)
		if ev.EndsSession() {
			return fmt.Errorf("%w: %s", ErrSessionEnded, ev)
		}
	}
	return nil
}

// update reads one FramebufferUpdate, decodes it, publishes it and asks for
// the next one.
func (c *Client) update(d *decoder, fb *framebuffer.Framebuffer) error {
	var h [3]byte
	if err := c.full(h[:]); err != nil {
		return fmt.Errorf("aten: reading FramebufferUpdate: %w", err)
	}
	remaining := int(binary.BigEndian.Uint16(h[1:3]))
	noSignal := false
	published := false
	var rh [20]byte
	for remaining > 0 {
		remaining--
		if err := c.full(rh[:]); err != nil {
			return fmt.Errorf("aten: reading rectangle header: %w", err)
		}
		r, err := ParseRectHeader(rh[:])
		if err != nil {
			return err
		}
		if cap(d.body) < int(r.Length) {
			d.body = make([]byte, r.Length)
		}
		body := d.body[:r.Length]
		if err := c.full(body); err != nil {
			return fmt.Errorf("aten: reading %d-byte rectangle payload: %w", r.Length, err)
		}
		c.mu.Lock()
		c.stats.Rects++
		c.encoding = r.Encoding
		c.mu.Unlock()
		if r.NoSignal() {
			noSignal = true
			c.mu.Lock()
			c.stats.NoSignal++
			c.mu.Unlock()
			continue
		}
		if r.W == 0 || r.H == 0 || r.Length == 0 {
			continue
		}
		// The first rectangle is the truth about the screen size: ATEN
		// sends the whole screen's size in every video rectangle.
		if w, h := r.X+r.W, r.Y+r.H; w != d.canvas.W || h != d.canvas.H {
			d.resize(w, h)
		}
		switch r.Encoding {
		case EncodingAST2100:
			err = d.ast.Decode(d.canvas, body, &d.batch)
		default:
			err = video.DecodeHermon(d.canvas, framebuffer.Rect{X: r.X, Y: r.Y, W: r.W, H: r.H}, body, &d.batch)
			// Public clients count a tiled HERMON rectangle twice in the
			// update's rectangle count.
			if len(body) > 0 && body[0] == 0 && remaining > 0 {
				remaining--
			}
		}
		if err != nil {
			// Keep what was decoded; the next frame repaints it.
			c.log.Warn("aten: video rectangle", "encoding", r.Encoding, "err", err)
		}
		published = true
	}
	c.mu.Lock()
	c.stats.Updates++
	wasNoSignal := c.noSignal
	if noSignal {
		c.noSignal = true
	} else if published {
		c.noSignal = false
	}
	c.mu.Unlock()
	switch {
	case noSignal:
		if !wasNoSignal || d.canvas.W != noSignalW || d.canvas.H != noSignalH {
			c.log.Info("aten: host shows no signal")
			d.resize(noSignalW, noSignalH)
			drawNoSignal(d.canvas)
			d.batch.Damage(d.canvas.Bounds())
		}
		fb.Publish(d.canvas, &d.batch)
		c.firstOnce.Do(func() { close(c.firstRect) })
	case published:
		fb.Publish(d.canvas, &d.batch)
		c.firstOnce.Do(func() { close(c.firstRect) })
	}
	c.mu.Lock()
	c.width, c.height = d.canvas.W, d.canvas.H
	w, hh := c.width, c.height
	if w == 0 || hh == 0 {
		w, hh = c.initW, c.initH
	}
	c.mu.Unlock()
	return c.send(AppendUpdateRequest(nil, true, w, hh))
}

func (d *decoder) resize(w, h int) {
	d.canvas.Resize(w, h)
	d.batch.Damage(d.canvas.Bounds())
}
