package rfbdecode

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"kvmgate/framebuffer"
	"kvmgate/rfb"
)

// Replayer plays a Stream's server side to kvmgate's own rfb.Client over an
// in-memory connection: the client does its real handshake, runs its real
// update loop (decode into its private canvas, publish to a
// framebuffer.Framebuffer, request the next update), and never knows the
// server is a script. rfb has no exported hook into its decoders, so this
// is the narrowest path that exercises exactly the code kvmgate runs.
type Replayer struct {
	conn   *scriptConn
	client *rfb.Client
	fb     *framebuffer.Framebuffer
	cancel context.CancelFunc
	done   chan error // Run's result
}

// replayTimeout bounds how long the client may take over one update before
// the replay counts it as stuck.
const replayTimeout = 30 * time.Second

// NewReplayer completes a handshake with the stream's ServerInit, starts
// the client's Run loop and waits for its first update request.
func NewReplayer(s *Stream) (*Replayer, error) {
	pf, err := s.Format()
	if err != nil {
		return nil, err
	}
	conn := newScriptConn()
	hs := []byte("RFB 003.008\n")
	hs = append(hs, 1, 1)       // one security type: None
	hs = append(hs, 0, 0, 0, 0) // SecurityResult: OK
	hs = append(hs, s.ServerInit...)
	conn.push(hs)

	opts := rfb.NewOptions()
	opts.Encodings = s.Encodings
	opts.PixelFormat = &pf
	opts.NoContinuousUpdates = true
	ctx, cancel := context.WithTimeout(context.Background(), replayTimeout)
	client, err := rfb.NewClient(ctx, conn, opts)
	cancel()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("rfbdecode: %s: replayed handshake: %w", s.Name, err)
	}
	if w, h := client.Size(); w != s.Width || h != s.Height {
		client.Close()
		return nil, fmt.Errorf("rfbdecode: %s: client sees %dx%d, stream is %dx%d", s.Name, w, h, s.Width, s.Height)
	}
	r := &Replayer{conn: conn, client: client, fb: framebuffer.New(), done: make(chan error, 1)}
	var runCtx context.Context
	runCtx, r.cancel = context.WithCancel(context.Background())
	go func() { r.done <- client.Run(runCtx, r.fb) }()
	if err := r.wait(); err != nil {
		r.Close()
		return nil, fmt.Errorf("rfbdecode: %s: waiting for the first update request: %w", s.Name, err)
	}
	return r, nil
}

// Feed sends one FramebufferUpdate message and waits until the client has
// decoded and published it (it then asks for the next update).
func (r *Replayer) Feed(update []byte) error {
	r.conn.push(update)
	return r.wait()
}

func (r *Replayer) wait() error {
	t := time.NewTimer(replayTimeout)
	defer t.Stop()
	select {
	case <-r.conn.requests:
		return nil
	case err := <-r.done:
		if err == nil {
			err = errors.New("client stopped")
		}
		r.done <- err
		return err
	case <-t.C:
		return errors.New("client did not ask for another update")
	}
}

// Snapshot returns a copy of the published framebuffer.
func (r *Replayer) Snapshot() *framebuffer.Canvas { return r.fb.Snapshot() }

// Close stops the client and waits for its Run to return.
func (r *Replayer) Close() error {
	r.cancel()
	r.client.Close()
	err := <-r.done
	r.done <- err
	return err
}

// DecodeKvmgate replays the whole stream through kvmgate's client, on a
// fresh connection, and returns the resulting picture.
func DecodeKvmgate(s *Stream) (*framebuffer.Canvas, error) {
	r, err := NewReplayer(s)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	for i, u := range s.Updates {
		if err := r.Feed(u); err != nil {
			return nil, fmt.Errorf("rfbdecode: %s: update %d: %w", s.Name, i, err)
		}
		// One stored update must be one message: a second request would
		// mean the client found two updates in it.
		time.Sleep(20 * time.Millisecond)
		if n := len(r.conn.requests); n != 0 {
			return nil, fmt.Errorf("rfbdecode: %s: update %d holds %d more FramebufferUpdate messages", s.Name, i, n)
		}
	}
	return r.Snapshot(), nil
}

// scriptConn is the client's side of an in-memory connection whose server
// is a script: Read serves the segments pushed with push, in order; Write
// swallows the client's messages and signals each FramebufferUpdateRequest
// on requests.
type scriptConn struct {
	segments chan []byte
	requests chan struct{}
	closed   chan struct{}
	once     sync.Once

	mu sync.Mutex
	// mu guards the following.
	cur      []byte // rest of the segment being read
	deadline time.Time
	wake     chan struct{} // closed and replaced when the deadline changes
}

func newScriptConn() *scriptConn {
	return &scriptConn{
		segments: make(chan []byte, 16),
		requests: make(chan struct{}, 16),
		closed:   make(chan struct{}),
		wake:     make(chan struct{}),
	}
}

func (c *scriptConn) push(b []byte) { c.segments <- b }

func (c *scriptConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	for len(c.cur) == 0 {
		dl, wake := c.deadline, c.wake
		c.mu.Unlock()
		var timeout <-chan time.Time
		if !dl.IsZero() {
			d := time.Until(dl)
			if d <= 0 {
				return 0, os.ErrDeadlineExceeded
			}
			t := time.NewTimer(d)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case b := <-c.segments:
			c.mu.Lock()
			c.cur = b
			continue
		case <-c.closed:
			return 0, net.ErrClosed
		case <-wake:
		case <-timeout:
			return 0, os.ErrDeadlineExceeded
		}
		c.mu.Lock()
	}
	n := copy(p, c.cur)
	c.cur = c.cur[n:]
	c.mu.Unlock()
	return n, nil
}

func (c *scriptConn) Write(p []byte) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	// A FramebufferUpdateRequest is 10 bytes starting with type 3; the
	// client writes each request on its own.
	if len(p) == 10 && p[0] == 3 {
		select {
		case c.requests <- struct{}{}:
		case <-c.closed:
			return 0, net.ErrClosed
		}
	}
	return len(p), nil
}

func (c *scriptConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

func (c *scriptConn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

func (c *scriptConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	close(c.wake)
	c.wake = make(chan struct{})
	c.mu.Unlock()
	return nil
}

func (c *scriptConn) SetWriteDeadline(time.Time) error { return nil }

type scriptAddr struct{}

func (scriptAddr) Network() string { return "script" }
func (scriptAddr) String() string  { return "replay" }

func (c *scriptConn) LocalAddr() net.Addr  { return scriptAddr{} }
func (c *scriptConn) RemoteAddr() net.Addr { return scriptAddr{} }
