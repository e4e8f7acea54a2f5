// Package session is the hub between backends and viewers: one backend
// connection and one shared framebuffer per console target, however many
// viewers watch it.
//
// A Session owns its backend.Console. Its run goroutine opens the console,
// lets Console.Run feed the framebuffer, and reconnects with backoff when the
// connection drops; its input goroutine forwards viewers' keys and pointer
// events so that a slow backend never blocks a viewer's reader. A session
// with no viewers ends after the hub's idle timeout. Viewers take what
// changed from the framebuffer at their own pace (framebuffer.Viewer).
package session

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"kvmgate/backend"
	"kvmgate/framebuffer"
	"kvmgate/input"
)

// Options configures a Hub. The zero value is usable.
type Options struct {
	// Open connects to a target. Nil means backend.Open with the secrets
	// Secrets returns for the target.
	Open func(ctx context.Context, target string) (backend.Console, error)
	// Secrets returns the credentials for a target; nil means none. It is
	// called before every connection attempt, so rotated passwords apply.
	Secrets func(target string) (backend.Secrets, error)
	// IdleTimeout is how long a session lives without viewers (default
	// DefaultIdleTimeout).
	IdleTimeout time.Duration
	// ConnectTimeout bounds one connection attempt (default 15 s).
	ConnectTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between reconnection
	// attempts (defaults 250 ms and 10 s); the wait doubles per failure.
	MinBackoff, MaxBackoff time.Duration
	// Logger receives one line per session event; nil means slog.Default().
	Logger *slog.Logger
}

// DefaultIdleTimeout is the default time a session outlives its last viewer.
const DefaultIdleTimeout = 30 * time.Second

// InputQueue is how many input operations a session buffers for its
// backend before it refuses more (ErrInputBusy).
const InputQueue = 512

// MaxTypeText bounds the text one Type call may type.
const MaxTypeText = 4096

// State is a session's backend connection state as viewers see it.
type State string

// States of a session's backend connection.
const (
	StateConnecting   State = "connecting"
	StateConnected    State = "connected"
	StateReconnecting State = "reconnecting"
	StateEnded        State = "ended"
)

// Bounds of a remote resize request (Viewer.Resize); requests outside them
// are clamped.
const (
	MinResizeWidth  = 320
	MinResizeHeight = 200
	MaxResizeSize   = 8192
)

// ResizeInterval is the least time between two resize requests a session
// sends its console: a burst of requests (a window being dragged) becomes
// the first, then the latest one every ResizeInterval.
const ResizeInterval = 400 * time.Millisecond

// resizeTimeout bounds the wait for a console's answer to a resize.
const resizeTimeout = 10 * time.Second

// Status is a session's state with a message for people.
type Status struct {
	State   State
	Message string
}

// Errors returned by the hub and by viewers' input methods.
var (
	ErrHubClosed = errors.New("session: hub closed")
	ErrEnded     = errors.New("session: ended")
	ErrInputBusy = errors.New("session: backend is not keeping up with input; event dropped")
	ErrNoBackend = errors.New("session: backend not connected; input dropped")
)

// Hub keeps one Session per target. It is safe for concurrent use.
type Hub struct {
	opts   Options
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // counts every session goroutine

	mu sync.Mutex
	// mu guards the following. Lock order: Hub.mu before Session.mu.
	byTarget map[string]*Session
	byID     map[string]*Session
	closed   bool
}

// NewHub returns a hub with no sessions.
func NewHub(opts Options) *Hub {
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 15 * time.Second
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 250 * time.Millisecond
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(10*time.Second, opts.MinBackoff)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	if opts.Open == nil {
		secrets := opts.Secrets
		opts.Open = func(ctx context.Context, target string) (backend.Console, error) {
			var s backend.Secrets
			if secrets != nil {
				var err error
				if s, err = secrets(target); err != nil {
					return nil, err
				}
			}
			return backend.Open(ctx, target, s)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Hub{
		opts: opts, log: log, ctx: ctx, cancel: cancel,
		byTarget: map[string]*Session{},
		byID:     map[string]*Session{},
	}
}

// Close ends every session and waits for their goroutines to stop.
func (h *Hub) Close() {
	h.mu.Lock()
	h.closed = true
	sessions := make([]*Session, 0, len(h.byID))
	for _, s := range h.byID {
		sessions = append(sessions, s)
	}
	h.mu.Unlock()
	for _, s := range sessions {
		s.End("server shutting down")
	}
	h.cancel()
	h.wg.Wait()
}

// Session returns the live session for target, starting one (and its
// connection attempts) if there is none.
func (h *Hub) Session(target string) (*Session, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.sessionLocked(target)
}

func (h *Hub) sessionLocked(target string) (*Session, error) {
	if h.closed {
		return nil, ErrHubClosed
	}
	if s := h.byTarget[target]; s != nil {
		return s, nil
	}
	s := h.newSession(target)
	h.byTarget[target] = s
	h.byID[s.id] = s
	s.mu.Lock()
	s.armIdleLocked()
	s.mu.Unlock()
	h.wg.Add(2)
	go s.run()
	go s.inputLoop()
	h.log.Info("session started", "session", s.id, "target", target)
	return s, nil
}

// Join attaches a new viewer to the session for target, starting the
// session if needed. The viewer's first Take is a full frame.
func (h *Hub) Join(target string) (*Viewer, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s, err := h.sessionLocked(target)
	if err != nil {
		return nil, err
	}
	return s.attach(), nil
}

// Lookup returns the live session with the given id, or nil.
func (h *Hub) Lookup(id string) *Session {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.byID[id]
}

// End ends the session with the given id and reports whether it existed.
func (h *Hub) End(id string) bool {
	s := h.Lookup(id)
	if s == nil {
		return false
	}
	s.End("session ended by the API")
	return true
}

// Info describes a session for listings.
type Info struct {
	ID            string    `json:"id"`
	Target        string    `json:"target"`
	Viewers       int       `json:"viewers"`
	Width         int       `json:"width"`
	Height        int       `json:"height"`
	State         State     `json:"state"`
	Protocol      string    `json:"protocol,omitempty"`
	Name          string    `json:"name,omitempty"`
	Created       time.Time `json:"created"`
	Reconnections int       `json:"reconnections"`
}

// List describes the live sessions, oldest first.
func (h *Hub) List() []Info {
	h.mu.Lock()
	sessions := make([]*Session, 0, len(h.byID))
	for _, s := range h.byID {
		sessions = append(sessions, s)
	}
	h.mu.Unlock()
	out := make([]Info, 0, len(sessions))
	for _, s := range sessions {
		out = append(out, s.Info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out
}

// Counts returns the number of live sessions and of their viewers.
func (h *Hub) Counts() (sessions, viewers int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.byID {
		s.mu.Lock()
		viewers += len(s.viewers)
		s.mu.Unlock()
	}
	return len(h.byID), viewers
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Session is one console: one backend connection, one framebuffer, any
// number of viewers.
type Session struct {
	hub     *Hub
	id      string
	target  string
	created time.Time
	fb      *framebuffer.Framebuffer
	ctx     context.Context
	cancel  context.CancelFunc
	input   chan inputOp
	done    chan struct{} // closed when run has returned
	ready   chan struct{} // closed when the state first leaves connecting

	mu sync.Mutex
	// mu guards the following.
	viewers   map[*Viewer]struct{}
	closing   bool
	status    Status
	info      backend.Info
	console   backend.Console
	idle      *time.Timer
	idleGen   int
	connects  int // successful backend connections
	readyDone bool

	resizeMu sync.Mutex
	// resizeMu guards the following (see resize.go).
	resizeWant *resizeRequest // the latest request not yet sent
	resizing   bool           // a resizeLoop goroutine is running
	resizeLast time.Time      // when the last request was sent
}

type inputOp struct {
	v  *Viewer
	fn func(backend.Console) error
}

func (h *Hub) newSession(target string) *Session {
	ctx, cancel := context.WithCancel(h.ctx)
	return &Session{
		hub: h, id: newID(), target: target, created: time.Now(),
		fb: framebuffer.New(), ctx: ctx, cancel: cancel,
		input:   make(chan inputOp, InputQueue),
		done:    make(chan struct{}),
		ready:   make(chan struct{}),
		viewers: map[*Viewer]struct{}{},
		status:  Status{State: StateConnecting},
	}
}

// ID returns the session's random identifier.
func (s *Session) ID() string { return s.id }

// Target returns the target the session connects to.
func (s *Session) Target() string { return s.target }

// Framebuffer returns the session's shared framebuffer.
func (s *Session) Framebuffer() *framebuffer.Framebuffer { return s.fb }

// Done returns a channel closed when the session has ended and its backend
// connection is closed.
func (s *Session) Done() <-chan struct{} { return s.done }

// Status returns the backend connection state.
func (s *Session) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

// BackendInfo returns the description of the last connected backend.
func (s *Session) BackendInfo() backend.Info {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.info
}

// Info describes the session.
func (s *Session) Info() Info {
	w, h := s.fb.Size()
	s.mu.Lock()
	defer s.mu.Unlock()
	name := s.fb.Name()
	if name == "" {
		name = s.info.Name
	}
	return Info{
		ID: s.id, Target: s.target, Viewers: len(s.viewers), Width: w, Height: h,
		State: s.status.State, Protocol: s.info.Protocol, Name: name,
		Created: s.created, Reconnections: max(0, s.connects-1),
	}
}

// WaitReady waits until the first connection attempt has finished (or ctx
// ends) and returns the status then.
func (s *Session) WaitReady(ctx context.Context) Status {
	select {
	case <-s.ready:
	case <-ctx.Done():
	}
	return s.Status()
}

// End ends the session: viewers get an ended status and the backend
// connection closes. It does not wait; see Done.
func (s *Session) End(reason string) {
	h := s.hub
	h.mu.Lock()
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		h.mu.Unlock()
		return
	}
	s.closing = true
	if s.idle != nil {
		s.idle.Stop()
	}
	if h.byTarget[s.target] == s {
		delete(h.byTarget, s.target)
	}
	delete(h.byID, s.id)
	s.mu.Unlock()
	h.mu.Unlock()
	h.log.Info("session ending", "session", s.id, "reason", reason)
	s.setStatus(Status{State: StateEnded, Message: reason})
	s.cancel()
}

// armIdleLocked starts the idle timer if no viewer is attached.
func (s *Session) armIdleLocked() {
	if len(s.viewers) > 0 || s.closing {
		return
	}
	s.idleGen++
	gen := s.idleGen
	if s.idle != nil {
		s.idle.Stop()
	}
	s.idle = time.AfterFunc(s.hub.opts.IdleTimeout, func() {
		s.mu.Lock()
		expired := gen == s.idleGen && len(s.viewers) == 0 && !s.closing
		s.mu.Unlock()
		if expired {
			s.End("idle timeout")
		}
	})
}

func (s *Session) setStatus(st Status) {
	s.mu.Lock()
	if s.status.State == StateEnded {
		s.mu.Unlock()
		return
	}
	s.status = st
	if st.State == StateConnected {
		s.connects++
	}
	if !s.readyDone && st.State != StateConnecting {
		s.readyDone = true
		close(s.ready)
	}
	viewers := make([]*Viewer, 0, len(s.viewers))
	for v := range s.viewers {
		viewers = append(viewers, v)
	}
	s.mu.Unlock()
	for _, v := range viewers {
		v.signalStatus()
	}
}

func (s *Session) setConsole(c backend.Console) {
	s.mu.Lock()
	s.console = c
	if c != nil {
		s.info = c.Info()
	}
	s.mu.Unlock()
}

func (s *Session) currentConsole() backend.Console {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.console
}

// run owns the backend connection: it connects, runs and reconnects until
// the session's context ends.
func (s *Session) run() {
	defer s.hub.wg.Done()
	defer close(s.done)
	log := s.hub.log.With("session", s.id)
	opts := &s.hub.opts
	backoff := opts.MinBackoff
	for {
		actx, cancel := context.WithTimeout(s.ctx, opts.ConnectTimeout)
		con, err := opts.Open(actx, s.target)
		cancel()
		if err == nil {
			s.setConsole(con)
			s.setStatus(Status{State: StateConnected})
			log.Info("backend connected", "protocol", con.Info().Protocol)
			backoff = opts.MinBackoff
			err = con.Run(s.ctx, s.fb)
			s.setConsole(nil)
			_ = con.Close()
			if err == nil && s.ctx.Err() == nil {
				err = errors.New("connection closed")
			}
		}
		if s.ctx.Err() != nil {
			break
		}
		msg := fmt.Sprintf("backend: %v; retrying in %v", err, backoff.Round(time.Millisecond))
		log.Warn("backend connection failed", "err", err, "retry", backoff)
		s.setStatus(Status{State: StateReconnecting, Message: msg})
		t := time.NewTimer(backoff)
		select {
		case <-s.ctx.Done():
			t.Stop()
		case <-t.C:
		}
		if s.ctx.Err() != nil {
			break
		}
		backoff = min(2*backoff, opts.MaxBackoff)
	}
	s.setStatus(Status{State: StateEnded, Message: "session ended"})
	log.Info("session ended")
}

// inputLoop forwards viewers' input to the current console, one operation
// at a time, so that viewers' readers never wait for the network.
func (s *Session) inputLoop() {
	defer s.hub.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case op := <-s.input:
			con := s.currentConsole()
			if con == nil {
				op.v.report(ErrNoBackend)
				continue
			}
			if err := op.fn(con); err != nil {
				op.v.report(err)
			}
		}
	}
}

func (s *Session) attach() *Viewer {
	v := &Viewer{
		s: s, id: newID()[:8], fbv: s.fb.Subscribe(),
		statusCh: make(chan struct{}, 1),
		errs:     make(chan error, 8),
	}
	s.mu.Lock()
	s.viewers[v] = struct{}{}
	s.idleGen++ // disarms a pending idle timer
	if s.idle != nil {
		s.idle.Stop()
	}
	s.mu.Unlock()
	return v
}

func (s *Session) detach(v *Viewer) {
	s.mu.Lock()
	_, ok := s.viewers[v]
	delete(s.viewers, v)
	if ok {
		s.armIdleLocked()
	}
	s.mu.Unlock()
	if ok {
		v.fbv.Close()
	}
}

// Viewer is one viewer's handle on a session: the framebuffer changes it has
// not taken yet, status notifications, and input towards the backend.
type Viewer struct {
	s        *Session
	id       string
	fbv      *framebuffer.Viewer
	statusCh chan struct{}
	errs     chan error
	leave    sync.Once
}

// ID returns a short identifier for logs and the hello message.
func (v *Viewer) ID() string { return v.id }

// Session returns the viewer's session.
func (v *Viewer) Session() *Session { return v.s }

// Changed signals that there is something to Take.
func (v *Viewer) Changed() <-chan struct{} { return v.fbv.Changed() }

// Take returns what changed since the previous Take and updates mirror (see
// framebuffer.Viewer.Take).
func (v *Viewer) Take(mirror *framebuffer.Canvas) framebuffer.Update { return v.fbv.Take(mirror) }

// RequestFull makes the next Take a full frame.
func (v *Viewer) RequestFull() { v.fbv.RequestFull() }

// StatusChanged signals that Session().Status() changed.
func (v *Viewer) StatusChanged() <-chan struct{} { return v.statusCh }

// Errors delivers input errors meant for this viewer's user.
func (v *Viewer) Errors() <-chan error { return v.errs }

// Done is closed when the session has ended.
func (v *Viewer) Done() <-chan struct{} { return v.s.done }

// Leave detaches the viewer; the session may then time out. It is safe to
// call more than once.
func (v *Viewer) Leave() { v.leave.Do(func() { v.s.detach(v) }) }

func (v *Viewer) signalStatus() {
	select {
	case v.statusCh <- struct{}{}:
	default:
	}
}

func (v *Viewer) report(err error) {
	select {
	case v.errs <- err:
	default:
	}
}

// enqueue hands fn to the session's input goroutine without blocking.
func (v *Viewer) enqueue(fn func(backend.Console) error) error {
	if v.s.ctx.Err() != nil {
		return ErrEnded
	}
	select {
	case v.s.input <- inputOp{v: v, fn: fn}:
		return nil
	default:
		return ErrInputBusy
	}
}

// Key queues a key event.
func (v *Viewer) Key(ev input.KeyEvent) error {
	return v.enqueue(func(c backend.Console) error { return c.Key(ev) })
}

// Pointer queues a pointer event.
func (v *Viewer) Pointer(ev input.PointerEvent) error {
	return v.enqueue(func(c backend.Console) error { return c.Pointer(ev) })
}

// Clipboard queues setting the console's clipboard.
func (v *Viewer) Clipboard(text string) error {
	return v.enqueue(func(c backend.Console) error { return c.Clipboard(text) })
}

// Action queues a console action.
func (v *Viewer) Action(a input.Action) error {
	return v.enqueue(func(c backend.Console) error { return c.Action(a) })
}

// Refresh asks the backend to resend the whole screen and makes this
// viewer's next frame a full one.
func (v *Viewer) Refresh() error {
	v.RequestFull()
	return v.enqueue(func(c backend.Console) error { return c.Refresh() })
}

// Combo queues the key events of a named combination (input.Combo).
func (v *Viewer) Combo(name string) error {
	evs, ok := input.Combo(name)
	if !ok {
		return fmt.Errorf("session: unknown key combination %q", name)
	}
	return v.keys(evs)
}

// Type queues the key events that type text on a guest with the given
// keyboard layout (input.TypeText).
func (v *Viewer) Type(layout, text string) error {
	if len(text) > MaxTypeText {
		return fmt.Errorf("session: text to type is %d bytes, more than %d", len(text), MaxTypeText)
	}
	if layout == "" {
		layout = "us"
	}
	evs, err := input.TypeText(layout, text)
	if err != nil {
		return err
	}
	return v.keys(evs)
}

func (v *Viewer) keys(evs []input.KeyEvent) error {
	return v.enqueue(func(c backend.Console) error {
		for _, ev := range evs {
			if err := c.Key(ev); err != nil {
				return err
			}
		}
		return nil
	})
}
