package aten

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"kvmgate/backend"
	"kvmgate/framebuffer"
	"kvmgate/input"
)

// MouseMode is the pointer mode the client asks the BMC for.
type MouseMode uint8

// Mouse modes. MouseKeep sends nothing and leaves the BMC's setting.
const (
	MouseKeep     MouseMode = 0
	MouseAbsolute MouseMode = 1
	MouseRelative MouseMode = 2
)

// Options configure a Client.
type Options struct {
	// Username and Password fill the two 24-byte credential fields. For
	// JNLP launches they are the per-launch values from the JNLP, for the
	// HTML5 console the per-launch token (in both). They are never logged.
	Username, Password string
	// Exclusive asks the BMC to drop other viewers (ClientInit 0).
	Exclusive bool
	// Profile gives the per-firmware message lengths; zero means
	// ProfileAST2400.
	Profile Profile
	// MouseMode, if not MouseKeep, is sent after the handshake.
	MouseMode MouseMode
	// KeepAlive is the interval of client keepalives; 0 means 15 seconds,
	// negative disables them.
	KeepAlive time.Duration
	// WriteTimeout bounds each write; 0 means 10 seconds.
	WriteTimeout time.Duration
	// Logger receives protocol events; nil discards them.
	Logger *slog.Logger
}

// ErrAuth is wrapped by the error NewClient returns when the BMC rejects
// the credentials. The caller must not retry on its own: BMCs lock
// accounts after a few failures.
var ErrAuth = errors.New("aten: the BMC rejected the KVM credentials")

// ErrSessionEnded is wrapped by the error that ends a session when the BMC
// announces it is dropping this viewer (logout, too many users, a firmware
// or BIOS update).
var ErrSessionEnded = errors.New("aten: the BMC ended the KVM session")

// ErrViewOnly is wrapped by input errors while the BMC grants this viewer
// no keyboard and mouse.
var ErrViewOnly = fmt.Errorf("aten: view-only session: %w", backend.ErrUnsupported)

// ProtocolError reports that the server broke the protocol.
type ProtocolError struct{ Msg string }

func (e *ProtocolError) Error() string { return "aten: " + e.Msg }

func protoErr(format string, args ...any) error {
	return &ProtocolError{Msg: fmt.Sprintf(format, args...)}
}

// ServerFlags are the four capability bytes at the end of ServerInit.
type ServerFlags struct {
	Video, KeyboardMouse, Kick, VirtualUSB bool
}

// Client is one ATEN iKVM connection after the handshake.
type Client struct {
	opts Options
	log  *slog.Logger
	conn net.Conn
	br   *bufio.Reader

	// Set by the handshake, then read-only.
	banner  string
	blob    [SecurityBlobLen]byte
	name    string
	initW   int
	initH   int
	flags   ServerFlags
	profile Profile
	readBuf []byte

	wmu sync.Mutex
	// wmu serialises writes and guards the following.
	broken error

	mu sync.Mutex
	// mu guards the following, shared between Run and the input methods.
	width, height int
	noSignal      bool
	viewOnly      bool
	encoding      int32 // last video encoding seen, -1 none
	lastSession   SessionMessage
	videoInfo     []byte
	mouseInfo     []byte
	lang          []byte
	stats         Stats

	running   atomic.Bool
	closed    atomic.Bool
	closeOnce sync.Once
	firstRect chan struct{}
	firstOnce sync.Once
}

// Stats counts what the client received and sent.
type Stats struct {
	Updates    uint64 // FramebufferUpdate messages
	Rects      uint64 // video rectangles
	NoSignal   uint64 // no-signal rectangles
	KeepAlives uint64 // server keepalives received
	Extra      map[byte]uint64
}

// SessionMessage is a 0x39 server message: two numbers and a text the
// Java viewer shows in a dialog (another user took over, the session is
// view-only, the BMC is resetting, ...).
type SessionMessage struct {
	Code, Arg uint32
	Text      string
}

// NewClient runs the ATEN handshake over conn, which the caller dialled
// (TCP, TLS or a WebSocket stream), and sends the first update request.
// ctx bounds the handshake. On error the caller still owns conn.
func NewClient(ctx context.Context, conn net.Conn, opts Options) (*Client, error) {
	if len(opts.Username) > CredentialFieldLen || len(opts.Password) > CredentialFieldLen {
		return nil, fmt.Errorf("aten: user name and password are limited to %d bytes each", CredentialFieldLen)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	prof := opts.Profile
	if prof.ServerMessages == nil {
		prof = ProfileAST2400
	}
	c := &Client{
		opts: opts, log: log, conn: conn, br: bufio.NewReaderSize(conn, 64<<10),
		profile: prof, encoding: -1, firstRect: make(chan struct{}),
		stats: Stats{Extra: map[byte]uint64{}},
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	err := c.handshake()
	stopped := stop()
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, fmt.Errorf("aten: handshake: %w (%v)", cerr, err)
		}
		return nil, err
	}
	if !stopped {
		return nil, fmt.Errorf("aten: handshake: %w", ctx.Err())
	}
	conn.SetDeadline(time.Time{})
	c.log.Info("aten connected", "banner", c.banner, "name", c.name,
		"placeholder_size", fmt.Sprintf("%dx%d", c.initW, c.initH),
		"km", c.flags.KeyboardMouse, "profile", c.profile.Name)
	return c, nil
}

// Close ends the connection; a running Run returns nil.
func (c *Client) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		err = c.conn.Close()
	})
	return err
}

// FirstFrame returns a channel closed once the first video or no-signal
// rectangle has been published.
func (c *Client) FirstFrame() <-chan struct{} { return c.firstRect }

// ViewOnly reports whether the BMC currently refuses this viewer's input.
func (c *Client) ViewOnly() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.viewOnly
}

// NoSignal reports whether the last frame said the host shows no picture.
func (c *Client) NoSignal() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.noSignal
}

// Flags returns the capability bytes of ServerInit.
func (c *Client) Flags() ServerFlags { return c.flags }

// Stats returns a copy of the counters.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Extra = maps.Clone(c.stats.Extra)
	return s
}

var errClosed = errors.New("aten: connection closed")

// send writes one or more complete client messages.
func (c *Client) send(msg []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed.Load() {
		return errClosed
	}
	if c.broken != nil {
		return c.broken
	}
	to := c.opts.WriteTimeout
	if to <= 0 {
		to = 10 * time.Second
	}
	c.conn.SetWriteDeadline(time.Now().Add(to))
	if _, err := c.conn.Write(msg); err != nil {
		c.broken = fmt.Errorf("aten: write: %w", err)
		c.conn.Close()
		return c.broken
	}
	return nil
}

func (c *Client) full(b []byte) error {
	_, err := io.ReadFull(c.br, b)
	return err
}

// Run reads the server's messages into fb until ctx ends or Close is called
// (then it returns nil) or the connection fails. It publishes fb after
// every FramebufferUpdate and sends the next update request, so one is
// always outstanding; a goroutine sends keepalives meanwhile.
func (c *Client) Run(ctx context.Context, fb *framebuffer.Framebuffer) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("aten: Run called twice")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if iv := c.opts.KeepAlive; iv >= 0 {
		if iv == 0 {
			iv = 15 * time.Second
		}
		go c.keepAlive(ctx, iv)
	}
	err := c.loop(fb)
	if c.closed.Load() || ctx.Err() != nil {
		return nil
	}
	c.Close()
	return err
}

func (c *Client) keepAlive(ctx context.Context, iv time.Duration) {
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := c.send(AppendKeepAlive(nil)); err != nil {
				return
			}
		}
	}
}

// Key sends a key as its USB HID usage, taken from the browser's physical
// key code.
func (c *Client) Key(ev input.KeyEvent) error {
	u, ok := input.HIDUsage(ev.Code)
	if !ok {
		return fmt.Errorf("aten: key %q has no USB HID usage: %w", ev.Code, backend.ErrUnsupported)
	}
	if c.ViewOnly() {
		return ErrViewOnly
	}
	return c.send(AppendKeyEvent(nil, u, ev.Down))
}

// Pointer sends an absolute pointer event. Wheel steps become presses and
// releases of the RFB wheel buttons.
func (c *Client) Pointer(ev input.PointerEvent) error {
	if c.ViewOnly() {
		return ErrViewOnly
	}
	c.mu.Lock()
	w, h := c.width, c.height
	c.mu.Unlock()
	x, y := clamp(ev.X, w), clamp(ev.Y, h)
	mask := uint8(ev.Buttons) &^ uint8(input.WheelUp|input.WheelDown|input.WheelLeft|input.WheelRight)
	msg := AppendPointerEvent(nil, mask, x, y)
	for _, wh := range []struct {
		n        int
		neg, pos input.Buttons
	}{{ev.WheelY, input.WheelUp, input.WheelDown}, {ev.WheelX, input.WheelLeft, input.WheelRight}} {
		n, b := wh.n, wh.pos
		if n < 0 {
			n, b = -n, wh.neg
		}
		for i := 0; i < n && i < 32; i++ {
			msg = AppendPointerEvent(msg, mask|uint8(b), x, y)
			msg = AppendPointerEvent(msg, mask, x, y)
		}
	}
	return c.send(msg)
}

func clamp(v, max int) int {
	if v < 0 {
		return 0
	}
	if max > 0 && v >= max {
		return max - 1
	}
	if v > 0xffff {
		return 0xffff
	}
	return v
}

// Clipboard is not supported: the iKVM has no clipboard.
func (c *Client) Clipboard(string) error {
	return fmt.Errorf("aten: the iKVM has no clipboard: %w", backend.ErrUnsupported)
}

// PowerCode maps a console action to the SetPowerOnOff argument. The
// values follow IPMI's Chassis Control command, which the BMC's power
// control implements.
func PowerCode(a input.Action) (byte, bool) {
	switch a {
	case input.ActionPowerOff:
		return 0, true
	case input.ActionPowerOn:
		return 1, true
	case input.ActionReboot:
		return 2, true // power cycle
	case input.ActionReset:
		return 3, true
	case input.ActionShutdown:
		return 5, true // soft off (ACPI)
	}
	return 0, false
}

// Action performs power control.
func (c *Client) Action(a input.Action) error {
	code, ok := PowerCode(a)
	if !ok {
		return fmt.Errorf("aten: action %q: %w", a, backend.ErrUnsupported)
	}
	if c.ViewOnly() {
		return ErrViewOnly
	}
	c.log.Info("aten power control", "action", string(a))
	return c.send([]byte{MsgSetPower, code})
}

// Refresh asks for the whole screen.
func (c *Client) Refresh() error {
	c.mu.Lock()
	w, h := c.width, c.height
	c.mu.Unlock()
	return c.send(AppendUpdateRequest(nil, false, w, h))
}

// actions lists what Action accepts.
var actions = []string{
	string(input.ActionPowerOn), string(input.ActionPowerOff), string(input.ActionReboot),
	string(input.ActionReset), string(input.ActionShutdown),
}

// Info describes the connection without credentials.
func (c *Client) Info() backend.Info {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := map[string]string{
		"variant":  "aten",
		"profile":  c.profile.Name,
		"blob":     blobVariant(c.blob[:]),
		"size":     fmt.Sprintf("%dx%d", c.width, c.height),
		"keys":     "usb-hid",
		"pointer":  "absolute",
		"signal":   "ok",
		"km":       fmt.Sprint(c.flags.KeyboardMouse),
		"viewonly": fmt.Sprint(c.viewOnly),
	}
	if c.noSignal {
		d["signal"] = "none"
	}
	switch c.encoding {
	case EncodingAST2100:
		d["video"] = "ast2100"
	case EncodingHermon, EncodingHermonLegacy:
		d["video"] = "hermon"
	}
	if c.lastSession.Text != "" {
		d["session_message"] = c.lastSession.Text
	}
	return backend.Info{Protocol: "aten", Server: c.banner, Name: c.name, Actions: actions, Details: d}
}

var _ backend.Console = (*Client)(nil)
