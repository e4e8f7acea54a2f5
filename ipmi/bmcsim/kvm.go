// Package bmcsim simulates a Supermicro BMC for tests: the web side (login,
// JNLP in the 10- and 22-argument layouts, the Redfish HTML5 launch, an
// old-TLS profile) and the ATEN iKVM server (over TCP and WebSocket), built
// byte for byte from the public descriptions of the protocol. It records
// every client message so tests can assert them exactly.
//
// It was written from public protocol notes, not from captures of real
// boards: where those notes disagree, it follows the choices documented in
// kvmgate/rfb/aten, and agreeing with it proves consistency, not
// compatibility with every firmware.
package bmcsim

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	"kvmgate/framebuffer"
	video "kvmgate/ipmi/aten"
)

// Video encodings the KVM simulator can send.
const (
	VideoHermonRaw   = "hermon-raw"
	VideoHermonTiles = "hermon-tiles"
	VideoAST2100     = "ast2100"
)

// Banners.
const (
	BannerJava  = "RFB 003.008\n"
	BannerHTML5 = "RFB 055.008\n"
)

// Security blob variants (the 24 bytes after security type 16).
var (
	// BlobTight is what newer AST2400/AST2500 firmware sends: a zero
	// TightVNC tunnel count, a sub-auth count of 0x0100 and 16 more bytes.
	BlobTight = [24]byte{0, 0, 0, 0, 0, 0, 1, 0, 'S', 'T', 'D', 'V', 'N', 'O', 'A', 'U', 'T', 'H', '_', '_', 0, 0, 0, 1}
	// BlobATEN1 is the older layout with a large first word.
	BlobATEN1 = [24]byte{0xaf, 0xf9, 0x0f, 0xb0, 0x40, 0x06, 0xa0, 0x74, 0xbe, 0x8a, 0xaf, 0x7e, 0, 0, 0, 0, 0xbc, 0xbd, 1, 0, 0xc8, 0x0c, 0xa0, 0x74}
)

// KVMOptions configure the KVM simulator.
type KVMOptions struct {
	Banner string   // BannerJava (default) or BannerHTML5
	Blob   [24]byte // the security blob; zero means BlobTight
	// Name is the desktop name in ServerInit.
	Name string
	// InitWidth and InitHeight are ServerInit's placeholder geometry.
	InitWidth, InitHeight int
	// KeyboardMouse is the KM flag of the ServerInit trailer (false makes
	// the session view-only). DisableKM inverts the default true.
	DisableKM bool
	// Video selects the encoding of frames.
	Video string
	// Profile maps extra server message types to their body lengths, for
	// SendExtra's checks; nil accepts any length.
	Profile map[byte]int
}

// Record is one client message after the handshake, as sent.
type Record struct {
	Type  byte
	Bytes []byte // the whole message including the type byte
}

// Credentials are one accepted pair for the 48-byte reply.
type Credentials struct{ User, Password string }

// KVM is the simulated iKVM server. Its methods are safe for concurrent
// use.
type KVM struct {
	opts KVMOptions

	mu sync.Mutex
	// mu guards the following.
	creds       []Credentials
	screen      *framebuffer.Canvas
	shown       *framebuffer.Canvas // what a correct client shows: the sim's frames decoded
	ast         video.AST2100Decoder
	noSignal    bool
	dirty       []framebuffer.Rect // changed since the last frame sent
	conns       map[*kvmConn]bool
	records     []Record
	authTries   int
	authFails   int
	handshakes  [][]byte // each connection's handshake bytes from the client
	changed     chan struct{}
	outstanding int // update requests not yet answered, over all connections
	frames      int // FramebufferUpdates sent
}

// NewKVM returns a simulator showing screen (copied).
func NewKVM(opts KVMOptions, screen *framebuffer.Canvas) *KVM {
	if opts.Banner == "" {
		opts.Banner = BannerJava
	}
	if opts.Blob == ([24]byte{}) {
		opts.Blob = BlobTight
	}
	if opts.Video == "" {
		opts.Video = VideoHermonRaw
	}
	if opts.InitWidth == 0 {
		opts.InitWidth, opts.InitHeight = 800, 600
	}
	if opts.Name == "" {
		opts.Name = "ATEN iKVM (simulated)"
	}
	return &KVM{opts: opts, screen: screen.Clone(), conns: map[*kvmConn]bool{}, changed: make(chan struct{})}
}

// Accept adds a pair of credentials the server accepts (the JNLP's
// per-launch pair, a token).
func (k *KVM) Accept(c Credentials) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.creds = append(k.creds, c)
}

// SetScreen replaces the picture; clients with an outstanding request get
// a frame. A size change is a resolution change.
func (k *KVM) SetScreen(c *framebuffer.Canvas) {
	k.mu.Lock()
	k.screen = c.Clone()
	k.noSignal = false
	k.dirty = append(k.dirty, c.Bounds())
	conns := k.connList()
	k.mu.Unlock()
	for _, cn := range conns {
		cn.kick()
	}
}

// SetNoSignal makes the next frames no-signal rectangles.
func (k *KVM) SetNoSignal() {
	k.mu.Lock()
	k.noSignal = true
	k.dirty = append(k.dirty, framebuffer.Rect{W: 1, H: 1})
	conns := k.connList()
	k.mu.Unlock()
	for _, cn := range conns {
		cn.kick()
	}
}

// SendExtra sends an ATEN server message (type and body) to every client.
func (k *KVM) SendExtra(typ byte, body []byte) error {
	if n, ok := k.opts.Profile[typ]; k.opts.Profile != nil && (!ok || n != len(body)) {
		return fmt.Errorf("bmcsim: message %#x with %d bytes does not fit the profile", typ, len(body))
	}
	k.mu.Lock()
	conns := k.connList()
	k.mu.Unlock()
	msg := append([]byte{typ}, body...)
	for _, cn := range conns {
		if err := cn.write(msg); err != nil {
			return err
		}
	}
	return nil
}

// SessionMessageBody builds a 264-byte 0x39 body.
func SessionMessageBody(code, arg uint32, text string) []byte {
	b := make([]byte, 264)
	binary.BigEndian.PutUint32(b[0:4], code)
	binary.BigEndian.PutUint32(b[4:8], arg)
	copy(b[8:263], text)
	return b
}

func (k *KVM) connList() []*kvmConn {
	var l []*kvmConn
	for c := range k.conns {
		l = append(l, c)
	}
	return l
}

// Records returns the client messages received so far, in order.
func (k *KVM) Records() []Record {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]Record(nil), k.records...)
}

// Handshakes returns each connection's handshake bytes from the client:
// the echoed banner, the chosen security type, the 48-byte credentials and
// ClientInit.
func (k *KVM) Handshakes() [][]byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([][]byte(nil), k.handshakes...)
}

// AuthAttempts returns how many credential replies were checked and how
// many failed.
func (k *KVM) AuthAttempts() (tries, fails int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.authTries, k.authFails
}

// Outstanding returns the number of update requests not yet answered.
func (k *KVM) Outstanding() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.outstanding
}

// Frames returns the number of FramebufferUpdates sent so far.
func (k *KVM) Frames() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.frames
}

// Changed returns a channel closed at the next recorded client message.
func (k *KVM) Changed() <-chan struct{} {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.changed
}

// Shown returns what a correct client displays now: the simulator's own
// frames decoded by kvmgate/ipmi/aten (nil before the first frame).
func (k *KVM) Shown() *framebuffer.Canvas {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.shown == nil {
		return nil
	}
	return k.shown.Clone()
}

func (k *KVM) record(b []byte) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.records = append(k.records, Record{Type: b[0], Bytes: append([]byte(nil), b...)})
	close(k.changed)
	k.changed = make(chan struct{})
}

// Serve accepts connections on l until it is closed.
func (k *KVM) Serve(l net.Listener) error {
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		go k.ServeConn(c)
	}
}

// kvmConn is one client connection. Its reader goroutine owns reads;
// wmu serialises writes.
type kvmConn struct {
	k    *KVM
	c    net.Conn
	br   *bufio.Reader
	wmu  sync.Mutex
	pend chan struct{} // wakes the frame sender
	// The following are owned by the frame sender under k.mu.
	want    bool // an update request is outstanding
	full    bool // the outstanding request is non-incremental
	sentW   int
	sentH   int
	started bool
}

func (c *kvmConn) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.c.Write(b)
	return err
}

func (c *kvmConn) kick() {
	select {
	case c.pend <- struct{}{}:
	default:
	}
}

// ServeConn runs the ATEN protocol on one connection and closes it.
func (k *KVM) ServeConn(conn net.Conn) error {
	defer conn.Close()
	c := &kvmConn{k: k, c: conn, br: bufio.NewReader(conn), pend: make(chan struct{}, 1)}
	if err := c.handshake(); err != nil {
		return err
	}
	k.mu.Lock()
	k.conns[c] = true
	k.mu.Unlock()
	done := make(chan struct{})
	defer func() {
		close(done)
		k.mu.Lock()
		delete(k.conns, c)
		if c.want {
			k.outstanding--
		}
		k.mu.Unlock()
	}()
	go c.sender(done)
	return c.readLoop()
}

func (c *kvmConn) handshake() error {
	k := c.k
	var hs []byte
	if err := c.write([]byte(k.opts.Banner)); err != nil {
		return err
	}
	v := make([]byte, 12)
	if _, err := io.ReadFull(c.br, v); err != nil {
		return err
	}
	hs = append(hs, v...)
	if string(v) != k.opts.Banner {
		// HTML5 firmware goes silent when the banner is not echoed.
		return fmt.Errorf("bmcsim: client answered %q to banner %q", v, k.opts.Banner)
	}
	if err := c.write([]byte{1, 16}); err != nil {
		return err
	}
	var t [1]byte
	if _, err := io.ReadFull(c.br, t[:]); err != nil {
		return err
	}
	hs = append(hs, t[0])
	if t[0] != 16 {
		return fmt.Errorf("bmcsim: client chose security type %d", t[0])
	}
	if err := c.write(k.opts.Blob[:]); err != nil {
		return err
	}
	cred := make([]byte, 48)
	if _, err := io.ReadFull(c.br, cred); err != nil {
		return err
	}
	hs = append(hs, cred...)
	user, pass := cstr(cred[:24]), cstr(cred[24:])
	k.mu.Lock()
	k.authTries++
	ok := false
	for _, a := range k.creds {
		ok = ok || (a.User == user && a.Password == pass)
	}
	if !ok {
		k.authFails++
	}
	k.mu.Unlock()
	if !ok {
		c.write([]byte{0, 0, 0, 1})
		k.mu.Lock()
		k.handshakes = append(k.handshakes, hs)
		k.mu.Unlock()
		return errors.New("bmcsim: bad credentials")
	}
	if err := c.write([]byte{0, 0, 0, 0}); err != nil {
		return err
	}
	if _, err := io.ReadFull(c.br, t[:]); err != nil {
		return err
	}
	hs = append(hs, t[0])
	k.mu.Lock()
	k.handshakes = append(k.handshakes, hs)
	k.mu.Unlock()
	// ServerInit: placeholder geometry and a 32-bit pixel format ATEN does
	// not use, the name, then the 12-byte trailer.
	si := binary.BigEndian.AppendUint16(nil, uint16(k.opts.InitWidth))
	si = binary.BigEndian.AppendUint16(si, uint16(k.opts.InitHeight))
	si = append(si, 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0)
	si = binary.BigEndian.AppendUint32(si, uint32(len(k.opts.Name)))
	si = append(si, k.opts.Name...)
	km := byte(1)
	if k.opts.DisableKM {
		km = 0
	}
	si = append(si, 0, 0, 0, 0, 0, 0, 0, 0, 1, km, 1, 1)
	return c.write(si)
}

func cstr(b []byte) string {
	for i, x := range b {
		if x == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// clientLengths gives the length of each client message after its type.
var clientLengths = map[byte]int{
	0x03: 9,  // FramebufferUpdateRequest
	0x04: 17, // KeyEvent
	0x05: 17, // PointerEvent
	0x16: 1,  // KeepAlive
	0x1a: 1,  // SetPowerOnOff
	0x36: 2,  // MouseSetInfo
	0x32: 4,  // VideoSetInfo
}

func (c *kvmConn) readLoop() error {
	for {
		var t [1]byte
		if _, err := io.ReadFull(c.br, t[:]); err != nil {
			return err
		}
		var msg []byte
		if t[0] == 0x02 { // SetEncodings
			h := make([]byte, 3)
			if _, err := io.ReadFull(c.br, h); err != nil {
				return err
			}
			n := int(binary.BigEndian.Uint16(h[1:3]))
			body := make([]byte, 4*n)
			if _, err := io.ReadFull(c.br, body); err != nil {
				return err
			}
			msg = append(append([]byte{2}, h...), body...)
		} else {
			n, ok := clientLengths[t[0]]
			if !ok {
				return fmt.Errorf("bmcsim: unknown client message %#x", t[0])
			}
			msg = make([]byte, 1+n)
			msg[0] = t[0]
			if _, err := io.ReadFull(c.br, msg[1:]); err != nil {
				return err
			}
		}
		if msg[0] == 0x03 {
			c.k.mu.Lock()
			if !c.want {
				c.k.outstanding++
			}
			c.want = true
			c.full = c.full || msg[1] == 0
			c.k.mu.Unlock()
			c.kick()
		}
		c.k.record(msg)
	}
}

// sender answers update requests with frames while the picture changes.
func (c *kvmConn) sender(done chan struct{}) {
	for {
		select {
		case <-done:
			return
		case <-c.pend:
		}
		k := c.k
		k.mu.Lock()
		send := c.want && (c.full || len(k.dirty) > 0 || !c.started)
		var msg []byte
		if send {
			msg = k.frameLocked(c)
			c.want, c.full, c.started = false, false, true
			k.outstanding--
			k.dirty = nil
		}
		k.mu.Unlock()
		if msg != nil {
			if err := c.write(msg); err != nil {
				c.c.Close()
				return
			}
		}
	}
}

// frameLocked builds one FramebufferUpdate with the current picture and
// updates what a correct client shows.
func (k *KVM) frameLocked(c *kvmConn) []byte {
	k.frames++
	msg := []byte{0, 0, 0, 1}
	rect := func(w, h int, enc uint32, body []byte) {
		msg = append(msg, 0, 0, 0, 0)
		msg = binary.BigEndian.AppendUint16(msg, uint16(w))
		msg = binary.BigEndian.AppendUint16(msg, uint16(h))
		msg = binary.BigEndian.AppendUint32(msg, enc)
		msg = binary.BigEndian.AppendUint32(msg, 0)
		msg = binary.BigEndian.AppendUint32(msg, uint32(len(body)))
		msg = append(msg, body...)
	}
	if k.noSignal {
		neg640, neg480 := -640, -480
		rect(int(uint16(int16(neg640))), int(uint16(int16(neg480))), video.EncodingHermon, nil)
		return msg
	}
	s := k.screen
	resized := s.W != c.sentW || s.H != c.sentH
	c.sentW, c.sentH = s.W, s.H
	if k.shown == nil || k.shown.W != s.W || k.shown.H != s.H {
		k.shown, _ = framebuffer.NewCanvas(s.W, s.H)
	}
	switch k.opts.Video {
	case VideoAST2100:
		body := AST2100VQ(s, nil)
		rect(s.W, s.H, video.EncodingAST2100, body)
		k.ast.Decode(k.shown, body, nil)
	case VideoHermonTiles:
		var tiles [][2]int
		for ty := 0; ty < (s.H+15)/16; ty++ {
			for tx := 0; tx < (s.W+15)/16; tx++ {
				tiles = append(tiles, [2]int{tx, ty})
			}
		}
		body := HermonTiles(s, tiles)
		rect(s.W, s.H, video.EncodingHermon, body)
		video.DecodeHermon(k.shown, s.Bounds(), body, nil)
	default:
		enc := uint32(video.EncodingHermon)
		if resized {
			enc = video.EncodingHermonLegacy // older firmware's number, sent now and then
		}
		body := HermonRaw(s)
		rect(s.W, s.H, enc, body)
		video.DecodeHermon(k.shown, s.Bounds(), body, nil)
	}
	return msg
}
