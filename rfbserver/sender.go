package rfbserver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"time"

	"kvmgate/framebuffer"
	"kvmgate/rfb"
)

// Server-to-client message types.
const (
	msgFramebufferUpdate = 0
	msgBell              = 2
	msgServerCutText     = 3
	msgEndOfCU           = 150
	msgServerFence       = 248
)

// Fence flags.
const (
	fenceBlockBefore = 1 << 0
	fenceBlockAfter  = 1 << 1
	fenceSyncNext    = 1 << 2
	fenceRequest     = 1 << 31
)

// maxFencesOut is how many continuous updates may be on their way (each
// followed by a fence the client answers once it has processed it) before
// the sender waits: this is what paces a client in continuous mode.
const maxFencesOut = 2

// refineDelay is how long an area sent lossy must stay unchanged before it
// is sent again losslessly.
const refineDelay = 400 * time.Millisecond

// maxLossyRects bounds the lossy areas remembered for refinement before
// they merge into their bounding box.
const maxLossyRects = 64

// maxBandPixels bounds the pixels encoded as one rectangle, and so the
// encode buffer: larger areas go out as horizontal bands.
const maxBandPixels = 1 << 18

// maxUpdateRects bounds the damage rectangles of one update before they are
// merged into their bounding box.
const maxUpdateRects = 1024

// maxBellsPerUpdate bounds the Bell messages sent for one batch of bells.
const maxBellsPerUpdate = 3

// sender owns a connection's writes after the handshake: it waits until the
// client has asked for an update and the framebuffer has something new,
// takes the damage from its viewer, encodes it and writes it.
type sender struct {
	c *conn
	v Source
	w *bufio.Writer

	pw       *pixelWriter
	enc      rfb.Encoding // preferred pixel encoding
	encoders map[rfb.Encoding]encoder
	// Pseudo-encodings and CopyRect the client supports.
	copyRect, desktopSize, extDesktopSize, cursorEnc, desktopName, qemuKey bool

	mirror framebuffer.Canvas // the framebuffer's picture as of the last Take
	// sent is the picture the client was sent (lossy areas aside); damage
	// is trimmed to the pixels that differ from it. sentValid is false
	// until a full frame went out.
	sent      framebuffer.Canvas
	sentValid bool
	diffBuf   []framebuffer.Rect
	acc       framebuffer.Damage // scratch: the areas of one update

	clientW, clientH int  // the size the client knows
	fbW, fbH         int  // the framebuffer size at the last Take
	fullPending      bool // the whole screen must be sent

	// Requests absorbed from the reader.
	requested   bool
	sizeQuery   bool // a non-incremental request wants an ExtendedDesktopSize
	forced      []framebuffer.Rect
	sizeReplies []int

	cursor       *framebuffer.Cursor
	cursorDirty  bool
	name         string
	nameDirty    bool
	qemuKeyAcked bool

	// Quality (JPEG) and compression levels, -1 when not sent.
	quality, compress int

	// Continuous updates and fences.
	cuSupported, cuAnnounce, cuEnabled, cuEndDue bool
	fenceSupported                               bool
	fencesOut                                    int // our fences not yet answered
	fenceSeq                                     uint32
	fenceReplies                                 []fence

	// Extended clipboard.
	extClip, extClipAnnounced bool
	clip                      clipRequests
	clipText                  string // the console's clipboard as last taken
	haveClip                  bool

	// Areas last sent lossy, refined once they have been quiet for
	// refineDelay (refineAt).
	lossy    []framebuffer.Rect
	refineAt time.Time
	refineT  *time.Timer

	buf     []byte
	rects   []framebuffer.Rect
	bandBuf []framebuffer.Rect
}

// deadlineWriter sets a write deadline before every write, so a client that
// stops reading is dropped while one that reads slowly keeps going.
type deadlineWriter struct {
	nc net.Conn
	d  time.Duration
}

func (w deadlineWriter) Write(p []byte) (int, error) {
	if err := w.nc.SetWriteDeadline(time.Now().Add(w.d)); err != nil {
		return 0, err
	}
	return w.nc.Write(p)
}

func newSender(c *conn, v Source) *sender {
	s := &sender{
		c: c, v: v,
		w:       bufio.NewWriterSize(deadlineWriter{c.nc, c.s.writeTimeout()}, 64<<10),
		pw:      newPixelWriter(rfb.NativeFormat),
		enc:     rfb.EncodingRaw,
		quality: -1, compress: -1,
		encoders: make(map[rfb.Encoding]encoder),
		clientW:  c.initW, clientH: c.initH,
		fbW: c.initW, fbH: c.initH,
		name: c.initName,
	}
	return s
}

// run sends updates until ctx ends (nil) or a write fails.
func (s *sender) run(ctx context.Context) error {
	s.refineT = time.NewTimer(time.Hour)
	s.refineT.Stop()
	defer s.refineT.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.c.wake:
		case <-s.v.Changed():
		case <-s.refineT.C:
		}
		if err := s.step(); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// absorb takes what the reader recorded.
func (s *sender) absorb() {
	c := s.c
	c.mu.Lock()
	pf, encs := c.pf, c.encs
	c.pf, c.encs = nil, nil
	if c.requested {
		s.requested = true
		c.requested = false
	}
	if c.nonIncr {
		s.sizeQuery = true
		c.nonIncr = false
	}
	for _, r := range c.forced {
		s.forced = addForced(s.forced, r)
	}
	c.forced = c.forced[:0]
	for _, st := range c.sizeReplies {
		if len(s.sizeReplies) < maxSizeReplies {
			s.sizeReplies = append(s.sizeReplies, st)
		}
	}
	c.sizeReplies = c.sizeReplies[:0]
	cuSet, cuEnable := c.cuSet, c.cuEnable
	c.cuSet = false
	s.fenceReplies = append(s.fenceReplies, c.fences...)
	c.fences = c.fences[:0]
	s.fencesOut = max(0, s.fencesOut-c.fenceAcks)
	c.fenceAcks = 0
	if c.clip.capsSet {
		s.clip.caps, s.clip.capsSet = c.clip.caps, true
	}
	s.clip.request = s.clip.request || c.clip.request
	s.clip.provide = s.clip.provide || c.clip.provide
	s.clip.notify = s.clip.notify || c.clip.notify
	c.clip = clipRequests{}
	c.mu.Unlock()

	if cuSet {
		if cuEnable && !s.cuEnabled {
			// Start from a clean slate: everything goes in the first
			// continuous update.
			s.fencesOut = 0
		}
		if !cuEnable && s.cuEnabled {
			s.cuEndDue = true
		}
		s.cuEnabled = cuEnable && s.cuSupported
		s.c.log.Debug("rfbserver: continuous updates", "on", s.cuEnabled)
	}

	if pf != nil {
		s.pw = newPixelWriter(*pf)
		s.c.log.Debug("rfbserver: pixel format", "format", pf.String())
	}
	if encs != nil {
		s.setEncodings(encs)
	}
}

func (s *sender) setEncodings(encs []rfb.Encoding) {
	hadCursor, hadQEMUKey := s.cursorEnc, s.qemuKey
	s.enc = rfb.EncodingRaw
	s.copyRect, s.desktopSize, s.extDesktopSize = false, false, false
	s.cursorEnc, s.desktopName, s.qemuKey = false, false, false
	s.quality, s.compress = -1, -1
	hadCU := s.cuSupported
	s.cuSupported, s.fenceSupported = false, false
	hadExtClip := s.extClip
	s.extClip = false
	picked := false
	for _, e := range encs {
		switch {
		case e >= rfb.EncodingJPEGQuality0 && e <= rfb.EncodingJPEGQuality0+9:
			if s.quality < 0 {
				s.quality = int(e - rfb.EncodingJPEGQuality0)
			}
			continue
		case e >= rfb.EncodingCompressLevel0 && e <= rfb.EncodingCompressLevel0+9:
			if s.compress < 0 {
				s.compress = int(e - rfb.EncodingCompressLevel0)
			}
			continue
		}
		switch e {
		case rfb.EncodingContinuousUpdates:
			s.cuSupported = true
		case rfb.EncodingFence:
			s.fenceSupported = true
		case rfb.EncodingExtendedClipboard:
			s.extClip = true
		case rfb.EncodingCopyRect:
			s.copyRect = true
		case rfb.EncodingDesktopSize:
			s.desktopSize = true
		case rfb.EncodingExtendedDesktopSize:
			s.extDesktopSize = true
		case rfb.EncodingCursor:
			s.cursorEnc = true
		case rfb.EncodingDesktopName:
			s.desktopName = true
		case rfb.EncodingQEMUExtendedKey:
			s.qemuKey = true
		default:
			if _, ok := encoderFactories[e]; ok && !picked {
				s.enc, picked = e, true
			}
		}
	}
	if s.cursorEnc && !hadCursor && s.cursor != nil {
		s.cursorDirty = true
	}
	if s.qemuKey && !hadQEMUKey {
		s.qemuKeyAcked = false
	}
	if s.cuSupported && !hadCU {
		// EndOfContinuousUpdates tells the client the server has them.
		s.cuAnnounce = true
	}
	if !s.cuSupported {
		s.cuEnabled = false
	}
	if s.extClip && !hadExtClip {
		s.extClipAnnounced = false
	}
	for _, enc := range s.encoders {
		if ls, ok := enc.(levelSetter); ok {
			ls.setLevels(s.quality, s.compress)
		}
	}
	s.c.log.Debug("rfbserver: encodings", "encoding", s.enc.String(), "copyrect", s.copyRect, "cursor", s.cursorEnc,
		"quality", s.quality, "compress", s.compress, "continuous", s.cuSupported, "fence", s.fenceSupported)
}

func (s *sender) encoder(e rfb.Encoding) encoder {
	enc, ok := s.encoders[e]
	if !ok {
		enc = encoderFactories[e]()
		if ls, ok := enc.(levelSetter); ok {
			ls.setLevels(s.quality, s.compress)
		}
		s.encoders[e] = enc
	}
	return enc
}

// sendControl writes the messages that need no update request: fence
// answers, continuous-update notices and extended clipboard traffic. They
// are flushed with the next update, or at the end of the step.
func (s *sender) sendControl() error {
	b := s.buf[:0]
	for _, f := range s.fenceReplies {
		b = append(b, msgServerFence, 0, 0, 0)
		b = binary.BigEndian.AppendUint32(b, f.flags&(fenceBlockBefore|fenceBlockAfter|fenceSyncNext))
		b = append(b, byte(len(f.payload)))
		b = append(b, f.payload...)
	}
	s.fenceReplies = s.fenceReplies[:0]
	if s.cuAnnounce || s.cuEndDue {
		b = append(b, msgEndOfCU)
		s.cuAnnounce, s.cuEndDue = false, false
	}
	if s.extClip {
		if !s.extClipAnnounced {
			b = appendExtClip(b, clipOurFlags, binary.BigEndian.AppendUint32(nil, uint32(s.c.s.maxCutText())))
			s.extClipAnnounced = true
		}
		if s.clip.request {
			b = appendExtClip(b, clipRequest|clipText, nil)
		}
		if s.clip.notify {
			var f uint32 = clipNotify
			if s.haveClip {
				f |= clipText
			}
			b = appendExtClip(b, f, nil)
		}
		if s.clip.provide && s.haveClip {
			p, err := clipProvidePayload(s.clipText, s.c.s.maxCutText())
			if err != nil {
				return err
			}
			b = appendExtClip(b, clipProvide|clipText, p)
		}
	}
	s.clip.request, s.clip.notify, s.clip.provide = false, false, false
	s.buf = b
	if len(b) == 0 {
		return nil
	}
	if _, err := s.w.Write(b); err != nil {
		return fmt.Errorf("rfbserver: writing control messages: %w", err)
	}
	return nil
}

// step sends what is due, if the client has asked for it (or has turned
// continuous updates on and is keeping up with them).
func (s *sender) step() error {
	s.absorb()
	if err := s.sendControl(); err != nil {
		return err
	}
	if err := s.stepUpdate(); err != nil {
		return err
	}
	if s.w.Buffered() > 0 {
		if err := s.w.Flush(); err != nil {
			return fmt.Errorf("rfbserver: writing: %w", err)
		}
	}
	return nil
}

// due reports whether an update may be sent now.
func (s *sender) due() bool {
	if s.requested {
		return true
	}
	return s.cuEnabled && (!s.fenceSupported || s.fencesOut < maxFencesOut)
}

func (s *sender) stepUpdate() error {
	if !s.due() {
		return nil
	}
	if len(s.sizeReplies) > 0 || (s.sizeQuery && s.extDesktopSize) {
		return s.sendSizeReplies()
	}
	s.sizeQuery = false

	u := s.v.Take(&s.mirror)
	if err := s.sendEvents(&u); err != nil {
		return err
	}
	if s.extClip && u.ClipboardChanged {
		// Events wrote the legacy message only for other clients.
		if err := s.sendControl(); err != nil {
			return err
		}
	}
	if u.Width != s.fbW || u.Height != s.fbH {
		s.fbW, s.fbH = u.Width, u.Height
		s.fullPending = true
	}
	if u.Resized {
		s.fullPending = true
	}
	if (u.Width != s.clientW || u.Height != s.clientH) && (s.extDesktopSize || s.desktopSize) {
		return s.sendResize(u.Width, u.Height)
	}
	return s.sendPixels(&u)
}

// sendEvents writes the update's bells and clipboard, and records its
// cursor and name changes for the next FramebufferUpdate.
func (s *sender) sendEvents(u *framebuffer.Update) error {
	for i := 0; i < min(u.Bells, maxBellsPerUpdate); i++ {
		if err := s.w.WriteByte(msgBell); err != nil {
			return fmt.Errorf("rfbserver: writing Bell: %w", err)
		}
	}
	if u.ClipboardChanged {
		s.clipText, s.haveClip = u.Clipboard, true
	}
	if u.ClipboardChanged && s.extClip {
		// Provide it unasked where the client takes that, else notify.
		if s.clip.capsSet && s.clip.caps&clipProvide == 0 {
			s.clip.notify = true
		} else {
			s.clip.provide = true
		}
	} else if u.ClipboardChanged {
		text := stringToLatin1(u.Clipboard)
		if len(text) > s.c.s.maxCutText() {
			text = text[:s.c.s.maxCutText()]
		}
		b := []byte{msgServerCutText, 0, 0, 0}
		b = binary.BigEndian.AppendUint32(b, uint32(len(text)))
		if _, err := s.w.Write(b); err != nil {
			return fmt.Errorf("rfbserver: writing ServerCutText: %w", err)
		}
		if _, err := s.w.Write(text); err != nil {
			return fmt.Errorf("rfbserver: writing ServerCutText: %w", err)
		}
	}
	if u.CursorChanged {
		s.cursor = u.Cursor
		if !cursorUsable(s.cursor) {
			s.cursor = nil
		}
		s.cursorDirty = true
	}
	if u.NameChanged && s.c.s.Name == "" && u.Name != "" && u.Name != s.name {
		s.name, s.nameDirty = u.Name, true
	}
	return nil
}

// rectHeader appends a FramebufferUpdate rectangle header.
func rectHeader(b []byte, x, y, w, h int, e rfb.Encoding) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(x))
	b = binary.BigEndian.AppendUint16(b, uint16(y))
	b = binary.BigEndian.AppendUint16(b, uint16(w))
	b = binary.BigEndian.AppendUint16(b, uint16(h))
	return binary.BigEndian.AppendUint32(b, uint32(int32(e)))
}

func updateHeader(b []byte, n int) []byte {
	b = append(b, msgFramebufferUpdate, 0)
	return binary.BigEndian.AppendUint16(b, uint16(n))
}

// appendExtSize appends an ExtendedDesktopSize rectangle with one screen.
func appendExtSize(b []byte, reason, status, w, h int) []byte {
	b = rectHeader(b, reason, status, w, h, rfb.EncodingExtendedDesktopSize)
	b = append(b, 1, 0, 0, 0)
	b = binary.BigEndian.AppendUint32(b, 0) // screen id
	b = binary.BigEndian.AppendUint16(b, 0)
	b = binary.BigEndian.AppendUint16(b, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(w))
	b = binary.BigEndian.AppendUint16(b, uint16(h))
	return binary.BigEndian.AppendUint32(b, 0) // flags
}

// Reasons and statuses of ExtendedDesktopSize rectangles.
const (
	extSizeServer     = 0
	extSizeClient     = 1
	extSizeProhibited = 1
	extSizeForwarded  = 4 // the request went to the console; the size follows
)

// sendSizeReplies answers SetDesktopSize requests (refused, or forwarded to
// a console that resizes itself later) and non-incremental requests of
// clients that use ExtendedDesktopSize, in an update without pixels.
func (s *sender) sendSizeReplies() error {
	n := len(s.sizeReplies)
	query := s.sizeQuery && s.extDesktopSize
	if query {
		n++
	}
	b := updateHeader(s.buf[:0], n)
	for _, st := range s.sizeReplies {
		b = appendExtSize(b, extSizeClient, st, s.clientW, s.clientH)
	}
	if query {
		b = appendExtSize(b, extSizeServer, 0, s.clientW, s.clientH)
	}
	s.buf = b
	s.sizeReplies, s.sizeQuery, s.requested = s.sizeReplies[:0], false, false
	return s.flush(b, "size reply")
}

// sendResize tells the client the new size in an update without pixels;
// the pixels follow on its next request.
func (s *sender) sendResize(w, h int) error {
	b := s.pseudoRects(updateHeader(s.buf[:0], 0))
	if s.extDesktopSize {
		b = appendExtSize(b, extSizeServer, 0, w, h)
	} else {
		b = rectHeader(b, 0, 0, w, h, rfb.EncodingDesktopSize)
	}
	s.setRectCount(b, s.pseudoCount()+1)
	s.clearPseudo()
	s.buf = b
	s.clientW, s.clientH = w, h
	s.fullPending, s.requested = true, false
	s.forced = s.forced[:0]
	return s.flush(b, "resize")
}

// pseudoCount returns the number of pseudo-rectangles due.
func (s *sender) pseudoCount() int {
	n := 0
	if s.cursorDirty && s.cursorEnc {
		n++
	}
	if s.nameDirty && s.desktopName {
		n++
	}
	if s.qemuKey && !s.qemuKeyAcked {
		n++
	}
	return n
}

// pseudoRects appends the due cursor, name and QEMU key pseudo-rectangles.
func (s *sender) pseudoRects(b []byte) []byte {
	if s.cursorDirty && s.cursorEnc {
		if c := s.cursor; c != nil {
			b = rectHeader(b, c.HotX, c.HotY, c.W, c.H, rfb.EncodingCursor)
			b = appendCursor(b, c, s.pw)
		} else {
			b = rectHeader(b, 0, 0, 0, 0, rfb.EncodingCursor)
		}
	}
	if s.nameDirty && s.desktopName {
		b = rectHeader(b, 0, 0, 0, 0, rfb.EncodingDesktopName)
		b = binary.BigEndian.AppendUint32(b, uint32(len(s.name)))
		b = append(b, s.name...)
	}
	if s.qemuKey && !s.qemuKeyAcked {
		b = rectHeader(b, 0, 0, 0, 0, rfb.EncodingQEMUExtendedKey)
	}
	return b
}

func (s *sender) clearPseudo() {
	if s.cursorEnc {
		s.cursorDirty = false
	}
	if s.desktopName {
		s.nameDirty = false
	}
	if s.qemuKey {
		s.qemuKeyAcked = true
	}
}

// setRectCount patches the rectangle count of the update starting b.
func (s *sender) setRectCount(b []byte, n int) {
	binary.BigEndian.PutUint16(b[2:4], uint16(n))
}

// sendPixels sends the taken damage (or the whole screen) as one
// FramebufferUpdate, if there is anything to send.
func (s *sender) sendPixels(u *framebuffer.Update) error {
	bounds := framebuffer.Rect{W: min(s.clientW, s.mirror.W), H: min(s.clientH, s.mirror.H)}
	s.acc.Reset(s.mirror.W, s.mirror.H)
	var moves []framebuffer.Move
	if s.fullPending {
		s.acc.Add(bounds)
	} else {
		// Once one move goes as pixels, later ones may read from it, so
		// they go as pixels too. Areas the client lost rule out CopyRect.
		asPixels := !s.copyRect || len(s.forced) > 0
		for _, m := range u.Moves {
			if asPixels || !m.Src.In(bounds) || !m.Dst().In(bounds) {
				asPixels = true
				s.acc.Add(m.Dst())
				continue
			}
			moves = append(moves, m)
		}
		for _, r := range u.Damage {
			s.acc.Add(r)
		}
		for _, r := range s.forced {
			s.acc.Add(r)
		}
	}
	refine := len(s.lossy) > 0 && !time.Now().Before(s.refineAt)
	if refine {
		for _, r := range s.lossy {
			s.acc.Add(r)
		}
		s.lossy = s.lossy[:0]
	}
	rects := s.acc.Rects(s.rects[:0])
	s.rects = rects[:0] // changedOnly may return another slice
	if s.fullPending || s.sent.W != s.mirror.W || s.sent.H != s.mirror.H {
		s.sent.Resize(s.mirror.W, s.mirror.H)
		s.sentValid = false
	}
	if s.sentValid {
		for _, m := range moves {
			s.sent.Move(m.Src, m.DstX, m.DstY)
		}
		// Areas the client asked for, and refinements, go as they are.
		if len(s.forced) == 0 && !refine {
			rects = s.changedOnly(rects)
		}
	}
	if len(rects) > maxUpdateRects {
		var all framebuffer.Rect
		for _, r := range rects {
			all = all.Union(r)
		}
		rects = append(rects[:0], all)
	}
	// Clip to what the client knows and split into bands.
	bands := s.bands(rects, bounds)
	for _, r := range bands {
		s.sent.CopyFrom(&s.mirror, r)
	}
	if s.fullPending {
		s.sentValid = true
	}
	count := len(moves) + len(bands) + s.pseudoCount()
	if count == 0 {
		return nil
	}

	b := updateHeader(s.buf[:0], count)
	for _, m := range moves {
		d := m.Dst()
		b = rectHeader(b, d.X, d.Y, d.W, d.H, rfb.EncodingCopyRect)
		b = binary.BigEndian.AppendUint16(b, uint16(m.Src.X))
		b = binary.BigEndian.AppendUint16(b, uint16(m.Src.Y))
	}
	enc := s.encoder(s.enc)
	le, _ := enc.(lossyEncoder)
	if le != nil {
		le.setLossless(refine)
	}
	sentLossy := false
	for _, r := range bands {
		b = rectHeader(b, r.X, r.Y, r.W, r.H, s.enc)
		var err error
		b, err = enc.encode(b, &s.mirror, r, s.pw)
		if err != nil {
			return err
		}
		if le != nil && le.lastLossy() {
			s.addLossy(r)
			sentLossy = true
		}
		if len(b) >= 64<<10 {
			if _, err := s.w.Write(b); err != nil {
				return fmt.Errorf("rfbserver: writing update: %w", err)
			}
			s.buf = b
			b = b[:0]
		}
	}
	b = s.pseudoRects(b)
	s.clearPseudo()
	s.buf = b
	s.requested, s.fullPending = false, false
	s.forced = s.forced[:0]
	if sentLossy {
		s.refineAt = time.Now().Add(refineDelay)
		s.refineT.Reset(refineDelay)
	}
	return s.flush(b, "update")
}

// diffGap is how many unchanged rows may separate changed ones inside one
// rectangle before it is split: a rectangle header costs about as much as a
// few rows of compressed unchanged pixels.
const diffGap = 8

// changedOnly replaces each rectangle with the runs of rows where mirror
// and sent differ, each trimmed to the columns that differ. Rectangles
// without a change disappear. The result is valid until the next call.
func (s *sender) changedOnly(rects []framebuffer.Rect) []framebuffer.Rect {
	out := s.diffBuf[:0]
	all := s.mirror.Bounds()
	for _, r := range rects {
		r = r.Intersect(all)
		if r.Empty() {
			continue
		}
		start, last := -1, -1 // first and last changed row of the run
		x0, x1 := 0, 0
		flush := func() {
			if start >= 0 {
				out = append(out, framebuffer.Rect{X: x0, Y: start, W: x1 - x0, H: last - start + 1})
				start = -1
			}
		}
		for y := r.Y; y < r.Y+r.H; y++ {
			a, b := s.mirror.Row(r.X, y, r.W), s.sent.Row(r.X, y, r.W)
			if bytes.Equal(a, b) {
				if start >= 0 && y-last >= diffGap {
					flush()
				}
				continue
			}
			l := 0
			for string(a[4*l:4*l+4]) == string(b[4*l:4*l+4]) {
				l++
			}
			h := r.W - 1
			for h > l && string(a[4*h:4*h+4]) == string(b[4*h:4*h+4]) {
				h--
			}
			if start < 0 {
				start, x0, x1 = y, r.X+l, r.X+h+1
			} else {
				x0, x1 = min(x0, r.X+l), max(x1, r.X+h+1)
			}
			last = y
		}
		flush()
	}
	s.diffBuf = out
	return out
}

// addLossy remembers that r went out lossy.
func (s *sender) addLossy(r framebuffer.Rect) {
	if len(s.lossy) < maxLossyRects {
		s.lossy = append(s.lossy, r)
		return
	}
	u := r
	for _, l := range s.lossy {
		u = u.Union(l)
	}
	s.lossy = append(s.lossy[:0], u)
}

// bands clips rects to bounds and splits them into bands of at most
// maxBandPixels, in a scratch slice valid until the next call.
func (s *sender) bands(rects []framebuffer.Rect, bounds framebuffer.Rect) []framebuffer.Rect {
	out := s.bandBuf[:0]
	defer func() { s.bandBuf = out[:0] }()
	maxW, maxPixels := rectLimits(s.enc)
	for _, r := range rects {
		r = r.Intersect(bounds)
		if r.Empty() {
			continue
		}
		for x := r.X; x < r.X+r.W; x += maxW {
			w := min(maxW, r.X+r.W-x)
			bh := bandHeight(w)
			if maxPixels < maxBandPixels {
				bh = max(1, maxPixels/w)
			}
			for y := r.Y; y < r.Y+r.H; y += bh {
				out = append(out, framebuffer.Rect{X: x, Y: y, W: w, H: min(bh, r.Y+r.H-y)})
			}
		}
	}
	return out
}

// bandHeight returns the rows per band for rectangles w pixels wide: a
// multiple of ZRLE's tile size, at least one tile.
func bandHeight(w int) int {
	return max(zrleTile, maxBandPixels/max(w, 1)/zrleTile*zrleTile)
}

// flush writes b and flushes the connection. In continuous mode with
// fences, a fence request follows: its answer tells the sender that the
// client has processed the update.
func (s *sender) flush(b []byte, what string) error {
	if s.cuEnabled && s.fenceSupported {
		s.fenceSeq++
		b = append(b, msgServerFence, 0, 0, 0)
		b = binary.BigEndian.AppendUint32(b, fenceRequest|fenceBlockBefore)
		b = append(b, 4)
		b = binary.BigEndian.AppendUint32(b, s.fenceSeq)
		s.fencesOut++
	}
	if _, err := s.w.Write(b); err != nil {
		return fmt.Errorf("rfbserver: writing %s: %w", what, err)
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("rfbserver: writing %s: %w", what, err)
	}
	return nil
}
