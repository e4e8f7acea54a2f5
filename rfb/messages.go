package rfb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"

	"kvmgate/framebuffer"
	"kvmgate/input"
)

// Client-to-server message types.
const (
	msgSetPixelFormat          = 0
	msgSetEncodings            = 2
	msgFramebufferUpdateReq    = 3
	msgKeyEvent                = 4
	msgPointerEvent            = 5
	msgClientCutText           = 6
	msgEnableContinuousUpdates = 150
	msgClientFence             = 248
	msgXVP                     = 250
	msgSetDesktopSize          = 251
	msgQEMU                    = 255
)

// Server-to-client message types.
const (
	msgFramebufferUpdate      = 0
	msgSetColourMapEntries    = 1
	msgBell                   = 2
	msgServerCutText          = 3
	msgEndOfContinuousUpdates = 150
	msgServerFence            = 248
	msgServerXVP              = 250
	msgServerQEMU             = 255
)

func appendSetPixelFormat(b []byte, pf PixelFormat) []byte {
	b = append(b, msgSetPixelFormat, 0, 0, 0)
	return append(b, pf.Marshal()...)
}

func appendSetEncodings(b []byte, encs []Encoding) []byte {
	b = append(b, msgSetEncodings, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(encs)))
	for _, e := range encs {
		b = binary.BigEndian.AppendUint32(b, uint32(e))
	}
	return b
}

func appendUpdateRequest(b []byte, incremental bool, r framebuffer.Rect) []byte {
	inc := byte(0)
	if incremental {
		inc = 1
	}
	b = append(b, msgFramebufferUpdateReq, inc)
	return appendRect16(b, r)
}

func appendRect16(b []byte, r framebuffer.Rect) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(r.X))
	b = binary.BigEndian.AppendUint16(b, uint16(r.Y))
	b = binary.BigEndian.AppendUint16(b, uint16(r.W))
	return binary.BigEndian.AppendUint16(b, uint16(r.H))
}

func appendKeyEvent(b []byte, down bool, keysym uint32) []byte {
	d := byte(0)
	if down {
		d = 1
	}
	b = append(b, msgKeyEvent, d, 0, 0)
	return binary.BigEndian.AppendUint32(b, keysym)
}

func appendQEMUKeyEvent(b []byte, down bool, keysym, keycode uint32) []byte {
	b = append(b, msgQEMU, 0, 0, 0)
	if down {
		b[len(b)-1] = 1
	}
	b = binary.BigEndian.AppendUint32(b, keysym)
	return binary.BigEndian.AppendUint32(b, keycode)
}

func appendPointerEvent(b []byte, mask uint8, x, y uint16) []byte {
	b = append(b, msgPointerEvent, mask)
	b = binary.BigEndian.AppendUint16(b, x)
	return binary.BigEndian.AppendUint16(b, y)
}

func appendEnableContinuousUpdates(b []byte, enable bool, r framebuffer.Rect) []byte {
	e := byte(0)
	if enable {
		e = 1
	}
	b = append(b, msgEnableContinuousUpdates, e)
	return appendRect16(b, r)
}

func appendClientFence(b []byte, flags uint32, payload []byte) []byte {
	b = append(b, msgClientFence, 0, 0, 0)
	b = binary.BigEndian.AppendUint32(b, flags)
	b = append(b, byte(len(payload)))
	return append(b, payload...)
}

func appendXVP(b []byte, version, code uint8) []byte {
	return append(b, msgXVP, 0, version, code)
}

// loop is Run's body: it reads and handles server messages until an error.
func (c *Client) loop(fb *framebuffer.Framebuffer) error {
	c.mu.Lock()
	w, h := c.width, c.height
	c.mu.Unlock()
	canvas, err := framebuffer.NewCanvas(w, h)
	if err != nil {
		return fmt.Errorf("rfb: %w", err)
	}
	var batch framebuffer.Batch
	s := &session{
		c: c, fb: fb, canvas: canvas, batch: &batch,
		d:     newDecodeContext(c.r, c.pf, nil, canvas, &batch),
		rects: make(map[Encoding]uint64),
	}
	s.cover.reset(w, h)
	fb.SetName(c.Name())
	c.publishCaps(fb)
	fb.Publish(canvas, &batch)
	if err := c.send(appendUpdateRequest(nil, false, canvas.Bounds())); err != nil {
		return err
	}
	for {
		if err := s.message(); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("rfb: connection to %s lost: %w", c.addr, err)
			}
			return err
		}
	}
}

// session is the reader goroutine's state inside Run.
type session struct {
	c       *Client
	fb      *framebuffer.Framebuffer
	canvas  *framebuffer.Canvas
	batch   *framebuffer.Batch
	d       *decodeContext
	palette []uint32
	// cover tracks which pixels have arrived since Run began, until the
	// whole framebuffer has (then FullFrame is closed).
	cover   coverage
	gotFull bool
	resized bool                // the current update changed the canvas size
	rects   map[Encoding]uint64 // pixel rectangles by encoding
	updates uint64
}

// message reads and handles one server message.
func (s *session) message() error {
	c := s.c
	t, err := c.r.u8()
	if err != nil {
		return fmt.Errorf("rfb: reading message type: %w", err)
	}
	switch t {
	case msgFramebufferUpdate:
		return s.update()
	case msgSetColourMapEntries:
		return s.colourMap()
	case msgBell:
		s.fb.Bell()
		return nil
	case msgServerCutText:
		return s.serverCutText()
	case msgEndOfContinuousUpdates:
		return s.endOfContinuousUpdates()
	case msgServerFence:
		return s.serverFence()
	case msgServerXVP:
		return s.xvp()
	case msgServerQEMU:
		return s.qemuMessage()
	}
	return protoErr("unknown server message type %d", t)
}

// update reads one FramebufferUpdate, decodes its rectangles into the
// private canvas and publishes the result.
func (s *session) update() error {
	c := s.c
	var hdr [3]byte
	if err := c.r.full(hdr[:]); err != nil {
		return fmt.Errorf("rfb: reading update header: %w", err)
	}
	n := int(binary.BigEndian.Uint16(hdr[1:]))
	s.resized = false
	for i := 0; i < n; i++ {
		var rh [12]byte
		if err := c.r.full(rh[:]); err != nil {
			return fmt.Errorf("rfb: reading rectangle %d of %d: %w", i, n, err)
		}
		r := framebuffer.Rect{
			X: int(binary.BigEndian.Uint16(rh[0:])), Y: int(binary.BigEndian.Uint16(rh[2:])),
			W: int(binary.BigEndian.Uint16(rh[4:])), H: int(binary.BigEndian.Uint16(rh[6:])),
		}
		enc := Encoding(int32(binary.BigEndian.Uint32(rh[8:])))
		if enc == EncodingLastRect {
			break
		}
		if handled, err := s.pseudo(enc, r); err != nil {
			return err
		} else if handled {
			continue
		}
		if !s.canvas.Contains(r) {
			return protoErr("%v rectangle %v outside the %dx%d framebuffer", enc, r, s.canvas.W, s.canvas.H)
		}
		dec, err := s.d.decoder(enc)
		if err != nil {
			return &ProtocolError{Msg: err.Error()}
		}
		if err := dec.decode(s.d, r); err != nil {
			return fmt.Errorf("rfb: %v rectangle %v: %w", enc, r, err)
		}
		if enc != EncodingCopyRect {
			s.batch.Damage(r)
		}
		s.rects[enc]++
		if !s.gotFull {
			s.cover.add(r)
		}
	}
	s.updates++
	c.mu.Lock()
	c.stats.Updates = s.updates
	c.stats.BytesRead = c.r.n
	if c.stats.Rects == nil {
		c.stats.Rects = make(map[Encoding]uint64)
	}
	for e, n := range s.rects {
		c.stats.Rects[e] = n
	}
	c.mu.Unlock()
	if s.batch.Len() > 0 || s.resized {
		s.fb.Publish(s.canvas, s.batch)
	}
	if !s.gotFull && s.cover.full() {
		s.gotFull = true
		s.cover = coverage{}
		c.fullOnce.Do(func() { close(c.fullFrame) })
	}
	return s.requestNext()
}

// requestNext asks for the next update unless the server pushes them.
func (s *session) requestNext() error {
	c := s.c
	c.mu.Lock()
	cu := c.cuActive
	c.mu.Unlock()
	if cu {
		return nil
	}
	return c.send(appendUpdateRequest(nil, true, s.canvas.Bounds()))
}

// resize changes the canvas size after a DesktopSize or
// ExtendedDesktopSize rectangle.
func (s *session) resize(w, h int) error {
	c := s.c
	if err := c.checkSize(w, h); err != nil {
		return err
	}
	if w == s.canvas.W && h == s.canvas.H {
		return nil
	}
	c.log.Info("rfb desktop resized", "width", w, "height", h)
	s.canvas.Resize(w, h)
	s.resized = true
	if !s.gotFull {
		s.cover.reset(w, h)
	}
	c.mu.Lock()
	c.width, c.height = w, h
	cu := c.cuActive
	c.mu.Unlock()
	if cu {
		return c.send(appendEnableContinuousUpdates(nil, true, framebuffer.Rect{W: w, H: h}))
	}
	return nil
}

// colourMap handles SetColourMapEntries.
func (s *session) colourMap() error {
	c := s.c
	var hdr [5]byte
	if err := c.r.full(hdr[:]); err != nil {
		return fmt.Errorf("rfb: reading colour map header: %w", err)
	}
	first := int(binary.BigEndian.Uint16(hdr[1:]))
	n := int(binary.BigEndian.Uint16(hdr[3:]))
	b, err := c.r.readN(6*n, 6*65536)
	if err != nil {
		return fmt.Errorf("rfb: reading colour map: %w", err)
	}
	if first+n > 65536 {
		return protoErr("colour map entries %d..%d beyond 65535", first, first+n-1)
	}
	pal := make([]uint32, max(len(s.palette), first+n))
	copy(pal, s.palette)
	for i := len(s.palette); i < len(pal); i++ {
		pal[i] = 0xff000000
	}
	for i := 0; i < n; i++ {
		e := b[6*i:]
		r, g, bl := e[0], e[2], e[4] // high bytes of the 16-bit intensities
		pal[first+i] = uint32(r) | uint32(g)<<8 | uint32(bl)<<16 | 0xff000000
	}
	s.palette = pal
	s.d.setPixelFormat(c.pf, pal)
	return nil
}

// serverFence answers fence requests and notes that the server has fences.
func (s *session) serverFence() error {
	c := s.c
	var hdr [8]byte
	if err := c.r.full(hdr[:]); err != nil {
		return fmt.Errorf("rfb: reading fence: %w", err)
	}
	flags := binary.BigEndian.Uint32(hdr[3:])
	n := int(hdr[7])
	if n > 64 {
		return protoErr("fence payload of %d bytes (limit 64)", n)
	}
	payload, err := c.r.readN(n, 64)
	if err != nil {
		return fmt.Errorf("rfb: reading fence payload: %w", err)
	}
	c.mu.Lock()
	c.fence = true
	c.mu.Unlock()
	const (
		fenceBlockBefore = 1 << 0
		fenceBlockAfter  = 1 << 1
		fenceSyncNext    = 1 << 2
		fenceRequest     = 1 << 31
	)
	if flags&fenceRequest == 0 {
		return nil // a response to a fence we never send
	}
	// Everything before the fence has been processed (this goroutine
	// handles messages in order), so the response can go at once.
	flags &= fenceBlockBefore | fenceBlockAfter | fenceSyncNext
	return c.send(appendClientFence(nil, flags, payload))
}

// endOfContinuousUpdates handles the server's EndOfContinuousUpdates: the
// first one says continuous updates are supported (and the client turns
// them on); a later one says the server stopped them.
func (s *session) endOfContinuousUpdates() error {
	c := s.c
	c.mu.Lock()
	first := !c.cuSupported
	c.cuSupported = true
	wasActive := c.cuActive
	enable := first && !c.opts.NoContinuousUpdates
	c.cuActive = enable
	c.mu.Unlock()
	switch {
	case enable:
		c.log.Debug("rfb continuous updates enabled")
		return c.send(appendEnableContinuousUpdates(nil, true, s.canvas.Bounds()))
	case wasActive:
		c.log.Info("rfb server ended continuous updates")
		return c.send(appendUpdateRequest(nil, true, s.canvas.Bounds()))
	}
	return nil
}

// xvp handles the xvp server message.
func (s *session) xvp() error {
	c := s.c
	var b [3]byte
	if err := c.r.full(b[:]); err != nil {
		return fmt.Errorf("rfb: reading xvp message: %w", err)
	}
	version, code := b[1], b[2]
	c.mu.Lock()
	defer c.mu.Unlock()
	switch code {
	case 1: // XVP_INIT
		if version >= 1 {
			c.xvpVersion = 1
		}
	case 0: // XVP_FAIL
		c.xvpFailures++
		c.log.Warn("rfb xvp power action failed on the server", "version", version)
	default:
		return protoErr("unknown xvp message code %d", code)
	}
	return nil
}

// qemuMessage handles the QEMU server message (audio, which kvmgate never
// asks for, is skipped).
func (s *session) qemuMessage() error {
	c := s.c
	sub, err := c.r.u8()
	if err != nil {
		return fmt.Errorf("rfb: reading QEMU message: %w", err)
	}
	if sub != 1 {
		return protoErr("unknown QEMU server message %d", sub)
	}
	op, err := c.r.u16()
	if err != nil {
		return fmt.Errorf("rfb: reading QEMU audio message: %w", err)
	}
	switch op {
	case 0, 1: // end, begin
		return nil
	case 2:
		n, err := c.r.u32()
		if err != nil {
			return fmt.Errorf("rfb: reading QEMU audio length: %w", err)
		}
		if n > maxRectPayload {
			return protoErr("QEMU audio chunk of %d bytes", n)
		}
		return c.r.discard(int64(n))
	}
	return protoErr("unknown QEMU audio operation %d", op)
}

// coverage records which pixels of a w×h screen have been painted, one bit
// per pixel, to tell when the first full frame is complete.
type coverage struct {
	w, h   int
	bits   []uint64
	filled int
}

func (cv *coverage) reset(w, h int) {
	cv.w, cv.h = w, h
	cv.bits = make([]uint64, (w*h+63)/64)
	cv.filled = 0
}

func (cv *coverage) add(r framebuffer.Rect) {
	r = r.Intersect(framebuffer.Rect{W: cv.w, H: cv.h})
	for y := r.Y; y < r.Y+r.H; y++ {
		for i := y*cv.w + r.X; i < y*cv.w+r.X+r.W; i++ {
			w, m := i>>6, uint64(1)<<(i&63)
			if cv.bits[w]&m == 0 {
				cv.bits[w] |= m
				cv.filled++
			}
		}
	}
}

func (cv *coverage) full() bool { return cv.filled >= cv.w*cv.h }

// Key sends a key press or release: as a QEMU extended key event (XT
// keycode plus keysym) once the server has acknowledged that extension and
// the key has a keycode, otherwise as an X11 KeyEvent.
func (c *Client) Key(ev input.KeyEvent) error {
	c.mu.Lock()
	qemu := c.qemuKeys
	c.mu.Unlock()
	keysym, haveSym := input.Keysym(ev)
	if qemu {
		if code, ok := input.QEMUKeycode(ev.Code); ok {
			if !haveSym {
				keysym = 0
			}
			return c.send(appendQEMUKeyEvent(nil, ev.Down, keysym, code))
		}
	}
	if !haveSym {
		return fmt.Errorf("rfb: no keysym for key code %q key %q", ev.Code, ev.Key)
	}
	return c.send(appendKeyEvent(nil, ev.Down, keysym))
}

// maxWheelSteps bounds the wheel clicks one Pointer call sends per axis.
const maxWheelSteps = 32

// Pointer sends the pointer position and buttons. Wheel steps become
// press/release pairs of buttons 4/5 (vertical) and 6/7 (horizontal). In
// relative mode (QEMU's pointer motion change) it sends the motion since
// the previous call.
func (c *Client) Pointer(ev input.PointerEvent) error {
	c.mu.Lock()
	w, h := c.width, c.height
	rel := c.relative
	x, y := clampInt(ev.X, 0, max(w-1, 0)), clampInt(ev.Y, 0, max(h-1, 0))
	px, py := x, y
	if rel {
		px = clampInt(0x7fff+x-c.lastX, 0, 0xffff)
		py = clampInt(0x7fff+y-c.lastY, 0, 0xffff)
	}
	c.lastX, c.lastY = x, y
	c.mu.Unlock()

	mask := uint8(ev.Buttons)
	msg := appendPointerEvent(nil, mask, uint16(px), uint16(py))
	if rel {
		// Later events in this call carry no further motion.
		px, py = 0x7fff, 0x7fff
	}
	wheel := func(steps int, neg, pos input.Buttons) {
		b := pos
		if steps < 0 {
			b, steps = neg, -steps
		}
		for i := 0; i < min(steps, maxWheelSteps); i++ {
			msg = appendPointerEvent(msg, mask|uint8(b), uint16(px), uint16(py))
			msg = appendPointerEvent(msg, mask&^uint8(b), uint16(px), uint16(py))
		}
	}
	wheel(ev.WheelY, input.WheelUp, input.WheelDown)
	wheel(ev.WheelX, input.WheelLeft, input.WheelRight)
	return c.send(msg)
}

func clampInt(v, lo, hi int) int { return max(lo, min(v, hi)) }

// Action performs an xvp power action (shutdown, reboot, reset) when the
// server offers xvp; other actions, or a server without xvp, give an error
// wrapping backend.ErrUnsupported. The server reports failures
// asynchronously; they are logged.
func (c *Client) Action(a input.Action) error {
	var code uint8
	switch a {
	case input.ActionShutdown:
		code = 2
	case input.ActionReboot:
		code = 3
	case input.ActionReset:
		code = 4
	default:
		return fmt.Errorf("rfb: action %q: %w", a, errUnsupported)
	}
	c.mu.Lock()
	v := c.xvpVersion
	c.mu.Unlock()
	if v == 0 {
		return fmt.Errorf("rfb: action %q needs xvp, which the server does not offer: %w", a, errUnsupported)
	}
	return c.send(appendXVP(nil, uint8(v), code))
}

// Refresh asks the server to resend the whole screen.
func (c *Client) Refresh() error {
	c.mu.Lock()
	r := framebuffer.Rect{W: c.width, H: c.height}
	c.mu.Unlock()
	return c.send(appendUpdateRequest(nil, false, r))
}
