// Package sessiontest provides an in-process fake backend for tests of the
// session hub and the transports: a backend.Console that paints a
// framebuffer on command and records the input it receives.
package sessiontest

import (
	"context"
	"errors"
	"sync"

	"kvmgate/backend"
	"kvmgate/framebuffer"
	"kvmgate/input"
)

// Backend opens fake consoles and counts the connections.
type Backend struct {
	// W and H are the screen size of new consoles (default 320×200).
	W, H int
	// Resizable makes new consoles report that they can resize their
	// display (framebuffer caps); Resize works either way.
	Resizable bool

	mu sync.Mutex
	// mu guards the following.
	opens    int
	consoles []*Console
	openErr  error
}

// SetOpenError makes later Open calls fail with err (nil: succeed).
func (b *Backend) SetOpenError(err error) {
	b.mu.Lock()
	b.openErr = err
	b.mu.Unlock()
}

// Open is a session.Options.Open function.
func (b *Backend) Open(ctx context.Context, target string) (backend.Console, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.opens++
	if b.openErr != nil {
		return nil, b.openErr
	}
	w, h := b.W, b.H
	if w == 0 || h == 0 {
		w, h = 320, 200
	}
	c := &Console{
		w: w, h: h, target: target, resizable: b.Resizable,
		paint:  make(chan paintOp),
		fail:   make(chan error, 1),
		closed: make(chan struct{}),
		Ready:  make(chan struct{}),
	}
	b.consoles = append(b.consoles, c)
	return c, nil
}

// Opens returns the number of Open calls so far.
func (b *Backend) Opens() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.opens
}

// Last returns the most recently opened console, or nil.
func (b *Backend) Last() *Console {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.consoles) == 0 {
		return nil
	}
	return b.consoles[len(b.consoles)-1]
}

type paintOp struct {
	fn   func(c *framebuffer.Canvas, b *framebuffer.Batch)
	done chan struct{}
}

// Console is a fake backend.Console. Its screen starts with a test pattern.
type Console struct {
	w, h      int
	target    string
	resizable bool
	paint     chan paintOp
	fail      chan error
	closed    chan struct{}
	close     sync.Once
	// Ready is closed once Run has published the first frame.
	Ready chan struct{}

	mu sync.Mutex
	// mu guards the following.
	keys      []input.KeyEvent
	pointers  []input.PointerEvent
	clipboard string
	refreshes int
	resizes   [][2]int
	fb        *framebuffer.Framebuffer
}

// Pattern paints the initial test pattern: colour bars and a gradient.
func Pattern(c *framebuffer.Canvas) {
	for y := 0; y < c.H; y++ {
		row := c.Row(0, y, c.W)
		for x := 0; x < c.W; x++ {
			p := row[4*x:]
			if y < c.H/2 {
				bar := x * 8 / max(c.W, 1)
				p[0], p[1], p[2] = byte(255*(bar&1)), byte(255*(bar>>1&1)), byte(255*(bar>>2&1))
			} else {
				p[0], p[1], p[2] = byte(x), byte(y), byte(x^y)
			}
			p[3] = 0xff
		}
	}
}

// Run publishes the pattern, then applies Paint calls until ctx ends, Fail
// is called or the console is closed.
func (c *Console) Run(ctx context.Context, fb *framebuffer.Framebuffer) error {
	canvas, err := framebuffer.NewCanvas(c.w, c.h)
	if err != nil {
		return err
	}
	var batch framebuffer.Batch
	Pattern(canvas)
	batch.Damage(canvas.Bounds())
	fb.SetPointer("absolute")
	fb.SetResizable(c.resizable)
	fb.Publish(canvas, &batch)
	fb.SetName("fake " + c.target)
	c.mu.Lock()
	c.fb = fb
	c.mu.Unlock()
	close(c.Ready)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.closed:
			return errors.New("sessiontest: console closed")
		case err := <-c.fail:
			return err
		case op := <-c.paint:
			op.fn(canvas, &batch)
			fb.Publish(canvas, &batch)
			close(op.done)
		}
	}
}

// Paint runs fn on the console's canvas in Run's goroutine and publishes
// the batch; it returns once published, or false if Run is not running.
func (c *Console) Paint(ctx context.Context, fn func(c *framebuffer.Canvas, b *framebuffer.Batch)) bool {
	op := paintOp{fn: fn, done: make(chan struct{})}
	select {
	case c.paint <- op:
	case <-c.closed:
		return false
	case <-ctx.Done():
		return false
	}
	<-op.done
	return true
}

// Fail makes Run return err, as if the connection dropped.
func (c *Console) Fail(err error) {
	select {
	case c.fail <- err:
	default:
	}
}

// Key records ev.
func (c *Console) Key(ev input.KeyEvent) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keys = append(c.keys, ev)
	return nil
}

// Keys returns the key events received so far.
func (c *Console) Keys() []input.KeyEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]input.KeyEvent(nil), c.keys...)
}

// Pointer records ev.
func (c *Console) Pointer(ev input.PointerEvent) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pointers = append(c.pointers, ev)
	return nil
}

// Pointers returns the pointer events received so far.
func (c *Console) Pointers() []input.PointerEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]input.PointerEvent(nil), c.pointers...)
}

// Clipboard records text.
func (c *Console) Clipboard(text string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.clipboard = text
	return nil
}

// ClipboardText returns the last clipboard text received.
func (c *Console) ClipboardText() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.clipboard
}

// Action is unsupported.
func (c *Console) Action(a input.Action) error { return backend.ErrUnsupported }

// Refresh counts refresh requests.
func (c *Console) Refresh() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refreshes++
	return nil
}

// Info describes the fake.
func (c *Console) Info() backend.Info {
	return backend.Info{Protocol: "fake", Server: "sessiontest", Name: "fake " + c.target}
}

// Close ends Run.
func (c *Console) Close() error {
	c.close.Do(func() { close(c.closed) })
	return nil
}

// Resize records the request and repaints the test pattern at w×h
// (backend.Resizer).
func (c *Console) Resize(ctx context.Context, w, h int) error {
	c.mu.Lock()
	c.resizes = append(c.resizes, [2]int{w, h})
	c.mu.Unlock()
	ok := c.Paint(ctx, func(cv *framebuffer.Canvas, b *framebuffer.Batch) {
		cv.Resize(w, h)
		Pattern(cv)
		b.Damage(cv.Bounds())
	})
	if !ok {
		return errors.New("sessiontest: console not running")
	}
	return nil
}

// Resizes returns the sizes Resize was asked for, in order.
func (c *Console) Resizes() [][2]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][2]int(nil), c.resizes...)
}

// SetPointer changes the pointer kind the console publishes, as a SPICE
// server switching mouse modes does. Run must have started (Ready).
func (c *Console) SetPointer(kind string) {
	c.mu.Lock()
	fb := c.fb
	c.mu.Unlock()
	fb.SetPointer(kind)
}
