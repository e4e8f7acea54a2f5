// Package rfb is kvmgate's RFB (VNC) client: the handshake (RFB 3.3–3.8,
// None, VNC authentication, VeNCrypt with X.509 TLS), the decoders of the
// pixel encodings, one file each, and the pseudo-encodings and extension
// messages a console gateway needs (desktop resize, cursors and the
// pointer position, QEMU extended keys and LEDs, fences and continuous
// updates, xvp power control, the extended clipboard).
//
// A Client is made by Dial or NewClient, which return after the handshake.
// Its Run method then owns the connection's reads: it decodes updates into a
// private canvas and publishes each complete update to a
// framebuffer.Framebuffer. The input methods (Key, Pointer, Clipboard,
// Action, Refresh) may be called from any goroutine; writes are serialised
// by a mutex and bounded by a write deadline.
package rfb

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"kvmgate/framebuffer"
)

// Options configure a Client. The zero value is usable: a shared session, no
// credentials, the default encodings and kvmgate's native pixel format.
type Options struct {
	// Password is used for VNC authentication and VeNCrypt Plain. It is
	// never logged.
	Password string
	// Username is used by the VeNCrypt Plain subtypes.
	Username string
	// Encodings lists the pixel encodings to ask for, most preferred first.
	// Nil means DefaultEncodings. Pseudo-encodings are added by the client.
	Encodings []Encoding
	// Exclusive asks the server to disconnect other viewers (ClientInit
	// shared-flag 0). The default is a shared session.
	Exclusive bool
	// QualityLevel (0–9) asks for lossy JPEG in Tight at that quality; -1
	// or any value outside 0–9 leaves it unset (lossless Tight). Note that
	// the zero value asks for quality 0; use NewOptions for -1 defaults.
	QualityLevel int
	// CompressLevel (0–9) is the compression hint; -1 leaves it unset.
	CompressLevel int
	// PixelFormat, if set, is requested instead of NativeFormat (tests use
	// it to exercise 8 and 16 bpp and colour maps).
	PixelFormat *PixelFormat
	// ServerFormat keeps the server's own pixel format (no SetPixelFormat).
	ServerFormat bool
	// TLSConfig is used for VeNCrypt X509 subtypes. Certificates are
	// verified by default; its ServerName defaults to the dialled host.
	// Setting it (or TLSInsecure) makes the client prefer VeNCrypt over
	// unencrypted security types when the server offers both.
	TLSConfig *tls.Config
	// TLSInsecure accepts any server certificate. Use only for testing.
	TLSInsecure bool
	// MaxWidth and MaxHeight bound the framebuffer a server may announce,
	// below framebuffer.MaxDimension; 0 means no extra bound.
	MaxWidth, MaxHeight int
	// NoContinuousUpdates keeps the client in request/response mode even
	// when the server supports continuous updates.
	NoContinuousUpdates bool
	// WriteTimeout bounds each write to the server; 0 means 10 seconds.
	WriteTimeout time.Duration
	// Logger receives one line per notable protocol event; nil discards.
	Logger *slog.Logger
}

// NewOptions returns Options with QualityLevel and CompressLevel unset.
func NewOptions() Options {
	return Options{QualityLevel: -1, CompressLevel: -1}
}

// DefaultEncodings is the preference order used when Options.Encodings is
// nil. Only encodings with a registered decoder are actually requested.
var DefaultEncodings = []Encoding{
	EncodingCopyRect, EncodingTight, EncodingZRLE, EncodingTRLE,
	EncodingHextile, EncodingZlib, EncodingRRE, EncodingRaw,
}

// Limits on what a server may make the client hold.
const (
	maxNameLength   = 64 << 10 // desktop name
	maxReasonLength = 64 << 10 // failure reason strings
	maxCutText      = 1 << 20  // clipboard text kept
	maxCutDiscard   = 64 << 20 // longer clipboard payloads are an error
	maxCursorPixels = 512 * 512
)

// Client is one RFB connection after a successful handshake.
type Client struct {
	opts Options
	log  *slog.Logger
	addr string

	// Set by the handshake, then read-only.
	conn     net.Conn // the transport; a *tls.Conn after VeNCrypt X509
	raw      net.Conn // the underlying TCP (or test) connection
	r        *reader
	version  string // "3.3", "3.7" or "3.8"
	banner   string // the server's ProtocolVersion, trimmed
	security string // the security type used
	initW    int
	initH    int
	serverPF PixelFormat
	pf       PixelFormat // the format updates arrive in
	encs     []Encoding  // what SetEncodings asked for

	wmu sync.Mutex
	// wmu serialises writes to conn and guards the following.
	broken error // first write error; later writes fail fast

	mu sync.Mutex
	// mu guards the following, shared between Run and the input methods.
	name          string
	width, height int
	qemuKeys      bool // server acked the QEMU extended key event
	relative      bool // server asked for relative pointer motion
	lastX, lastY  int
	leds          LEDState
	ledsKnown     bool
	xvpVersion    int // 0: xvp not available
	xvpFailures   int
	fence         bool
	cuSupported   bool
	cuActive      bool
	extDesktop    bool // server sent ExtendedDesktopSize: SetDesktopSize allowed
	screens       []Screen
	clip          clipState
	localClip     string // last text sent with Clipboard, for requests
	resizeWaiters []chan error
	stats         Stats

	running   atomic.Bool
	closed    atomic.Bool
	closeOnce sync.Once
	fullFrame chan struct{} // closed after the first complete frame
	fullOnce  sync.Once
}

// Dial connects to addr ("host:port") and completes the RFB handshake before
// returning. ctx bounds the connection and the handshake.
func Dial(ctx context.Context, addr string, opts Options) (*Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("rfb: connect to %s: %w", addr, err)
	}
	c, err := newClient(ctx, conn, addr, opts)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// NewClient completes the RFB handshake over an established connection. On
// error the caller still owns conn.
func NewClient(ctx context.Context, conn net.Conn, opts Options) (*Client, error) {
	addr := ""
	if ra := conn.RemoteAddr(); ra != nil {
		addr = ra.String()
	}
	return newClient(ctx, conn, addr, opts)
}

func newClient(ctx context.Context, conn net.Conn, addr string, opts Options) (*Client, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{
		opts: opts, log: log.With("remote", addr), addr: addr,
		conn: conn, raw: conn, r: newReader(conn),
		fullFrame: make(chan struct{}),
	}
	// The handshake runs under ctx: its deadline becomes the connection's,
	// and cancelling ctx unblocks any read or write in progress.
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	err := c.handshake(ctx)
	stopped := stop()
	if err != nil {
		if cerr := ctxErr(ctx); cerr != nil {
			return nil, fmt.Errorf("rfb: handshake with %s: %w (%v)", addr, cerr, err)
		}
		return nil, err
	}
	if !stopped {
		// ctx ended just as the handshake finished; the deadline is spoilt.
		return nil, fmt.Errorf("rfb: handshake with %s: %w", addr, ctx.Err())
	}
	conn.SetDeadline(time.Time{})
	if c.conn != conn {
		c.conn.SetDeadline(time.Time{})
	}
	c.log.Info("rfb connected", "version", c.version, "security", c.security,
		"width", c.initW, "height", c.initH, "name", c.name, "format", c.pf.String())
	return c, nil
}

// ctxErr returns ctx's error, or DeadlineExceeded once its deadline has
// passed (the connection's deadline can fire before ctx's own timer).
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

// Close ends the connection; a running Run returns nil.
func (c *Client) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		err = c.conn.Close()
		if c.raw != c.conn {
			c.raw.Close()
		}
	})
	return err
}

// Name returns the desktop name.
func (c *Client) Name() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.name
}

// Size returns the current framebuffer size.
func (c *Client) Size() (w, h int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.width, c.height
}

// PixelFormat returns the format the server sends pixels in.
func (c *Client) PixelFormat() PixelFormat { return c.pf }

// Version returns the negotiated protocol version ("3.3", "3.7", "3.8").
func (c *Client) Version() string { return c.version }

// Security returns the name of the security type the handshake used.
func (c *Client) Security() string { return c.security }

// FullFrame returns a channel that is closed once Run has received and
// published pixels for the whole framebuffer: the answer to its first,
// non-incremental update request.
func (c *Client) FullFrame() <-chan struct{} { return c.fullFrame }

// Stats counts what Run has received so far.
type Stats struct {
	Updates   uint64              // complete FramebufferUpdate messages
	Rects     map[Encoding]uint64 // pixel rectangles by encoding
	BytesRead int64               // bytes read from the server since the handshake began
}

// Stats returns a copy of the connection's counters.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.stats
	st.Rects = maps.Clone(c.stats.Rects)
	return st
}

// errClosed is returned by writes after Close.
var errClosed = errors.New("rfb: connection closed")

// send writes one or more complete client messages. It is safe for
// concurrent use; a write that cannot finish within the write timeout breaks
// the connection, which makes Run return.
func (c *Client) send(msg []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.sendLocked(msg)
}

func (c *Client) sendLocked(msg []byte) error {
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
		c.broken = fmt.Errorf("rfb: write to %s: %w", c.addr, err)
		// A half-written message leaves the stream unusable.
		c.conn.Close()
		return c.broken
	}
	return nil
}

// Run decodes the server's messages into fb until ctx ends or Close is
// called (it then returns nil) or the connection fails (an error). It
// publishes fb after every complete FramebufferUpdate and closes the
// connection when it returns. It may be called once.
func (c *Client) Run(ctx context.Context, fb *framebuffer.Framebuffer) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("rfb: Run called twice")
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	err := c.loop(fb)
	if ctx.Err() != nil || c.closed.Load() {
		return nil
	}
	c.Close()
	return err
}
