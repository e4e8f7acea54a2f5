package spice

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"kvmgate/backend"
	"kvmgate/framebuffer"
	"kvmgate/input"
)

var (
	_ backend.Console = (*Client)(nil)
	_ backend.Resizer = (*Client)(nil)
)

func init() {
	backend.Register("spice", openTarget)
}

// DefaultPort is the SPICE port used when a target names none.
const DefaultPort = 5900

// Compression is an image compression the client asks the server to use
// (SPICE_IMAGE_COMPRESSION_*).
type Compression uint8

// Image compressions (SPICE_IMAGE_COMPRESSION_* values). CompressionServer
// sends no preference: the server's own image-compression setting applies.
const (
	CompressionOff    Compression = 1
	CompressionAutoLZ Compression = 3
	CompressionQUIC   Compression = 4
	CompressionLZ     Compression = 6
	CompressionLZ4    Compression = 7
	CompressionServer Compression = 255
)

// ParseCompression parses a compression name as QEMU's image-compression
// option spells it ("off", "auto_lz", "quic", "lz", "lz4") or "server".
func ParseCompression(s string) (Compression, error) {
	switch s {
	case "server":
		return CompressionServer, nil
	case "off":
		return CompressionOff, nil
	case "", "auto_lz", "auto-lz":
		return CompressionAutoLZ, nil
	case "quic":
		return CompressionQUIC, nil
	case "lz":
		return CompressionLZ, nil
	case "lz4":
		return CompressionLZ4, nil
	}
	return 0, fmt.Errorf("spice: unknown image compression %q (want off, auto_lz, quic, lz, lz4 or server)", s)
}

// Options configures a Client.
type Options struct {
	// Password is the SPICE ticket; empty when the server has ticketing
	// disabled (a ticket is sent either way).
	Password string
	// Compression is the image compression to ask for (default auto_lz,
	// which gives LZ for synthetic and QUIC for photographic images).
	Compression Compression
	// Logger receives protocol events (default slog.Default()).
	Logger *slog.Logger
	// DialTimeout bounds each channel's connect and link (default 10 s).
	DialTimeout time.Duration
	// TLSPort is the server's TLS port (QEMU's tls-port), 0 if none. A
	// channel the server refuses in plain text (NEED_SECURED, QEMU's
	// tls-channel=) is linked again over TLS on this port of the same host.
	TLSPort int
	// TLSOnly links every channel over TLS on TLSPort, without trying
	// the plain port first.
	TLSOnly bool
	// TLSConfig configures TLS connections. Nil verifies the server's
	// certificate against the system roots for the target's host name;
	// a config without ServerName gets the host name too.
	TLSConfig *tls.Config
}

// Client is a SPICE console connection. Dial links the main channel; Run
// links the display, inputs and cursor channels and feeds a framebuffer.
type Client struct {
	opts Options
	log  *slog.Logger

	mmTime atomic.Uint32
	// received counts the bytes read from the server on all channels.
	received atomic.Uint64
	// images counts the images the display channel decoded, by type.
	images [256]atomic.Uint64

	mu sync.Mutex
	// mu guards the following.
	addr      string
	main      *channel
	init      mainInit
	sess      *session
	mouseMode uint32
	// mouseModes holds the modes the server offers (a mask of
	// MouseModeServer and MouseModeClient).
	mouseModes uint32
	name       string
	closed     bool
	runCancel  context.CancelFunc
	// tlsPort and tlsOnly start as Options.TLSPort and TLSOnly; a
	// migration to another server changes them.
	tlsPort int
	tlsOnly bool
	// needTLS holds the channel types the server refused in plain text.
	needTLS map[uint8]bool
	// secure holds the channel types last linked over TLS.
	secure map[uint8]bool

	firstFrame     chan struct{}
	firstFrameOnce sync.Once
}

// Dial connects to the SPICE server at addr (host:port) and links the main
// channel, returning once the server's INIT arrived.
func Dial(ctx context.Context, addr string, opts Options) (*Client, error) {
	if opts.DialTimeout == 0 {
		opts.DialTimeout = 10 * time.Second
	}
	if opts.Compression == 0 {
		opts.Compression = CompressionAutoLZ
	}
	if opts.TLSOnly && opts.TLSPort == 0 {
		return nil, errors.New("spice: TLS only, but no TLS port")
	}
	c := &Client{opts: opts, log: logOrDefault(opts.Logger), addr: addr,
		tlsPort: opts.TLSPort, tlsOnly: opts.TLSOnly,
		needTLS: map[uint8]bool{}, secure: map[uint8]bool{}, firstFrame: make(chan struct{})}
	if err := c.connectMain(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// connectMain links the main channel and reads INIT.
func (c *Client) connectMain(ctx context.Context) error {
	c.mu.Lock()
	addr := c.addr
	c.mu.Unlock()
	ch, err := c.dialChannel(ctx, addr, 0, channelID{ChannelMain, 0}, capBits(mainCapNameAndUUID, mainCapAgentConnectedTokens))
	if err != nil {
		return err
	}
	ch.conn.SetReadDeadline(time.Now().Add(c.opts.DialTimeout))
	mi, err := readInit(ctx, ch)
	ch.conn.SetReadDeadline(time.Time{})
	if err != nil {
		ch.conn.Close()
		return err
	}
	c.log.Debug("spice: main channel linked", "session", mi.SessionID, "mouse_modes", mi.SupportedMouseModes,
		"mouse_mode", mi.CurrentMouseMode, "agent", mi.AgentConnected)
	c.mu.Lock()
	c.main, c.init, c.mouseMode, c.mouseModes = ch, mi, mi.CurrentMouseMode, mi.SupportedMouseModes
	c.mu.Unlock()
	return nil
}

// dialChannel links one channel: over TCP on addr unless the channel is
// known to need TLS, and over TLS on the TLS port when the server answers
// NEED_SECURED (or when the client is TLS only).
func (c *Client) dialChannel(ctx context.Context, addr string, connID uint32, id channelID, chanCaps []uint32) (*channel, error) {
	c.mu.Lock()
	useTLS := c.tlsOnly || c.needTLS[id.typ]
	tlsPort := c.tlsPort
	c.mu.Unlock()
	if !useTLS {
		ch, err := c.linkChannel(ctx, addr, false, connID, id, chanCaps)
		var le *LinkError
		if !errors.As(err, &le) || le.Code != LinkErrNeedSecured || tlsPort == 0 {
			return ch, err
		}
		c.log.Debug("spice: channel needs TLS", "channel", channelName(id.typ))
		c.mu.Lock()
		c.needTLS[id.typ] = true
		c.mu.Unlock()
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("spice: address %q: %w", addr, err)
	}
	return c.linkChannel(ctx, net.JoinHostPort(host, strconv.Itoa(tlsPort)), true, connID, id, chanCaps)
}

// tlsConfig returns the TLS configuration for a connection to host.
func (c *Client) tlsConfig(host string) *tls.Config {
	var cfg *tls.Config
	if c.opts.TLSConfig != nil {
		cfg = c.opts.TLSConfig.Clone()
	} else {
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	return cfg
}

// linkChannel opens a TCP (or TLS) connection and links one channel.
func (c *Client) linkChannel(ctx context.Context, addr string, useTLS bool, connID uint32, id channelID, chanCaps []uint32) (*channel, error) {
	dctx, cancel := context.WithTimeout(ctx, c.opts.DialTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("spice: %s channel: %w", channelName(id.typ), err)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	conn = countingConn{Conn: conn, n: &c.received}
	if useTLS {
		host, _, _ := net.SplitHostPort(addr)
		tc := tls.Client(conn, c.tlsConfig(host))
		if err := tc.HandshakeContext(dctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("spice: %s channel: TLS handshake with %s: %w", channelName(id.typ), addr, err)
		}
		conn = tc
	}
	stop := context.AfterFunc(dctx, func() { conn.SetDeadline(time.Now()) })
	res, err := link(conn, linkParams{
		connID:     connID,
		chType:     id.typ,
		chID:       id.id,
		commonCaps: capBits(capAuthSelection, capAuthSpice, capMiniHeader),
		chanCaps:   chanCaps,
		password:   c.opts.Password,
	})
	if !stop() {
		err = errors.Join(err, fmt.Errorf("spice: %s channel: link timed out: %w", channelName(id.typ), dctx.Err()))
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	c.mu.Lock()
	c.secure[id.typ] = useTLS
	c.mu.Unlock()
	return &channel{
		typ: id.typ, id: id.id, conn: conn, br: bufio.NewReaderSize(conn, 256<<10),
		mini: res.mini, caps: res, log: c.log,
	}, nil
}

// countingConn counts the bytes read through it.
type countingConn struct {
	net.Conn
	n *atomic.Uint64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(uint64(n))
	return n, err
}

// BytesReceived returns how many bytes the client has read from the server
// on all channels (TLS records included), since Dial.
func (c *Client) BytesReceived() uint64 { return c.received.Load() }

// FirstFrame returns a channel closed once the first complete screen has
// been published to the framebuffer: the server marks the end of the
// surface image it sends to every new display channel with MARK.
func (c *Client) FirstFrame() <-chan struct{} { return c.firstFrame }

func (c *Client) markFirstFrame() { c.firstFrameOnce.Do(func() { close(c.firstFrame) }) }

// Secure reports whether the last link of the given channel type
// (ChannelMain, ChannelDisplay, ...) went over TLS.
func (c *Client) Secure(channelType uint8) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.secure[channelType]
}

// session is one run of a linked main channel and the channels it attached.
type session struct {
	client *Client
	main   *channel
	fb     *framebuffer.Framebuffer
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelCauseFunc
	connID uint32
	addr   string
	wg     sync.WaitGroup

	mu sync.Mutex
	// mu guards the following.
	chans  map[channelID]*channel
	inputs *inputs
	disp   *display
	// agent is the VD agent protocol; its on* methods run on the main
	// channel's reader.
	agent *agent
}

// peer returns the linked channel with the given type and id, or nil.
func (s *session) peer(typ, id uint8) *channel {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.chans[channelID{typ, id}]
}

// start links and runs a channel in its own goroutine.
func (s *session) start(id channelID) {
	s.mu.Lock()
	if _, ok := s.chans[id]; ok {
		s.mu.Unlock()
		return
	}
	s.chans[id] = nil
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := s.runChannel(id)
		if err != nil && s.ctx.Err() == nil {
			if id.typ == ChannelDisplay || errors.Is(err, errMigrate) {
				s.cancel(err)
				return
			}
			// Losing cursor or inputs leaves a usable console.
			s.log.Warn("spice: channel ended", "channel", channelName(id.typ), "err", err)
		}
	}()
}

func (s *session) runChannel(id channelID) error {
	var caps []uint32
	switch id.typ {
	case ChannelDisplay:
		caps = displayCaps()
	case ChannelInputs:
		caps = capBits(inputsCapKeyScancode)
	}
	ch, err := s.client.dialChannel(s.ctx, s.addr, s.connID, id, caps)
	if err != nil {
		return err
	}
	ch.peers = s.peer
	defer ch.conn.Close()
	s.mu.Lock()
	s.chans[id] = ch
	s.mu.Unlock()
	s.log.Debug("spice: channel linked", "channel", ch.name(), "mini_header", ch.mini)
	switch id.typ {
	case ChannelDisplay:
		d := newDisplay(ch, s.fb, s.client.opts.Compression, s.log)
		d.counts = &s.client.images
		d.onMark = s.client.markFirstFrame
		s.mu.Lock()
		s.disp = d
		s.mu.Unlock()
		if err := d.start(); err != nil {
			return err
		}
		return ch.run(s.ctx, d.handle, d.flush)
	case ChannelInputs:
		in := newInputs(ch, s.client)
		s.mu.Lock()
		s.inputs = in
		s.mu.Unlock()
		return ch.run(s.ctx, in.handle, nil)
	case ChannelCursor:
		cur := newCursor(s.fb, s.log)
		return ch.run(s.ctx, cur.handle, nil)
	}
	return ch.run(s.ctx, func(message) error { return nil }, nil)
}

// Run attaches the display, inputs and cursor channels and feeds fb until
// ctx ends (returning nil), Close is called, or the connection fails. A
// server-side migration is followed by linking again.
func (c *Client) Run(ctx context.Context, fb *framebuffer.Framebuffer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return errors.New("spice: client closed")
	}
	c.runCancel = cancel
	c.mu.Unlock()
	for attempt := 0; ; attempt++ {
		err := c.runSession(ctx, fb)
		if ctx.Err() != nil {
			return nil
		}
		if !errors.Is(err, errMigrate) || attempt >= 5 {
			return err
		}
		c.log.Info("spice: reconnecting after migration", "attempt", attempt+1)
		if err := c.connectMain(ctx); err != nil {
			return fmt.Errorf("spice: reconnecting after migration: %w", err)
		}
	}
}

func (c *Client) runSession(ctx context.Context, fb *framebuffer.Framebuffer) error {
	c.mu.Lock()
	main, mi, addr := c.main, c.init, c.addr
	c.mu.Unlock()
	if main == nil {
		return errors.New("spice: main channel not linked")
	}
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	s := &session{
		client: c, main: main, fb: fb, log: c.log, ctx: sctx, cancel: cancel,
		connID: mi.SessionID, addr: addr, chans: map[channelID]*channel{{ChannelMain, 0}: main},
	}
	main.peers = s.peer
	s.agent = newAgent(main.send, fb, c.log)
	c.mu.Lock()
	c.sess = s
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.sess, c.main = nil, nil
		c.mu.Unlock()
		main.conn.Close()
	}()
	if mi.SupportedMouseModes&MouseModeClient != 0 && mi.CurrentMouseMode != MouseModeClient {
		if err := s.requestClientMouse(); err != nil {
			return err
		}
	}
	if err := main.send(msgcMainAttachChannels, nil); err != nil {
		return err
	}
	if mi.AgentConnected != 0 {
		if err := s.agent.onConnected(mi.AgentTokens); err != nil {
			return err
		}
	}
	s.publishCaps()
	err := main.run(sctx, s.handleMain, nil)
	if err != nil {
		cancel(err)
	}
	<-sctx.Done()
	cancel(nil)
	main.conn.Close()
	s.wg.Wait()
	if cause := context.Cause(sctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return err
}

// setMouseMode records the server's mouse mode. When it changes, the
// inputs channel forgets the last pointer position, so that the first
// relative motion after a switch to server mode is not a jump from where
// the absolute pointer last was.
func (c *Client) setMouseMode(m uint32) {
	c.mu.Lock()
	changed := c.mouseMode != m
	c.mouseMode = m
	c.mu.Unlock()
	if in := c.inputs(); changed && in != nil {
		in.forgetPosition()
	}
}

// setMouseModes records the mouse modes the server offers.
func (c *Client) setMouseModes(m uint32) {
	c.mu.Lock()
	c.mouseModes = m
	c.mu.Unlock()
}

// MouseMode returns the server's current mouse mode (MouseModeServer or
// MouseModeClient).
func (c *Client) MouseMode() uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mouseMode
}

func (c *Client) setName(n string) {
	c.mu.Lock()
	c.name = n
	c.mu.Unlock()
}

// setMigrationTarget points the next connection at the server a migration
// named: its plain port and TLS port (either may be 0, not both).
func (c *Client) setMigrationTarget(host string, port, tlsPort int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tlsPort, c.tlsOnly = tlsPort, port == 0
	if port == 0 {
		port = tlsPort
	}
	c.addr = net.JoinHostPort(host, strconv.Itoa(port))
}

func (c *Client) inputs() *inputs {
	c.mu.Lock()
	s := c.sess
	c.mu.Unlock()
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inputs
}

// errNoInputs is returned by input methods before the inputs channel is up.
var errNoInputs = errors.New("spice: inputs channel not connected")

// Key sends a key press or release as set-1 scancodes.
func (c *Client) Key(ev input.KeyEvent) error {
	in := c.inputs()
	if in == nil {
		return errNoInputs
	}
	return in.key(ev)
}

// Pointer sends the pointer position (client mouse mode) or the motion
// since the previous event (server mouse mode), buttons and wheel steps.
func (c *Client) Pointer(ev input.PointerEvent) error {
	in := c.inputs()
	if in == nil {
		return errNoInputs
	}
	return in.pointer(ev, c.MouseMode())
}

// agentTokens returns the agent tokens of the server's INIT message.
func (c *Client) agentTokens() uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.init.AgentTokens
}

func (c *Client) agent() *agent {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess == nil {
		return nil
	}
	return c.sess.agent
}

// Clipboard offers UTF-8 text to the guest's clipboard through its VD
// agent (spice-vdagent); ErrNoAgent when the guest runs none. The guest's
// own clipboard text reaches the framebuffer (SetClipboard) whenever the
// guest grabs its clipboard.
func (c *Client) Clipboard(text string) error {
	a := c.agent()
	if a == nil {
		return ErrNoAgent
	}
	return a.clipboard(text)
}

// SetMonitors asks the guest for a monitor layout (one monitor of the
// given size resizes its display), through the VD agent channel; QEMU
// passes it to the guest's QXL driver or its agent. ErrNoAgent when the
// guest runs no agent (the SPICE server then drops such requests).
func (c *Client) SetMonitors(ms ...Monitor) error {
	a := c.agent()
	if a == nil {
		return ErrNoAgent
	}
	return a.monitors(ms)
}

// Resize asks the guest for one monitor of w×h (backend.Resizer) through
// its VD agent, as SetMonitors does. It returns as soon as the request is
// sent: the guest answers with a display of the new size, or ignores it.
// Without an agent it returns ErrNoAgent, which wraps
// backend.ErrUnsupported too.
func (c *Client) Resize(ctx context.Context, w, h int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := c.SetMonitors(Monitor{Width: w, Height: h})
	if errors.Is(err, ErrNoAgent) {
		return fmt.Errorf("%w: %w", err, backend.ErrUnsupported)
	}
	return err
}

// pointerKind returns the pointer kind viewers should use: "absolute" in
// client mouse mode, and when the server offers it (the client asks for it
// whenever it does), else "relative".
func (c *Client) pointerKind() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mouseMode == MouseModeClient || c.mouseModes&MouseModeClient != 0 {
		return "absolute"
	}
	return "relative"
}

// publishCaps tells the framebuffer the pointer kind and whether the guest
// can be resized (its agent is connected).
func (s *session) publishCaps() {
	s.fb.SetPointer(s.client.pointerKind())
	s.fb.SetResizable(s.agent.isConnected())
}

// Action is not supported by SPICE consoles.
func (c *Client) Action(a input.Action) error { return backend.ErrUnsupported }

// Refresh asks nothing of the server: a SPICE client always holds the whole
// screen, and the shared framebuffer already has it.
func (c *Client) Refresh() error { return nil }

// Info describes the connection.
func (c *Client) Info() backend.Info {
	agent := "none"
	if a := c.agent(); a != nil && a.isConnected() {
		agent = "connected"
	}
	pointer := c.pointerKind()
	c.mu.Lock()
	defer c.mu.Unlock()
	mode := "server"
	if c.mouseMode == MouseModeClient {
		mode = "client"
	}

	return backend.Info{
		Protocol: "spice",
		Server:   "SPICE " + strconv.Itoa(versionMajor) + "." + strconv.Itoa(versionMinor),
		Name:     c.name,
		Details: map[string]string{
			"session_id":     strconv.FormatUint(uint64(c.init.SessionID), 10),
			"mouse_mode":     mode,
			"pointer":        pointer,
			"agent":          agent,
			"address":        c.addr,
			"tls":            strconv.FormatBool(c.secure[ChannelMain]),
			"bytes_received": strconv.FormatUint(c.received.Load(), 10),
		},
	}
}

// Close ends the connection; Run then returns.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.runCancel != nil {
		c.runCancel()
	}
	if c.main != nil {
		c.main.conn.Close()
	}
	return nil
}

// OptionsFromURL builds Options for a spice:// target and returns the
// address to dial. The port defaults to 5900, unless tls-port is given
// without a port: then every channel goes over TLS. Query parameters:
// compression=off|auto_lz|quic|lz|lz4|server (what to ask the server for);
// tls-port=N (the server's TLS port, used for the channels it refuses in
// plain text); ca-file=PATH (PEM CA certificates to verify the server with,
// instead of the system roots); tls-server-name=NAME (the name the
// certificate must carry, default the host); insecure=1 (do not verify the
// server's certificate).
func OptionsFromURL(u *url.URL, secrets backend.Secrets) (string, Options, error) {
	opts := Options{Password: secrets.Password}
	host, port := u.Hostname(), u.Port()
	if host == "" {
		return "", opts, fmt.Errorf("spice: target %q has no host", u.Redacted())
	}
	if port == "" {
		port = strconv.Itoa(DefaultPort)
	}
	q := u.Query()
	comp, err := ParseCompression(q.Get("compression"))
	if err != nil {
		return "", opts, err
	}
	opts.Compression = comp
	if tp := q.Get("tls-port"); tp != "" {
		n, err := strconv.Atoi(tp)
		if err != nil || n <= 0 || n > 65535 {
			return "", opts, fmt.Errorf("spice: tls-port %q is not a port number", tp)
		}
		opts.TLSPort = n
		opts.TLSOnly = u.Port() == ""
		cfg := &tls.Config{ServerName: q.Get("tls-server-name")}
		if f := q.Get("ca-file"); f != "" {
			pem, err := os.ReadFile(f)
			if err != nil {
				return "", opts, fmt.Errorf("spice: ca-file: %w", err)
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return "", opts, fmt.Errorf("spice: ca-file %s holds no PEM certificate", f)
			}
		}
		switch q.Get("insecure") {
		case "", "0", "false":
		case "1", "true":
			cfg.InsecureSkipVerify = true
		default:
			return "", opts, fmt.Errorf("spice: insecure=%q, want 0 or 1", q.Get("insecure"))
		}
		opts.TLSConfig = cfg
	} else {
		for _, k := range []string{"ca-file", "insecure", "tls-server-name"} {
			if q.Has(k) {
				return "", opts, fmt.Errorf("spice: %s= needs tls-port=", k)
			}
		}
	}
	return net.JoinHostPort(host, port), opts, nil
}

func openTarget(ctx context.Context, u *url.URL, secrets backend.Secrets) (backend.Console, error) {
	addr, opts, err := OptionsFromURL(u, secrets)
	if err != nil {
		return nil, err
	}
	return Dial(ctx, addr, opts)
}

// le is shorthand for the byte order of every SPICE field.
var le = binary.LittleEndian
