package framebuffer

import (
	"sync"
)

// Cursor is a pointer shape the backend wants viewers to draw themselves.
// Pix holds W×H RGBA pixels with straight (non-premultiplied) alpha.
type Cursor struct {
	W, H       int
	HotX, HotY int
	Pix        []byte
}

// Move says that the pixels of Src now also stand at (DstX, DstY): a
// CopyRect or scroll. Viewers may forward it instead of the pixels.
type Move struct {
	Src        Rect
	DstX, DstY int
}

// Dst returns the rectangle the move wrote.
func (m Move) Dst() Rect { return Rect{m.DstX, m.DstY, m.Src.W, m.Src.H} }

// Batch collects what one backend update changed, in order, until it is
// published. A backend keeps one Batch next to its private Canvas.
type Batch struct {
	ops []op
}

type op struct {
	move bool
	r    Rect // damage, or the move's source
	dx   int
	dy   int
}

// Damage records that r was repainted.
func (b *Batch) Damage(r Rect) {
	if !r.Empty() {
		b.ops = append(b.ops, op{r: r})
	}
}

// Move records that src was copied to (dx, dy).
func (b *Batch) Move(src Rect, dx, dy int) {
	if !src.Empty() {
		b.ops = append(b.ops, op{move: true, r: src, dx: dx, dy: dy})
	}
}

// Len returns the number of recorded changes.
func (b *Batch) Len() int { return len(b.ops) }

// Update is what a viewer takes from the framebuffer: everything that changed
// since its previous Take, to be sent from the pixels Take copied out.
type Update struct {
	// Resized is set on a viewer's first Take, after a size change and after
	// RequestFull: the viewer must repaint the whole screen.
	Resized       bool
	Width, Height int
	// Moves are to be applied first, in order. They are only reported when
	// the viewer had no damage pending before them, so the source pixels on
	// the viewer's side are known to be current.
	Moves []Move
	// Damage lists the areas to repaint from the copied pixels.
	Damage []Rect
	// CursorChanged is set when the cursor shape or visibility changed;
	// Cursor is then its current value (nil: hidden or none).
	CursorChanged bool
	Cursor        *Cursor
	// CursorMoved is set when the backend moved its cursor; CursorX and
	// CursorY are then the hotspot's latest position, in screen pixels.
	// Only the latest position is reported, however often it moved.
	CursorMoved      bool
	CursorX, CursorY int
	// NameChanged is set when the desktop name changed; Name holds it.
	NameChanged bool
	Name        string
	// ClipboardChanged is set when the backend's clipboard changed.
	ClipboardChanged bool
	Clipboard        string
	// Bells counts bell events since the previous Take.
	Bells int
	// CapsChanged is set when the console's capabilities changed; Caps
	// holds them. A viewer's first Take does not set it: a viewer reads
	// Framebuffer.Caps when it starts and learns changes from then on.
	CapsChanged bool
	Caps        Caps
}

// Caps are what a console can do that viewers adapt to. The backend
// publishes them; they may change while it runs (a SPICE guest's agent
// starts, a server switches its mouse mode).
type Caps struct {
	// Pointer is "absolute", "relative" (the console only takes pointer
	// motion, so the viewer should capture the pointer) or "" (unknown).
	Pointer string
	// Resizable reports whether the console can resize its display on
	// request now (backend.Resizer).
	Resizable bool
}

// Empty reports whether u carries nothing to send.
func (u *Update) Empty() bool {
	return !u.Resized && len(u.Moves) == 0 && len(u.Damage) == 0 && !u.CursorChanged &&
		!u.CursorMoved && !u.NameChanged && !u.ClipboardChanged && u.Bells == 0 && !u.CapsChanged
}

// Framebuffer is the shared picture of one console. One backend publishes
// into it; any number of viewers subscribe. It is safe for concurrent use.
type Framebuffer struct {
	mu sync.RWMutex
	// mu guards the following.
	canvas    Canvas
	cursor    *Cursor
	cursorX   int
	cursorY   int
	cursorPos bool // whether the backend has set a cursor position
	name      string
	clipboard string
	caps      Caps
	viewers   map[*Viewer]struct{}
	version   uint64 // incremented by every Publish and Resize
}

// New returns an empty 0×0 framebuffer.
func New() *Framebuffer {
	return &Framebuffer{viewers: make(map[*Viewer]struct{})}
}

// Size returns the current width and height.
func (f *Framebuffer) Size() (w, h int) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.canvas.W, f.canvas.H
}

// Version returns a counter that changes whenever pixels or size change.
func (f *Framebuffer) Version() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.version
}

// Publish copies what b records from src (the backend's private canvas) into
// the shared picture and tells every viewer, then empties b. If src has
// another size than the shared picture, the shared picture takes src's size
// and every viewer is told to repaint everything.
func (f *Framebuffer) Publish(src *Canvas, b *Batch) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.version++
	if src.W != f.canvas.W || src.H != f.canvas.H || f.canvas.Pix == nil {
		f.canvas.Resize(src.W, src.H)
		f.canvas.CopyFrom(src, src.Bounds())
		for v := range f.viewers {
			v.resized(src.W, src.H)
		}
		b.ops = b.ops[:0]
		return
	}
	bounds := f.canvas.Bounds()
	for _, o := range b.ops {
		r := o.r
		if o.move {
			r = Rect{o.dx, o.dy, o.r.W, o.r.H}
		}
		r = r.Intersect(bounds)
		if !r.Empty() {
			f.canvas.CopyFrom(src, r)
		}
	}
	for v := range f.viewers {
		v.apply(b.ops, bounds)
	}
	b.ops = b.ops[:0]
}

// SetCursor replaces the cursor shape; nil hides it.
func (f *Framebuffer) SetCursor(c *Cursor) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cursor = c
	for v := range f.viewers {
		v.event(func(p *pending) { p.cursor = true })
	}
}

// SetCursorPos records where the backend's cursor hotspot is, in screen
// pixels: the position a guest's hardware cursor was moved to (SPICE cursor
// channel, RFB PointerPos). Viewers are told only the latest position, so a
// backend may call it for every move. Hiding the cursor is SetCursor(nil).
func (f *Framebuffer) SetCursorPos(x, y int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cursorPos && f.cursorX == x && f.cursorY == y {
		return
	}
	f.cursorX, f.cursorY, f.cursorPos = x, y, true
	for v := range f.viewers {
		v.event(func(p *pending) { p.cursorPos = true })
	}
}

// CursorPos returns the position SetCursorPos recorded last, and whether
// there was one.
func (f *Framebuffer) CursorPos() (x, y int, ok bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.cursorX, f.cursorY, f.cursorPos
}

// SetName records the desktop name.
func (f *Framebuffer) SetName(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.name == name {
		return
	}
	f.name = name
	for v := range f.viewers {
		v.event(func(p *pending) { p.name = true })
	}
}

// Name returns the desktop name.
func (f *Framebuffer) Name() string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.name
}

// SetClipboard records text the backend put on its clipboard.
func (f *Framebuffer) SetClipboard(text string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clipboard = text
	for v := range f.viewers {
		v.event(func(p *pending) { p.clipboard = true })
	}
}

// SetPointer records the console's pointer kind ("absolute", "relative" or
// "" for unknown; see Caps).
func (f *Framebuffer) SetPointer(kind string) {
	f.setCaps(func(c *Caps) { c.Pointer = kind })
}

// SetResizable records whether the console can resize its display on
// request now (see Caps).
func (f *Framebuffer) SetResizable(ok bool) {
	f.setCaps(func(c *Caps) { c.Resizable = ok })
}

func (f *Framebuffer) setCaps(fn func(*Caps)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	old := f.caps
	fn(&f.caps)
	if f.caps == old {
		return
	}
	for v := range f.viewers {
		v.event(func(p *pending) { p.caps = true })
	}
}

// Caps returns the console's capabilities.
func (f *Framebuffer) Caps() Caps {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.caps
}

// Bell records a bell event.
func (f *Framebuffer) Bell() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for v := range f.viewers {
		v.event(func(p *pending) { p.bells++ })
	}
}

// Snapshot returns a copy of the current picture.
func (f *Framebuffer) Snapshot() *Canvas {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.canvas.Clone()
}

// Viewers returns the number of subscribed viewers.
func (f *Framebuffer) Viewers() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.viewers)
}

// Subscribe registers a new viewer. Its first Take reports Resized, so it
// starts with a full frame.
func (f *Framebuffer) Subscribe() *Viewer {
	v := &Viewer{fb: f, notify: make(chan struct{}, 1)}
	f.mu.Lock()
	defer f.mu.Unlock()
	v.p.full = true
	v.p.cursor = f.cursor != nil
	v.p.cursorPos = f.cursorPos
	v.p.name = f.name != ""
	v.p.damage.Reset(f.canvas.W, f.canvas.H)
	f.viewers[v] = struct{}{}
	v.signal()
	return v
}

// Viewer is one subscriber's view of the framebuffer: what changed since it
// last took an update. Its methods may be called from any goroutine, though a
// viewer normally has one sender goroutine calling Take.
type Viewer struct {
	fb     *Framebuffer
	notify chan struct{}

	mu sync.Mutex
	// mu guards p. Lock order: fb.mu before mu.
	p pending
}

type pending struct {
	full      bool
	moves     []Move
	damage    Damage
	cursor    bool
	cursorPos bool
	name      bool
	clipboard bool
	bells     int
	caps      bool
}

// maxMoves bounds the moves a viewer keeps; beyond it moves become damage.
const maxMoves = 64

// Changed returns a channel that receives a value when there is something
// new to Take. It never blocks the publisher: signals coalesce.
func (v *Viewer) Changed() <-chan struct{} { return v.notify }

func (v *Viewer) signal() {
	select {
	case v.notify <- struct{}{}:
	default:
	}
}

// resized is called with fb.mu held.
func (v *Viewer) resized(w, h int) {
	v.mu.Lock()
	v.p.full = true
	v.p.moves = v.p.moves[:0]
	v.p.damage.Reset(w, h)
	v.mu.Unlock()
	v.signal()
}

// apply is called with fb.mu held.
func (v *Viewer) apply(ops []op, bounds Rect) {
	v.mu.Lock()
	if !v.p.full {
		for _, o := range ops {
			if !o.move {
				v.p.damage.Add(o.r)
				continue
			}
			m := Move{Src: o.r, DstX: o.dx, DstY: o.dy}
			if v.p.damage.Empty() && len(v.p.moves) < maxMoves && m.Src.In(bounds) && m.Dst().In(bounds) {
				v.p.moves = append(v.p.moves, m)
			} else {
				v.p.damage.Add(m.Dst())
			}
		}
	}
	v.mu.Unlock()
	v.signal()
}

func (v *Viewer) event(fn func(*pending)) {
	v.mu.Lock()
	fn(&v.p)
	v.mu.Unlock()
	v.signal()
}

// RequestFull makes the next Take report a full repaint.
func (v *Viewer) RequestFull() {
	v.event(func(p *pending) { p.full = true })
}

// Take returns what changed since the previous Take and copies the pixels it
// needs into dst, which is resized to the screen as needed. dst is the
// viewer's own mirror of the screen: after Take its damaged regions (or all of
// it, if Resized) hold current pixels. Moves are not applied to dst; the
// pixels at their destinations are already current in the shared picture.
func (v *Viewer) Take(dst *Canvas) Update {
	f := v.fb
	f.mu.RLock()
	defer f.mu.RUnlock()
	v.mu.Lock()
	p := &v.p
	u := Update{Width: f.canvas.W, Height: f.canvas.H}
	if p.full {
		u.Resized = true
	} else {
		u.Moves = append([]Move(nil), p.moves...)
		u.Damage = p.damage.Rects(nil)
	}
	if p.cursor {
		u.CursorChanged, u.Cursor = true, f.cursor
	}
	if p.cursorPos {
		u.CursorMoved, u.CursorX, u.CursorY = true, f.cursorX, f.cursorY
	}
	if p.name {
		u.NameChanged, u.Name = true, f.name
	}
	if p.clipboard {
		u.ClipboardChanged, u.Clipboard = true, f.clipboard
	}
	u.Bells = p.bells
	if p.caps {
		u.CapsChanged, u.Caps = true, f.caps
	}
	p.full, p.cursor, p.cursorPos, p.name, p.clipboard, p.bells, p.caps = false, false, false, false, false, 0, false
	p.moves = p.moves[:0]
	if p.damage.w != f.canvas.W || p.damage.h != f.canvas.H {
		p.damage.Reset(f.canvas.W, f.canvas.H)
	} else {
		p.damage.Clear()
	}
	v.mu.Unlock()

	if u.Resized {
		dst.Resize(f.canvas.W, f.canvas.H)
		dst.CopyFrom(&f.canvas, f.canvas.Bounds())
		return u
	}
	if dst.W != f.canvas.W || dst.H != f.canvas.H {
		// The caller lost its mirror; treat as a full repaint.
		dst.Resize(f.canvas.W, f.canvas.H)
		dst.CopyFrom(&f.canvas, f.canvas.Bounds())
		u.Resized, u.Moves, u.Damage = true, nil, nil
		return u
	}
	for _, m := range u.Moves {
		dst.CopyFrom(&f.canvas, m.Dst())
	}
	for _, r := range u.Damage {
		dst.CopyFrom(&f.canvas, r)
	}
	return u
}

// Close unsubscribes the viewer.
func (v *Viewer) Close() {
	v.fb.mu.Lock()
	delete(v.fb.viewers, v)
	v.fb.mu.Unlock()
}
