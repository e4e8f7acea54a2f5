// Package demo is kvmgate's built-in demo console: a small fake machine
// whose screen is drawn in-process (a title bar with a clock, a text
// terminal that echoes what is typed and runs a few commands, a bouncing
// box) and served over RFB by rfbserver. `kvmgate demo` connects kvmgate's
// normal server to it, so the demo runs the real path without a VM; tests
// use it as a console they can type into and read back (Console.Text).
package demo

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"kvmgate/framebuffer"
	"kvmgate/input"
)

// Options configure a Console and, for Start, its RFB server.
type Options struct {
	// Width and Height of the screen; zero means 1024×768.
	Width, Height int
	// PauseAnimation keeps the bouncing box still (for tests that want a
	// quiet screen); SetAnimationPaused changes it later.
	PauseAnimation bool
	// Now is the clock shown in the title bar; nil means time.Now.
	Now func() time.Time
	// Listen is the RFB server's address for Start; empty means
	// 127.0.0.1:0 (a free port on loopback).
	Listen string
	// Password, when set, makes the RFB server ask for VNC authentication.
	Password string
	// Logger receives the RFB server's logs; nil means slog.Default().
	Logger *slog.Logger
	// Motion animates the right half of the screen (a plasma with moving
	// stripes, 30 frames a second; see motion.go) for heavy-motion
	// workloads: video transports, switching between tiles and video, and
	// figures. The terminal keeps the left half. SetAnimationPaused stops
	// it with the box.
	Motion bool
}

// Prompt starts every input line of the terminal.
const Prompt = "demo$ "

// CtrlAltDelMessage is printed in the terminal when Ctrl, Alt and Delete are
// held together.
const CtrlAltDelMessage = "Ctrl-Alt-Del received"

// Title is the text of the title bar; the RFB desktop name is the same.
const Title = "kvmgate demo console"

// Layout and colours.
const (
	titleH    = 24
	animH     = 96
	margin    = 8
	boxSize   = 24
	maxClip   = 64 << 10
	frameTime = 100 * time.Millisecond
)

var (
	colTitleBG = rgb{0x2d, 0x3e, 0x50}
	colTitleFG = rgb{0xff, 0xff, 0xff}
	colTermBG  = rgb{0x10, 0x10, 0x10}
	colTermFG  = rgb{0xd0, 0xd0, 0xd0}
	colAnimBG  = rgb{0x20, 0x28, 0x30}
	colBox     = rgb{0xe0, 0x80, 0x20}
	colEdge    = rgb{0x40, 0x50, 0x60}
)

// KeyStats counts the key events a Console received.
type KeyStats struct {
	Down, Up int
	// ByCode counts presses per KeyboardEvent.code (per key name for events
	// that carried no code).
	ByCode map[string]int
	// CtrlAltDel counts Ctrl+Alt+Delete combinations.
	CtrlAltDel int
}

// cell is one character on screen; inv draws it inverted (the cursor).
type cell struct {
	r   rune
	inv bool
}

// Console is the demo machine. It owns its canvas and publishes what it
// draws into a framebuffer.Framebuffer. It implements rfbserver.InputSink;
// its methods are safe for concurrent use.
type Console struct {
	fb   *framebuffer.Framebuffer
	now  func() time.Time
	w, h int

	// Terminal geometry in cells, and its pixel origin.
	cols, rows   int
	termX, termY int
	term         framebuffer.Rect
	anim         framebuffer.Rect
	motion       framebuffer.Rect // empty without Options.Motion
	clockRect    framebuffer.Rect
	done         chan struct{} // set by Start before its goroutines

	mu sync.Mutex
	// mu guards the following.
	canvas    *framebuffer.Canvas
	batch     framebuffer.Batch
	lines     []string // terminal lines, the last one being edited
	shown     [][]cell // what the terminal area shows, row by row
	held      map[string]bool
	keys      KeyStats
	pointers  int
	clipboard string
	clock     string
	boxX      int
	boxY      int
	vx, vy    int
	paused    bool
	motionOff bool          // the motion area is closed (SetMotion)
	tick      int           // animation frames so far
	textCh    chan struct{} // closed and replaced when the text changes
}

// New returns a Console with its first frame drawn and published.
func New(opts Options) (*Console, error) {
	w, h := opts.Width, opts.Height
	if w == 0 && h == 0 {
		w, h = 1024, 768
	}
	if w < 200 || h < titleH+animH+4*cellH {
		return nil, fmt.Errorf("demo: screen %dx%d too small (min 200x%d)", w, h, titleH+animH+4*cellH)
	}
	canvas, err := framebuffer.NewCanvas(w, h)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	c := &Console{
		fb: framebuffer.New(), now: opts.Now, w: w, h: h,
		canvas: canvas, held: map[string]bool{},
		keys:   KeyStats{ByCode: map[string]int{}},
		paused: opts.PauseAnimation,
		vx:     6, vy: 3,
		textCh: make(chan struct{}),
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.termX, c.termY = margin, titleH+margin/2
	c.cols = (w - 2*margin) / cellW
	if opts.Motion {
		c.motion = motionRect(w, h)
		c.cols = (c.motion.X - 2*margin) / cellW
	}
	c.rows = (h - titleH - animH - margin) / cellH
	c.term = framebuffer.Rect{X: c.termX, Y: c.termY, W: c.cols * cellW, H: c.rows * cellH}
	c.anim = framebuffer.Rect{X: 0, Y: h - animH, W: w, H: animH}
	clockW := len("2006-01-02 15:04:05") * cellW
	c.clockRect = framebuffer.Rect{X: w - margin - clockW, Y: (titleH - cellH) / 2, W: clockW, H: cellH}
	c.boxX, c.boxY = margin, c.anim.Y+margin
	c.shown = make([][]cell, c.rows)
	for i := range c.shown {
		c.shown[i] = make([]cell, c.cols)
		for j := range c.shown[i] {
			c.shown[i][j] = cell{r: ' '}
		}
	}

	// The static frame.
	fill(canvas, canvas.Bounds(), colTermBG)
	fill(canvas, framebuffer.Rect{W: w, H: titleH}, colTitleBG)
	drawText(canvas, margin, (titleH-cellH)/2, Title, colTitleFG, colTitleBG)
	fill(canvas, c.anim, colAnimBG)
	fill(canvas, framebuffer.Rect{X: 0, Y: c.anim.Y, W: w, H: 2}, colEdge)
	c.lines = []string{"Welcome to the kvmgate demo console. Type 'help' for commands.", Prompt}
	c.drawClock()
	c.drawBox()
	c.drawMotion(0)
	c.renderTerminal()
	c.fb.SetName(Title)
	c.fb.Publish(canvas, &c.batch)
	return c, nil
}

// Framebuffer returns the framebuffer the console publishes into.
func (c *Console) Framebuffer() *framebuffer.Framebuffer { return c.fb }

// Run animates the box (10 frames a second) and the motion area (30), and
// updates the clock, until ctx ends.
func (c *Console) Run(ctx context.Context) error {
	period, perBox := frameTime, 1
	if !c.motion.Empty() {
		period, perBox = motionFrameTime, int(frameTime/motionFrameTime)
	}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			c.step(perBox)
		}
	}
}

// step advances the animation by one tick (the box moves every perBox
// ticks) and the clock to now.
func (c *Console) step(perBox int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.drawClock()
	if !c.paused {
		c.tick++
		if c.tick%perBox == 0 {
			c.moveBox()
		}
		if !c.motionOff {
			c.drawMotion(c.tick)
		}
	}
	c.publish()
}

// SetMotion closes (false) or reopens (true) the motion area of a console
// made with Options.Motion: closed, it shows the terminal's background and
// stays still, as when a video window is closed and text remains.
func (c *Console) SetMotion(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.motion.Empty() || c.motionOff == !on {
		return
	}
	c.motionOff = !on
	if !on {
		fill(c.canvas, c.motion, colTermBG)
		c.batch.Damage(c.motion)
		c.publish()
	}
}

// SetAnimationPaused stops or restarts the bouncing box and the motion
// area.
func (c *Console) SetAnimationPaused(p bool) {
	c.mu.Lock()
	c.paused = p
	c.mu.Unlock()
}

// publish sends what was drawn since the last publish. mu must be held.
func (c *Console) publish() {
	if c.batch.Len() > 0 {
		c.fb.Publish(c.canvas, &c.batch)
	}
}

// drawClock redraws the clock if its text changed. mu must be held.
func (c *Console) drawClock() {
	s := c.now().Format("2006-01-02 15:04:05")
	if s == c.clock {
		return
	}
	c.clock = s
	c.batch.Damage(drawText(c.canvas, c.clockRect.X, c.clockRect.Y, s, colTitleFG, colTitleBG))
}

func (c *Console) boxRect() framebuffer.Rect {
	return framebuffer.Rect{X: c.boxX, Y: c.boxY, W: boxSize, H: boxSize}
}

func (c *Console) drawBox() {
	r := c.boxRect()
	fill(c.canvas, r, colBox)
	c.batch.Damage(r)
}

// moveBox moves the box one frame, bouncing off the strip's edges.
func (c *Console) moveBox() {
	old := c.boxRect()
	fill(c.canvas, old, colAnimBG)
	c.batch.Damage(old)
	minY, maxY := c.anim.Y+4, c.anim.Y+c.anim.H-boxSize-2
	c.boxX += c.vx
	c.boxY += c.vy
	if c.boxX < 0 || c.boxX > c.w-boxSize {
		c.vx = -c.vx
		c.boxX = max(0, min(c.boxX, c.w-boxSize))
	}
	if c.boxY < minY || c.boxY > maxY {
		c.vy = -c.vy
		c.boxY = max(minY, min(c.boxY, maxY))
	}
	c.drawBox()
}

// Text returns the terminal's lines as shown, joined with newlines; the
// last line is the prompt being edited.
func (c *Console) Text() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.lines, "\n")
}

// WaitText waits until the terminal text contains sub, or ctx ends.
func (c *Console) WaitText(ctx context.Context, sub string) error {
	for {
		c.mu.Lock()
		text, ch := strings.Join(c.lines, "\n"), c.textCh
		c.mu.Unlock()
		if strings.Contains(text, sub) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("demo: waiting for %q in the terminal: %w (text now %q)", sub, ctx.Err(), text)
		}
	}
}

// KeysReceived returns counts of the key events received so far.
func (c *Console) KeysReceived() KeyStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := c.keys
	k.ByCode = make(map[string]int, len(c.keys.ByCode))
	for code, n := range c.keys.ByCode {
		k.ByCode[code] = n
	}
	return k
}

// PointerEvents returns the number of pointer events received.
func (c *Console) PointerEvents() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pointers
}

// modifier returns the modifier a key event is about ("ctrl", "alt",
// "shift", "meta"), or "".
func modifier(ev input.KeyEvent) string {
	switch {
	case strings.HasPrefix(ev.Code, "Control") || (ev.Code == "" && ev.Key == "Control"):
		return "ctrl"
	case strings.HasPrefix(ev.Code, "Alt") || (ev.Code == "" && (ev.Key == "Alt" || ev.Key == "AltGraph")):
		return "alt"
	case strings.HasPrefix(ev.Code, "Shift") || (ev.Code == "" && ev.Key == "Shift"):
		return "shift"
	case strings.HasPrefix(ev.Code, "Meta") || (ev.Code == "" && ev.Key == "Meta"):
		return "meta"
	}
	return ""
}

// Key handles a key press or release: printable characters are echoed,
// Enter runs the line, Backspace erases, Ctrl+C cancels the line, Ctrl+L
// clears the screen and Ctrl+Alt+Delete is reported.
func (c *Console) Key(ev input.KeyEvent) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	name := ev.Code
	if name == "" {
		name = ev.Key
	}
	if m := modifier(ev); m != "" {
		// Both sides count as one modifier; held tracks each physical key.
		c.held[name] = ev.Down
	}
	if !ev.Down {
		c.keys.Up++
		return nil
	}
	c.keys.Down++
	c.keys.ByCode[name]++
	ctrl, alt := c.isHeld("ctrl"), c.isHeld("alt")
	switch {
	case modifier(ev) != "":
		return nil
	case ctrl && alt && (ev.Key == "Delete" || ev.Code == "Delete" || ev.Code == "NumpadDecimal"):
		c.keys.CtrlAltDel++
		c.println(CtrlAltDelMessage)
		c.lines = append(c.lines, Prompt)
	case ctrl && strings.EqualFold(ev.Key, "c"):
		c.lines[len(c.lines)-1] += "^C"
		c.lines = append(c.lines, Prompt)
	case ctrl && strings.EqualFold(ev.Key, "l"):
		c.lines = []string{c.lines[len(c.lines)-1]}
	case ev.Key == "Enter":
		c.enter()
	case ev.Key == "Backspace":
		cur := c.lines[len(c.lines)-1]
		if len(cur) > len(Prompt) {
			_, size := utf8.DecodeLastRuneInString(cur)
			c.lines[len(c.lines)-1] = cur[:len(cur)-size]
		}
	case !ctrl && !alt && utf8.RuneCountInString(ev.Key) == 1:
		r, _ := utf8.DecodeRuneInString(ev.Key)
		cur := c.lines[len(c.lines)-1]
		if r >= 0x20 && r != 0x7f && utf8.RuneCountInString(cur) < c.cols-1 {
			c.lines[len(c.lines)-1] = cur + ev.Key
		}
	default:
		return nil
	}
	c.textChanged()
	return nil
}

func (c *Console) isHeld(m string) bool {
	for name, down := range c.held {
		if down && modifier(input.KeyEvent{Code: name, Key: name}) == m {
			return true
		}
	}
	return false
}

// println adds an output line before the line being edited is finished.
func (c *Console) println(s string) {
	c.lines = append(c.lines, s)
}

// enter runs the command on the current line and starts a new prompt.
func (c *Console) enter() {
	line := strings.TrimPrefix(c.lines[len(c.lines)-1], Prompt)
	cmd, arg, _ := strings.Cut(strings.TrimSpace(line), " ")
	switch cmd {
	case "":
	case "help":
		c.println("commands: help, date, clear, echo TEXT, bell, copy TEXT, paste")
	case "date":
		c.println(c.now().Format("Mon Jan 2 15:04:05 MST 2006"))
	case "clear":
		c.lines = c.lines[:0]
	case "echo":
		c.println(arg)
	case "bell":
		c.fb.Bell()
	case "copy":
		c.fb.SetClipboard(arg)
		c.println(fmt.Sprintf("copied %d characters to the clipboard", utf8.RuneCountInString(arg)))
	case "paste":
		for _, l := range strings.Split(c.clipboard, "\n") {
			c.println(l)
		}
	default:
		c.println("demo: " + cmd + ": command not found")
	}
	c.lines = append(c.lines, Prompt)
}

// textChanged redraws the terminal, publishes and wakes WaitText. mu must
// be held.
func (c *Console) textChanged() {
	c.renderTerminal()
	c.publish()
	close(c.textCh)
	c.textCh = make(chan struct{})
}

// Pointer counts pointer events; the demo has nothing to click.
func (c *Console) Pointer(ev input.PointerEvent) error {
	c.mu.Lock()
	c.pointers++
	c.mu.Unlock()
	return nil
}

// Clipboard keeps text a viewer sent (the "paste" command prints it).
func (c *Console) Clipboard(text string) error {
	if len(text) > maxClip {
		text = text[:maxClip]
	}
	c.mu.Lock()
	c.clipboard = text
	c.mu.Unlock()
	return nil
}

// renderTerminal brings the terminal area up to date with c.lines: lines
// that scrolled off are dropped and the area moved up (a CopyRect for
// viewers), then only the cells that differ are redrawn. mu must be held.
func (c *Console) renderTerminal() {
	// Wrap nothing: lines longer than the width are cut when drawn.
	if over := len(c.lines) - c.rows; over > 0 {
		c.lines = append(c.lines[:0], c.lines[over:]...)
		if over < c.rows {
			c.scroll(over)
		}
	}
	want := make([]cell, c.cols)
	for row := 0; row < c.rows; row++ {
		for i := range want {
			want[i] = cell{r: ' '}
		}
		if row < len(c.lines) {
			col := 0
			for _, r := range c.lines[row] {
				if col >= c.cols {
					break
				}
				want[col].r = r
				col++
			}
			if row == len(c.lines)-1 && col < c.cols {
				want[col].inv = true // the cursor
			}
		}
		c.drawRow(row, want)
	}
}

// scroll moves the terminal's pixels up by n lines.
func (c *Console) scroll(n int) {
	src := framebuffer.Rect{X: c.term.X, Y: c.term.Y + n*cellH, W: c.term.W, H: c.term.H - n*cellH}
	c.canvas.Move(src, c.term.X, c.term.Y)
	c.batch.Move(src, c.term.X, c.term.Y)
	copy(c.shown, c.shown[n:])
	for i := c.rows - n; i < c.rows; i++ {
		c.shown[i] = make([]cell, c.cols)
		for j := range c.shown[i] {
			c.shown[i][j] = cell{r: ' '}
		}
	}
	// The rows that scrolled in were blank on screen only if we paint them so.
	fill(c.canvas, framebuffer.Rect{X: c.term.X, Y: c.term.Y + (c.rows-n)*cellH, W: c.term.W, H: n * cellH}, colTermBG)
	c.batch.Damage(framebuffer.Rect{X: c.term.X, Y: c.term.Y + (c.rows-n)*cellH, W: c.term.W, H: n * cellH})
}

// drawRow redraws the cells of one terminal row that differ from want,
// damaging each run of changed cells.
func (c *Console) drawRow(row int, want []cell) {
	shown := c.shown[row]
	y := c.termY + row*cellH
	for col := 0; col < c.cols; {
		if shown[col] == want[col] {
			col++
			continue
		}
		start := col
		for col < c.cols && shown[col] != want[col] {
			fg, bg := colTermFG, colTermBG
			if want[col].inv {
				fg, bg = bg, fg
			}
			drawCell(c.canvas, c.termX+col*cellW, y, want[col].r, fg, bg)
			shown[col] = want[col]
			col++
		}
		c.batch.Damage(framebuffer.Rect{X: c.termX + start*cellW, Y: y, W: (col - start) * cellW, H: cellH})
	}
}
