package demo

import (
	"strings"
	"testing"
	"time"

	"kvmgate/framebuffer"
	"kvmgate/input"
)

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// fakeClock is a settable clock for Options.Now.
type fakeClock struct{ t time.Time }

func (f *fakeClock) now() time.Time { return f.t }

func newTestConsole(t *testing.T) (*Console, *fakeClock) {
	t.Helper()
	clk := &fakeClock{t: t0}
	c, err := New(Options{PauseAnimation: true, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	return c, clk
}

// usCodes gives the code of the keys typeText uses.
func usCode(r rune) string {
	switch {
	case r >= 'a' && r <= 'z':
		return "Key" + strings.ToUpper(string(r))
	case r >= '0' && r <= '9':
		return "Digit" + string(r)
	case r == ' ':
		return "Space"
	}
	return ""
}

func press(c *Console, code, key string) {
	c.Key(input.KeyEvent{Code: code, Key: key, Down: true})
	c.Key(input.KeyEvent{Code: code, Key: key, Down: false})
}

func typeText(c *Console, s string) {
	for _, r := range s {
		if r == '\n' {
			press(c, "Enter", "Enter")
			continue
		}
		press(c, usCode(r), string(r))
	}
}

// lastLines returns the last n lines of the terminal text.
func lastLines(c *Console, n int) string {
	lines := strings.Split(c.Text(), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func TestTypingAndCommands(t *testing.T) {
	tests := []struct {
		typed string
		want  string // the terminal's last lines afterwards
	}{
		{"hello", "demo$ hello"},
		{"echo hi there\n", "demo$ echo hi there\nhi there\ndemo$ "},
		{"date\n", "demo$ date\nWed Mar 4 05:06:07 UTC 2026\ndemo$ "},
		{"frob\n", "demo$ frob\ndemo: frob: command not found\ndemo$ "},
		{"help\n", "demo$ help\ncommands: help, date, clear, echo TEXT, bell, copy TEXT, paste\ndemo$ "},
		{"\n", "demo$ \ndemo$ "},
	}
	for _, tt := range tests {
		c, _ := newTestConsole(t)
		typeText(c, tt.typed)
		if got := lastLines(c, strings.Count(tt.want, "\n")+1); got != tt.want {
			t.Errorf("typed %q: terminal ends\n%q\nwant\n%q", tt.typed, got, tt.want)
		}
	}
}

func TestBackspaceStopsAtPrompt(t *testing.T) {
	c, _ := newTestConsole(t)
	typeText(c, "ab")
	for range 5 {
		press(c, "Backspace", "Backspace")
	}
	typeText(c, "c")
	if got := lastLines(c, 1); got != "demo$ c" {
		t.Fatalf("line %q", got)
	}
}

func TestClear(t *testing.T) {
	c, _ := newTestConsole(t)
	typeText(c, "echo one\nclear\n")
	if got := c.Text(); got != Prompt {
		t.Fatalf("text after clear %q", got)
	}
}

func TestCtrlAltDel(t *testing.T) {
	for _, keys := range [][]input.KeyEvent{
		{{Code: "ControlLeft", Key: "Control"}, {Code: "AltLeft", Key: "Alt"}, {Code: "Delete", Key: "Delete"}},
		{{Code: "AltRight", Key: "Alt"}, {Code: "ControlRight", Key: "Control"}, {Code: "NumpadDecimal", Key: "Delete"}},
		{{Key: "Control"}, {Key: "Alt"}, {Key: "Delete"}}, // no codes, as from plain keysyms
	} {
		c, _ := newTestConsole(t)
		for _, k := range keys {
			k.Down = true
			c.Key(k)
		}
		for _, k := range keys {
			c.Key(k)
		}
		if !strings.Contains(c.Text(), CtrlAltDelMessage) {
			t.Errorf("%v: text %q lacks %q", keys, c.Text(), CtrlAltDelMessage)
		}
		st := c.KeysReceived()
		if st.CtrlAltDel != 1 || st.Down != 3 || st.Up != 3 {
			t.Errorf("%v: stats %+v", keys, st)
		}
	}
	// Delete alone, or after the modifiers were released, is no combo.
	c, _ := newTestConsole(t)
	c.Key(input.KeyEvent{Code: "ControlLeft", Key: "Control", Down: true})
	c.Key(input.KeyEvent{Code: "ControlLeft", Key: "Control"})
	c.Key(input.KeyEvent{Code: "AltLeft", Key: "Alt", Down: true})
	press(c, "Delete", "Delete")
	if strings.Contains(c.Text(), CtrlAltDelMessage) || c.KeysReceived().CtrlAltDel != 0 {
		t.Fatalf("Alt+Delete taken for Ctrl+Alt+Delete")
	}
}

func TestKeysReceived(t *testing.T) {
	c, _ := newTestConsole(t)
	typeText(c, "aab")
	st := c.KeysReceived()
	if st.Down != 3 || st.Up != 3 || st.ByCode["KeyA"] != 2 || st.ByCode["KeyB"] != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestClipboardCommands(t *testing.T) {
	c, _ := newTestConsole(t)
	v := c.Framebuffer().Subscribe()
	defer v.Close()
	var mirror framebuffer.Canvas
	v.Take(&mirror)
	typeText(c, "copy abc\n")
	if u := v.Take(&mirror); !u.ClipboardChanged || u.Clipboard != "abc" {
		t.Fatalf("clipboard not set: %+v", u.Clipboard)
	}
	c.Clipboard("from viewer")
	typeText(c, "paste\n")
	if got := lastLines(c, 2); got != "from viewer\ndemo$ " {
		t.Fatalf("paste printed %q", got)
	}
	typeText(c, "bell\n")
	if u := v.Take(&mirror); u.Bells != 1 {
		t.Fatalf("bells %d", u.Bells)
	}
}

// damageArea sums the update's damage.
func damageArea(u framebuffer.Update) int {
	a := 0
	for _, r := range u.Damage {
		a += r.Area()
	}
	return a
}

// tileBounds rounds r out to whole damage tiles.
func tileBounds(r framebuffer.Rect) framebuffer.Rect {
	const T = framebuffer.TileSize
	x0, y0 := r.X/T*T, r.Y/T*T
	x1, y1 := (r.X+r.W+T-1)/T*T, (r.Y+r.H+T-1)/T*T
	return framebuffer.Rect{X: x0, Y: y0, W: x1 - x0, H: y1 - y0}
}

func TestClockDamageIsSmall(t *testing.T) {
	c, clk := newTestConsole(t)
	v := c.Framebuffer().Subscribe()
	defer v.Close()
	var mirror framebuffer.Canvas
	v.Take(&mirror)

	c.step(1) // same second: nothing changes
	if u := v.Take(&mirror); !u.Empty() {
		t.Fatalf("update without a clock change: %+v", u)
	}
	clk.t = clk.t.Add(time.Second)
	c.step(1)
	u := v.Take(&mirror)
	if len(u.Damage) == 0 {
		t.Fatal("clock tick damaged nothing")
	}
	area := tileBounds(c.clockRect)
	for _, r := range u.Damage {
		if !r.In(area) {
			t.Fatalf("clock tick damaged %v, outside the clock %v", r, c.clockRect)
		}
	}
	if damageArea(u) > area.Area() || area.Area() > c.w*c.h/100 {
		t.Fatalf("clock damage %d px (clock area %d)", damageArea(u), area.Area())
	}
	if !mirror.Equal(c.Framebuffer().Snapshot()) {
		t.Fatal("mirror differs from the framebuffer after the tick")
	}
}

func TestBoxDamageIsOldAndNewRects(t *testing.T) {
	c, _ := newTestConsole(t)
	c.SetAnimationPaused(false)
	v := c.Framebuffer().Subscribe()
	defer v.Close()
	var mirror framebuffer.Canvas
	v.Take(&mirror)
	old := c.boxRect()
	c.step(1)
	u := v.Take(&mirror)
	allowed := tileBounds(old.Union(c.boxRect()))
	if old == c.boxRect() {
		t.Fatal("box did not move")
	}
	for _, r := range u.Damage {
		if !r.In(allowed) {
			t.Fatalf("box move damaged %v, outside %v", r, allowed)
		}
	}
	if !mirror.Equal(c.Framebuffer().Snapshot()) {
		t.Fatal("mirror differs from the framebuffer")
	}
}

func TestTypingDamagesOnlyChangedCells(t *testing.T) {
	c, _ := newTestConsole(t)
	v := c.Framebuffer().Subscribe()
	defer v.Close()
	var mirror framebuffer.Canvas
	v.Take(&mirror)
	typeText(c, "x")
	u := v.Take(&mirror)
	// The new character and the cursor moving one cell: two cells, at
	// most a 2×2 block of tiles.
	if a := damageArea(u); a == 0 || a > 4*framebuffer.TileSize*framebuffer.TileSize {
		t.Fatalf("typing one character damaged %d px: %v", a, u.Damage)
	}
	if !mirror.Equal(c.Framebuffer().Snapshot()) {
		t.Fatal("mirror differs from the framebuffer")
	}
}

func TestScrollUsesMove(t *testing.T) {
	c, _ := newTestConsole(t)
	v := c.Framebuffer().Subscribe()
	defer v.Close()
	var mirror framebuffer.Canvas
	v.Take(&mirror)
	for i := 0; i < c.rows+3; i++ {
		typeText(c, "echo line\n")
		u := v.Take(&mirror)
		// A viewer that applies the moves and the damage must end up
		// with the console's picture.
		_ = u
		if !mirror.Equal(c.Framebuffer().Snapshot()) {
			t.Fatalf("step %d: mirror differs", i)
		}
	}
	if n := len(strings.Split(c.Text(), "\n")); n != c.rows {
		t.Fatalf("%d lines kept, want %d (the screen's rows)", n, c.rows)
	}
	// Scrolling one line reports a move of the terminal area.
	typeText(c, "echo x")
	v.Take(&mirror)
	press(c, "Enter", "Enter")
	if u := v.Take(&mirror); len(u.Moves) == 0 {
		t.Fatalf("scroll sent no move: %+v", u)
	}
}

func TestGlyphsAreDrawn(t *testing.T) {
	c, _ := newTestConsole(t)
	snap := c.Framebuffer().Snapshot()
	// The title's first letter 'k' has ink: some pixel in its cell is the
	// foreground colour.
	ink := 0
	for y := 0; y < cellH; y++ {
		for x := 0; x < cellW; x++ {
			p := snap.At(margin+x, (titleH-cellH)/2+y)
			if byte(p) == colTitleFG[0] {
				ink++
			}
		}
	}
	if ink < 5 || ink > cellW*cellH/2 {
		t.Fatalf("'k' cell has %d ink pixels", ink)
	}
	if glyphFor('A') == glyphFor('B') || *glyphFor('A') == *glyphFor(' ') {
		t.Fatal("glyph cache broken")
	}
}

func TestNewRejectsTinyScreen(t *testing.T) {
	if _, err := New(Options{Width: 100, Height: 50}); err == nil {
		t.Fatal("tiny screen accepted")
	}
}
