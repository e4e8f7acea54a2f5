package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"

	"kvmgate/encoders/autoswitch"
	"kvmgate/encoders/pacing"
	"kvmgate/encoders/ratectl"
	"kvmgate/encoders/tiles"
	"kvmgate/framebuffer"
	"kvmgate/input"
	"kvmgate/session"
)

// Subprotocol is the WebSocket subprotocol of the browser wire protocol.
const Subprotocol = "kvmgate.v1"

// Limits and periods of a viewer connection.
const (
	// MaxClientMessage is the largest message a browser may send.
	MaxClientMessage = 1 << 20
	// MaxInflight is how many frames may await their ack.
	MaxInflight = 2

	writeWait    = 10 * time.Second
	pongWait     = 75 * time.Second
	pingPeriod   = 25 * time.Second
	readyWait    = 10 * time.Second
	refineDelay  = 300 * time.Millisecond
	binaryChunk  = 256 << 10
	maxClipboard = 1 << 20
	maxKeyField  = 64
	maxWheel     = 20
)

// WebSocket close codes used by the server.
const (
	closeNormal     = websocket.CloseNormalClosure
	closeGoingAway  = websocket.CloseGoingAway
	closeProtocol   = websocket.CloseProtocolError
	closePolicy     = websocket.ClosePolicyViolation
	closeTooBig     = websocket.CloseMessageTooBig
	closeInternal   = websocket.CloseInternalServerErr
	closeReasonSize = 120
)

var upgrader = websocket.Upgrader{
	ReadBufferSize:  4 << 10,
	WriteBufferSize: 64 << 10,
	Subprotocols:    []string{Subprotocol},
	// Origins are checked before Upgrade so that refusals get a reason.
	CheckOrigin: func(*http.Request) bool { return true },
}

func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	log := s.log.With("remote", r.RemoteAddr)
	if !websocket.IsWebSocketUpgrade(r) {
		httpError(w, http.StatusBadRequest, "a WebSocket upgrade is required")
		return
	}
	if !s.originAllowed(r) {
		s.metrics.wsRejected.Add(1)
		log.Warn("websocket refused", "reason", "origin", "origin", r.Header.Get("Origin"))
		httpError(w, http.StatusForbidden, "origin not allowed")
		return
	}
	target, err := s.resolve(r)
	if err != nil {
		s.metrics.wsRejected.Add(1)
		log.Warn("websocket refused", "reason", err.Error())
		httpError(w, http.StatusForbidden, err.Error())
		return
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		log.Warn("websocket upgrade failed", "err", err)
		return
	}
	if conn.Subprotocol() != Subprotocol {
		closeConn(conn, closeProtocol, "subprotocol "+Subprotocol+" required")
		return
	}
	if !s.track() {
		closeConn(conn, closeGoingAway, "server shutting down")
		return
	}
	defer s.wg.Done()
	v, err := s.hub.Join(target)
	if err != nil {
		writeControlJSON(conn, errorMsg{T: "error", Message: err.Error(), Fatal: true})
		closeConn(conn, closeInternal, err.Error())
		return
	}
	s.metrics.viewersTotal.Add(1)
	vc := &viewerConn{
		s: s, conn: conn, v: v,
		log:        log.With("viewer", v.ID(), "session", v.Session().ID()),
		ackCh:      make(chan struct{}, 1),
		fatal:      make(chan closeReason, 1),
		notes:      make(chan string, 8),
		modes:      make(chan string, 4),
		readerDone: make(chan struct{}),
		enc:        tiles.NewEncoder(),
		rc:         ratectl.New(),
		transports: make(chan transportRequest, 2),
		rtcEvents:  make(chan rtcEvent, rtcEventQueue),
		want:       transportRequest{Transport: r.URL.Query().Get("transport"), Codec: r.URL.Query().Get("codec")},
	}
	vc.run()
}

// track registers a viewer goroutine unless the server is closing.
func (s *Server) track() bool {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if s.ctx.Err() != nil {
		return false
	}
	s.wg.Add(1)
	return true
}

func closeConn(conn *websocket.Conn, code int, reason string) {
	if len(reason) > closeReasonSize {
		reason = reason[:closeReasonSize]
	}
	_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
	_ = conn.Close()
}

func writeControlJSON(conn *websocket.Conn, v any) {
	_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
	_ = conn.WriteJSON(v)
}

// Messages the server sends.
type (
	helloMsg struct {
		T        string      `json:"t"`
		V        int         `json:"v"`
		Width    int         `json:"width"`
		Height   int         `json:"height"`
		Name     string      `json:"name"`
		Protocol string      `json:"protocol"`
		Actions  []string    `json:"actions"`
		Combos   []comboJSON `json:"combos"`
		Layouts  []string    `json:"layouts"`
		Viewer   string      `json:"viewer"`
		Ticket   string      `json:"ticket,omitempty"`
		// Pointer is the backend's pointer kind ("absolute" or
		// "relative"; "" when unknown); "caps" messages tell changes.
		Pointer string `json:"pointer,omitempty"`
		// Resize reports whether the console can resize its display on
		// request now (server/resize.go).
		Resize bool `json:"resize"`
	}
	comboJSON struct {
		Name  string `json:"name"`
		Label string `json:"label"`
	}
	statusMsg struct {
		T       string `json:"t"`
		State   string `json:"state"`
		Message string `json:"message,omitempty"`
	}
	errorMsg struct {
		T       string `json:"t"`
		Message string `json:"message"`
		Fatal   bool   `json:"fatal"`
	}
	statsMsg struct {
		T         string  `json:"t"`
		RTT       float64 `json:"rtt"`
		Kbps      float64 `json:"kbps"`
		FPS       float64 `json:"fps"`
		Quality   int     `json:"quality"`
		Transport string  `json:"transport"`
		Codec     string  `json:"codec"`
		Bitrate   int     `json:"bitrate,omitempty"`
	}
	textMsg struct {
		T    string `json:"t"`
		Name string `json:"name,omitempty"`
		Text string `json:"text,omitempty"`
	}
	ticketMsg struct {
		T      string `json:"t"`
		Ticket string `json:"ticket"`
	}
)

// clientMsg is any message a browser sends; T selects the fields that
// matter. Coordinates are numbers that may carry fractions.
type clientMsg struct {
	T      string  `json:"t"`
	Code   string  `json:"code"`
	Key    string  `json:"key"`
	Down   bool    `json:"down"`
	X      float64 `json:"x"`
	Y      float64 `json:"y"`
	B      int     `json:"b"`
	DX     float64 `json:"dx"`
	DY     float64 `json:"dy"`
	F      uint32  `json:"f"`
	Name   string  `json:"name"`
	Text   string  `json:"text"`
	Layout string  `json:"layout"`
	Mode   string  `json:"mode"`
	// Transport and Codec belong to "transport" (server/video.go).
	Transport string `json:"transport"`
	Codec     string `json:"codec"`
	// SDP and Candidate belong to "rtc-answer" and "rtc-candidate"
	// (server/webrtc.go).
	SDP       string                   `json:"sdp"`
	Candidate *webrtc.ICECandidateInit `json:"candidate"`
}

type closeReason struct {
	code int
	msg  string
}

type inflightFrame struct {
	n      uint32
	sentAt time.Time
	bytes  int
}

// viewerConn is one browser viewer. Its sender goroutine (run) owns every
// write to the socket and the encoder state; its reader goroutine (read)
// owns the reads and talks to the sender only through the channels and the
// atomic below.
type viewerConn struct {
	s    *Server
	conn *websocket.Conn
	v    *session.Viewer
	log  *slog.Logger

	// Set by the reader, consumed by the sender.
	acked      atomic.Uint32 // highest frame number acknowledged
	ackCh      chan struct{}
	fatal      chan closeReason
	notes      chan string
	modes      chan string
	transports chan transportRequest
	rtcEvents  chan rtcEvent
	readerDone chan struct{}

	// Owned by the sender.
	enc         *tiles.Encoder
	rc          *ratectl.Controller
	mirror      framebuffer.Canvas
	buf         []byte
	frame       uint32
	inflight    []inflightFrame
	lastFrameAt time.Time
	winStart    time.Time
	winBytes    int
	winFrames   int
	lastStatus  session.Status
	want        transportRequest // the transport asked for in the URL
	video       *videoSender     // nil: tiles (server/video.go)
	refiner     pacing.Refiner   // paced refinement (server/pacing.go)
	lastRate    *videoRate       // the last WebSocket video's controller
	auto        bool             // the transport follows activity (server/auto.go)
	autoCodec   string           // the codec auto switches to
	activity    autoswitch.Activity
}

func (vc *viewerConn) run() {
	readerStarted := false
	defer func() {
		_ = vc.conn.Close()
		if readerStarted {
			<-vc.readerDone
		}
		vc.stopVideo()
		vc.v.Leave()
		vc.log.Info("viewer left", "frames", vc.frame)
	}()
	sess := vc.v.Session()
	wctx, cancel := context.WithTimeout(vc.s.ctx, readyWait)
	if st := sess.WaitReady(wctx); st.State == session.StateConnected {
		// Connected backends publish their first picture right away; wait
		// for it so that hello carries the screen size.
		for w, _ := sess.Framebuffer().Size(); w == 0 && wctx.Err() == nil; w, _ = sess.Framebuffer().Size() {
			select {
			case <-vc.v.Changed():
			case <-wctx.Done():
			}
		}
	}
	cancel()
	if err := vc.sendHello(); err != nil {
		return
	}
	if err := vc.sendStatus(); err != nil {
		return
	}
	if err := vc.setTransport(vc.want); err != nil {
		return
	}
	vc.log.Info("viewer joined", "target", sess.Target())
	// Unblock a write stuck on a dead browser soon after shutdown begins.
	stop := context.AfterFunc(vc.s.ctx, func() {
		time.Sleep(200 * time.Millisecond)
		_ = vc.conn.NetConn().SetWriteDeadline(time.Now())
	})
	defer stop()
	go vc.read()
	readerStarted = true
	vc.loop()
}

func (vc *viewerConn) ticket() string {
	t, _ := vc.s.tickets.Issue(vc.v.Session().Target())
	return t
}

func (vc *viewerConn) sendHello() error {
	sess := vc.v.Session()
	info := sess.BackendInfo()
	w, h := sess.Framebuffer().Size()
	name := sess.Framebuffer().Name()
	if name == "" {
		name = info.Name
	}
	combos := []comboJSON{}
	for _, c := range input.Combos() {
		combos = append(combos, comboJSON{Name: c.Name, Label: c.Label})
	}
	actions := append([]string{}, info.Actions...)
	pointer, resize := vc.helloCaps(info)
	return vc.writeJSON(helloMsg{
		T: "hello", V: 1, Width: w, Height: h, Name: name, Protocol: info.Protocol,
		Actions: actions, Combos: combos, Layouts: input.Layouts(), Viewer: vc.v.ID(),
		Ticket: vc.ticket(), Pointer: pointer, Resize: resize,
	})
}

// sendStatus reports the session state; it reports whether the session
// has ended through errEnded.
func (vc *viewerConn) sendStatus() error {
	st := vc.v.Session().Status()
	if st.State == session.StateConnecting || st == vc.lastStatus {
		return nil
	}
	vc.lastStatus = st
	if err := vc.writeJSON(statusMsg{T: "status", State: string(st.State), Message: st.Message}); err != nil {
		return err
	}
	if st.State == session.StateEnded {
		return errEnded
	}
	return nil
}

var errEnded = errors.New("session ended")

func (vc *viewerConn) writeJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("server: encode message: %w", err)
	}
	return vc.write(websocket.TextMessage, b)
}

func (vc *viewerConn) write(typ int, b []byte) error {
	_ = vc.conn.SetWriteDeadline(time.Now().Add(writeWait))
	if err := vc.conn.WriteMessage(typ, b); err != nil {
		vc.log.Info("viewer write failed", "err", err)
		return err
	}
	vc.s.metrics.bytesSent.Add(uint64(len(b)))
	vc.winBytes += len(b)
	return nil
}

func (vc *viewerConn) loop() {
	pingT := time.NewTicker(pingPeriod)
	defer pingT.Stop()
	statsT := time.NewTicker(time.Second)
	defer statsT.Stop()
	ticketT := time.NewTicker(max(vc.s.tickets.TTL()/2, time.Second))
	defer ticketT.Stop()
	pace := time.NewTimer(time.Hour)
	defer pace.Stop()
	vc.winStart = time.Now()
	dirty := true // the first Take is a full frame
	for {
		// Send what may be sent now; otherwise work out when to wake.
		wake := time.Duration(-1)
		// Slow start holds tiles frames only; video has its own window.
		open := len(vc.inflight) < vc.window() && (vc.video != nil || !vc.slowStart())
		if vs := vc.video; vs != nil && vs.rtc == nil {
			// The controller learns of a full window, and moves the target
			// even while no frame can leave.
			now := time.Now()
			vs.rate.blocked(now, dirty && !open)
			vs.adapt(vc.rc, now)
		}
		if open && vc.auto {
			switched, err := vc.autoSwitch(time.Now(), dirty)
			if err != nil {
				return
			}
			dirty = dirty || switched
		}
		if open {
			now := time.Now()
			switch {
			case dirty:
				if at := vc.lastFrameAt.Add(vc.frameGap()); now.Before(at) {
					wake = at.Sub(now)
				} else {
					if err := vc.sendNext(false); err != nil {
						return
					}
					dirty = false
				}
			case vc.refining():
				if at := vc.lastFrameAt.Add(vc.rc.Interval()); now.Before(at) {
					wake = at.Sub(now)
				} else if err := vc.sendNext(true); err != nil {
					return
				}
			case len(vc.inflight) == 0 && vc.needsRefine():
				if at := vc.lastFrameAt.Add(refineDelay); now.Before(at) {
					wake = at.Sub(now)
				} else if err := vc.sendNext(true); err != nil {
					return
				}
			case vc.auto && vc.video != nil:
				// Wake when the screen has been still long enough for tiles.
				wake = max(vc.activity.StillAt().Sub(now), 0)
			}
		}
		var paceC <-chan time.Time
		if wake >= 0 {
			pace.Reset(wake)
			paceC = pace.C
		}
		var err error
		select {
		case <-vc.s.ctx.Done():
			vc.sendFatal(closeGoingAway, "server shutting down")
			return
		case <-vc.readerDone:
			// The reader stops after a protocol error too; report it.
			select {
			case cr := <-vc.fatal:
				vc.protocolError(cr)
			default:
			}
			return
		case cr := <-vc.fatal:
			vc.protocolError(cr)
			return
		case <-vc.v.Changed():
			dirty = true
		case <-vc.ackCh:
			vc.processAcks()
		case <-vc.v.StatusChanged():
			if err = vc.sendStatus(); errors.Is(err, errEnded) {
				closeConn(vc.conn, closeNormal, "session ended")
				return
			}
		case e := <-vc.v.Errors():
			err = vc.writeJSON(errorMsg{T: "error", Message: e.Error()})
		case msg := <-vc.notes:
			err = vc.writeJSON(errorMsg{T: "error", Message: msg})
		case mode := <-vc.modes:
			vc.rc.SetMode(mode)
		case req := <-vc.transports:
			err = vc.setTransport(req)
		case ev := <-vc.rtcEvents:
			err = vc.handleRTCEvent(ev)
		case <-statsT.C:
			err = vc.sendStats()
		case <-ticketT.C:
			err = vc.writeJSON(ticketMsg{T: "ticket", Ticket: vc.ticket()})
		case <-pingT.C:
			err = vc.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait))
		case <-paceC:
		}
		if wake >= 0 {
			pace.Stop()
		}
		if err != nil {
			return
		}
	}
}

func (vc *viewerConn) sendFatal(code int, msg string) {
	writeControlJSON(vc.conn, errorMsg{T: "error", Message: msg, Fatal: true})
	closeConn(vc.conn, code, msg)
}

func (vc *viewerConn) protocolError(cr closeReason) {
	vc.s.metrics.protocolError.Add(1)
	vc.log.Warn("viewer protocol error", "err", cr.msg)
	vc.sendProtocolError(cr.code, cr.msg)
}

// sendProtocolError reports a fatal protocol error, then waits briefly for
// the browser's close so that the reason is not lost to a TCP reset.
func (vc *viewerConn) sendProtocolError(code int, msg string) {
	writeControlJSON(vc.conn, errorMsg{T: "error", Message: msg, Fatal: true})
	reason := msg
	if len(reason) > closeReasonSize {
		reason = reason[:closeReasonSize]
	}
	_ = vc.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
	<-vc.readerDone // the reader has stopped; this goroutine may read now
	_ = vc.conn.SetReadDeadline(time.Now().Add(time.Second))
	for {
		if _, _, err := vc.conn.NextReader(); err != nil {
			break
		}
	}
	_ = vc.conn.Close()
}

func (vc *viewerConn) sendStats() error {
	now := time.Now()
	secs := now.Sub(vc.winStart).Seconds()
	if secs <= 0 {
		return nil
	}
	m := statsMsg{
		T: "stats", RTT: math.Round(float64(vc.rc.SRTT().Microseconds())/100) / 10,
		Kbps:    math.Round(float64(vc.winBytes) * 8 / 1000 / secs),
		FPS:     math.Round(float64(vc.winFrames)/secs*10) / 10,
		Quality: vc.rc.QualityNumber(),
	}
	vc.videoStats(&m)
	vc.winStart, vc.winBytes, vc.winFrames = now, 0, 0
	return vc.writeJSON(m)
}

func (vc *viewerConn) processAcks() {
	a := vc.acked.Load()
	now := time.Now()
	for len(vc.inflight) > 0 && vc.inflight[0].n <= a {
		f := vc.inflight[0]
		vc.rc.Acked(f.bytes, now.Sub(f.sentAt))
		vc.inflight = vc.inflight[1:]
		if vs := vc.video; vs != nil && vs.rtc == nil {
			var next time.Time
			if len(vc.inflight) > 0 {
				next = vc.inflight[0].sentAt
			}
			vs.rate.acked(now, f.bytes, now.Sub(f.sentAt), next)
		}
	}
}

// window returns how many frames may await their ack: MaxInflight, or on
// WebSocket video what the bitrate controller allows.
func (vc *viewerConn) window() int {
	if vs := vc.video; vs != nil && vs.rtc == nil {
		return vs.rate.window()
	}
	return MaxInflight
}

// frameGap returns the least time between frames: on video the frame
// rate cap (the bitrate controller sizes the frames), on tiles the rate
// controller's interval.
func (vc *viewerConn) frameGap() time.Duration {
	if vc.video != nil {
		return videoMinInterval
	}
	return vc.rc.Interval()
}

// sendFrame takes what changed and sends it as one frame: control messages
// first, then records ending with a frame end. With refine set it also
// resends lossy areas losslessly.
func (vc *viewerConn) sendFrame(refine bool) error {
	u := vc.v.Take(&vc.mirror)
	if vc.auto {
		vc.activity.Note(time.Now(), &u)
	}
	if u.Empty() && !refine {
		return nil
	}
	if err := vc.sendUpdateMessages(&u); err != nil {
		return err
	}
	buf := vc.buf[:0]
	sent := 0
	records := 0
	var rects []framebuffer.Rect
	if u.Resized {
		buf = tiles.AppendResize(buf, u.Width, u.Height)
		records++
		vc.enc.ForgetLossy()
		rects = []framebuffer.Rect{{W: u.Width, H: u.Height}}
	} else {
		for _, m := range u.Moves {
			vc.enc.Copy(m) // sent in the next batch (Flush below)
			records++
		}
		rects = u.Damage
	}
	if u.CursorChanged {
		buf = tiles.AppendCursor(buf, u.Cursor)
		records++
	}
	q := vc.rc.Quality()
	if vc.auto && !q.Lossy && vc.activity.Suspect() {
		// Motion may be starting (server/auto.go): until it counts as
		// sustained and video takes over, photo-like areas go as JPEG.
		q = autoswitch.OnsetQuality
	}
	// Areas sent lossily are refined when the screen went quiet, or with
	// the next frame once lossy encoding is off.
	refine = vc.paceRefine(refine, rects)
	lossyFrom := len(rects)
	if refine || !q.Lossy {
		rects = vc.enc.LossyRects(rects)
	}
	var err error
	for i, r := range rects {
		if i == lossyFrom {
			q = tiles.Quality{}
		}
		if buf, err = vc.enc.Encode(buf, &vc.mirror, r, q); err != nil {
			vc.log.Error("encode failed", "rect", r.String(), "err", err)
			return err
		}
		records++
		if len(buf) >= binaryChunk {
			if err := vc.write(websocket.BinaryMessage, buf); err != nil {
				return err
			}
			sent += len(buf)
			buf = buf[:0]
		}
	}
	buf, n, err := vc.appendRefinement(buf, sent)
	if err != nil {
		return err
	}
	if buf, err = vc.enc.Flush(buf); err != nil {
		return err
	}
	records += n
	if records == 0 {
		vc.buf = buf
		return nil
	}
	return vc.endFrame(buf, sent)
}

// sendUpdateMessages sends the control messages an update carries (name,
// clipboard, bells, cursor position); they go before the frame's records.
func (vc *viewerConn) sendUpdateMessages(u *framebuffer.Update) error {
	if err := vc.sendCursorPos(u); err != nil {
		return err
	}
	if u.NameChanged {
		if err := vc.writeJSON(textMsg{T: "name", Name: u.Name}); err != nil {
			return err
		}
	}
	if u.ClipboardChanged {
		if err := vc.writeJSON(textMsg{T: "clipboard", Text: truncateUTF8(u.Clipboard, maxClipboard)}); err != nil {
			return err
		}
	}
	for range min(u.Bells, 3) {
		if err := vc.writeJSON(textMsg{T: "bell"}); err != nil {
			return err
		}
	}
	return vc.sendCaps(u)
}

// endFrame appends a frame end to buf, sends it and records the frame as
// in flight; sent counts the frame's bytes already written.
func (vc *viewerConn) endFrame(buf []byte, sent int) error {
	vc.frame++
	buf = tiles.AppendFrameEnd(buf, vc.frame)
	if err := vc.write(websocket.BinaryMessage, buf); err != nil {
		return err
	}
	sent += len(buf)
	now := time.Now()
	vc.inflight = append(vc.inflight, inflightFrame{n: vc.frame, sentAt: now, bytes: sent})
	vc.rc.Sent(sent)
	vc.lastFrameAt = now
	vc.winFrames++
	vc.s.metrics.framesSent.Add(1)
	vc.buf = buf[:0]
	return nil
}

func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// read owns the socket's reads: it validates each browser message and
// turns it into input for the session, acks for the sender, or a fatal
// protocol error.
func (vc *viewerConn) read() {
	defer close(vc.readerDone)
	conn := vc.conn
	_ = conn.SetReadDeadline(time.Now().Add(pongWait))
	conn.SetPongHandler(func(string) error {
		return conn.SetReadDeadline(time.Now().Add(pongWait))
	})
	var buttons input.Buttons
	for {
		typ, rd, err := conn.NextReader()
		if err != nil {
			return
		}
		_ = conn.SetReadDeadline(time.Now().Add(pongWait))
		if typ != websocket.TextMessage {
			vc.fail(closePolicy, "binary messages are not accepted from the browser")
			return
		}
		data, err := io.ReadAll(io.LimitReader(rd, MaxClientMessage+1))
		if err != nil {
			return
		}
		if len(data) > MaxClientMessage {
			vc.fail(closeTooBig, "message larger than 1 MiB")
			return
		}
		if err := vc.handle(data, &buttons); err != nil {
			vc.fail(closePolicy, err.Error())
			return
		}
	}
}

func (vc *viewerConn) fail(code int, msg string) {
	select {
	case vc.fatal <- closeReason{code: code, msg: msg}:
	default:
	}
}

func (vc *viewerConn) note(msg string) {
	select {
	case vc.notes <- msg:
	default:
	}
}

// clampCoord rounds a coordinate and clamps it to [0, limit-1].
func clampCoord(f float64, limit int) int {
	if math.IsNaN(f) || f < 0 || limit <= 0 {
		return 0
	}
	return min(int(math.Round(f)), limit-1)
}

func clampWheel(f float64) int {
	if math.IsNaN(f) {
		return 0
	}
	return max(-maxWheel, min(maxWheel, int(math.Round(f))))
}

// handle applies one browser message. Its error is a protocol error that
// ends the connection; problems with the input itself become notes.
func (vc *viewerConn) handle(data []byte, buttons *input.Buttons) error {
	var m clientMsg
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("malformed JSON message: %v", err)
	}
	v := vc.v
	var err error
	switch m.T {
	case "ack":
		for {
			old := vc.acked.Load()
			if m.F <= old || vc.acked.CompareAndSwap(old, m.F) {
				break
			}
		}
		select {
		case vc.ackCh <- struct{}{}:
		default:
		}
	case "key":
		if len(m.Code) > maxKeyField || len(m.Key) > maxKeyField {
			return errors.New("key code or key name too long")
		}
		if m.Code == "" && m.Key == "" {
			vc.note("key message without code or key ignored")
			return nil
		}
		err = v.Key(input.KeyEvent{Code: m.Code, Key: m.Key, Down: m.Down})
	case "ptr", "wheel":
		w, h := v.Session().Framebuffer().Size()
		ev := input.PointerEvent{X: clampCoord(m.X, w), Y: clampCoord(m.Y, h)}
		if m.T == "ptr" {
			*buttons = input.Buttons(m.B) & (input.ButtonLeft | input.ButtonMiddle | input.ButtonRight | input.ButtonBack)
		} else {
			ev.WheelX, ev.WheelY = clampWheel(m.DX), clampWheel(m.DY)
		}
		ev.Buttons = *buttons
		err = v.Pointer(ev)
	case "refresh":
		err = v.Refresh()
	case "combo":
		err = v.Combo(m.Name)
	case "type":
		err = v.Type(m.Layout, m.Text)
	case "clipboard":
		err = v.Clipboard(m.Text)
	case "action":
		err = v.Action(input.Action(m.Name))
	case "resize":
		return vc.handleResize(data)
	case "transport":
		vc.requestTransport(m)
	case "rtc-answer":
		if len(m.SDP) > MaxClientMessage/2 {
			return errors.New("rtc-answer too long")
		}
		vc.rtcEvent(rtcEvent{kind: rtcRemoteAnswer, sdp: m.SDP})
	case "rtc-candidate":
		vc.rtcEvent(rtcEvent{kind: rtcRemoteCandidate, candidate: m.Candidate})
	case "quality":
		switch m.Mode {
		case ModeAuto, ModeLossless, ModeLow:
			select {
			case vc.modes <- m.Mode:
			default:
			}
		default:
			vc.note(fmt.Sprintf("unknown quality mode %q", m.Mode))
		}
	default:
		return fmt.Errorf("unknown message type %q", m.T)
	}
	if err != nil {
		vc.note(err.Error())
	}
	return nil
}
