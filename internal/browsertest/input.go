package browsertest

import (
	"fmt"
	"testing"
	"time"
)

// Key describes a physical key of a US keyboard as a page sees it in a
// KeyboardEvent.
type Key struct {
	Code      string // KeyboardEvent.code, e.g. "KeyA"
	Key       string // KeyboardEvent.key without Shift, e.g. "a"
	ShiftKey  string // KeyboardEvent.key with Shift; "" means same as Key
	KeyCode   int    // Windows virtual key code (KeyboardEvent.keyCode)
	Location  int    // 1 left, 2 right, 3 numpad
	modifier  int    // DevTools modifier bit this key sets, if any
	printable bool   // whether the key produces text
}

// DevTools modifier bits of Input.dispatchKeyEvent.
const (
	modAlt   = 1
	modCtrl  = 2
	modMeta  = 4
	modShift = 8
)

// keys is the US keyboard by code.
var keys = map[string]Key{}

// runes maps each ASCII character to the code that types it and whether
// Shift is needed.
var runes = map[rune]struct {
	code  string
	shift bool
}{}

func init() {
	add := func(k Key) {
		keys[k.Code] = k
		if k.printable {
			runes[[]rune(k.Key)[0]] = struct {
				code  string
				shift bool
			}{k.Code, false}
			if k.ShiftKey != "" {
				runes[[]rune(k.ShiftKey)[0]] = struct {
					code  string
					shift bool
				}{k.Code, true}
			}
		}
	}
	for c := 'a'; c <= 'z'; c++ {
		add(Key{Code: "Key" + string(c-32), Key: string(c), ShiftKey: string(c - 32), KeyCode: int(c - 32), printable: true})
	}
	shifted := ")!@#$%^&*("
	for d := '0'; d <= '9'; d++ {
		add(Key{Code: "Digit" + string(d), Key: string(d), ShiftKey: string(shifted[d-'0']), KeyCode: int(d), printable: true})
	}
	for _, k := range []Key{
		{Code: "Space", Key: " ", KeyCode: 32, printable: true},
		{Code: "Minus", Key: "-", ShiftKey: "_", KeyCode: 189, printable: true},
		{Code: "Equal", Key: "=", ShiftKey: "+", KeyCode: 187, printable: true},
		{Code: "BracketLeft", Key: "[", ShiftKey: "{", KeyCode: 219, printable: true},
		{Code: "BracketRight", Key: "]", ShiftKey: "}", KeyCode: 221, printable: true},
		{Code: "Backslash", Key: "\\", ShiftKey: "|", KeyCode: 220, printable: true},
		{Code: "Semicolon", Key: ";", ShiftKey: ":", KeyCode: 186, printable: true},
		{Code: "Quote", Key: "'", ShiftKey: "\"", KeyCode: 222, printable: true},
		{Code: "Backquote", Key: "`", ShiftKey: "~", KeyCode: 192, printable: true},
		{Code: "Comma", Key: ",", ShiftKey: "<", KeyCode: 188, printable: true},
		{Code: "Period", Key: ".", ShiftKey: ">", KeyCode: 190, printable: true},
		{Code: "Slash", Key: "/", ShiftKey: "?", KeyCode: 191, printable: true},
		{Code: "Enter", Key: "Enter", KeyCode: 13},
		{Code: "Tab", Key: "Tab", KeyCode: 9},
		{Code: "Backspace", Key: "Backspace", KeyCode: 8},
		{Code: "Escape", Key: "Escape", KeyCode: 27},
		{Code: "Delete", Key: "Delete", KeyCode: 46},
		{Code: "Insert", Key: "Insert", KeyCode: 45},
		{Code: "Home", Key: "Home", KeyCode: 36},
		{Code: "End", Key: "End", KeyCode: 35},
		{Code: "PageUp", Key: "PageUp", KeyCode: 33},
		{Code: "PageDown", Key: "PageDown", KeyCode: 34},
		{Code: "ArrowLeft", Key: "ArrowLeft", KeyCode: 37},
		{Code: "ArrowUp", Key: "ArrowUp", KeyCode: 38},
		{Code: "ArrowRight", Key: "ArrowRight", KeyCode: 39},
		{Code: "ArrowDown", Key: "ArrowDown", KeyCode: 40},
		{Code: "CapsLock", Key: "CapsLock", KeyCode: 20},
		{Code: "PrintScreen", Key: "PrintScreen", KeyCode: 44},
		{Code: "ShiftLeft", Key: "Shift", KeyCode: 16, Location: 1, modifier: modShift},
		{Code: "ShiftRight", Key: "Shift", KeyCode: 16, Location: 2, modifier: modShift},
		{Code: "ControlLeft", Key: "Control", KeyCode: 17, Location: 1, modifier: modCtrl},
		{Code: "ControlRight", Key: "Control", KeyCode: 17, Location: 2, modifier: modCtrl},
		{Code: "AltLeft", Key: "Alt", KeyCode: 18, Location: 1, modifier: modAlt},
		{Code: "AltRight", Key: "Alt", KeyCode: 18, Location: 2, modifier: modAlt},
		{Code: "MetaLeft", Key: "Meta", KeyCode: 91, Location: 1, modifier: modMeta},
		{Code: "MetaRight", Key: "Meta", KeyCode: 92, Location: 2, modifier: modMeta},
	} {
		add(k)
	}
	for i := 1; i <= 12; i++ {
		add(Key{Code: fmt.Sprintf("F%d", i), Key: fmt.Sprintf("F%d", i), KeyCode: 111 + i})
	}
}

// LookupKey returns the US-keyboard key with the given KeyboardEvent.code.
func LookupKey(code string) (Key, bool) {
	k, ok := keys[code]
	return k, ok
}

// keyValue is the KeyboardEvent.key the page sees for k with the current
// modifiers.
func (p *Page) keyValue(k Key) string {
	if p.modifiers&modShift != 0 && k.ShiftKey != "" {
		return k.ShiftKey
	}
	return k.Key
}

func (p *Page) dispatchKey(t testing.TB, typ string, k Key, repeat bool) {
	t.Helper()
	key := p.keyValue(k)
	params := map[string]any{
		"type":                  typ,
		"modifiers":             p.modifiers,
		"code":                  k.Code,
		"key":                   key,
		"windowsVirtualKeyCode": k.KeyCode,
		"nativeVirtualKeyCode":  k.KeyCode,
		"autoRepeat":            repeat,
		"location":              k.Location,
	}
	if typ == "keyDown" {
		text := key
		if k.Code == "Enter" {
			text = "\r"
		}
		params["text"] = text
		params["unmodifiedText"] = text
	}
	if err := p.call("Input.dispatchKeyEvent", params, nil); err != nil {
		t.Fatalf("browsertest: key %s %s: %v", typ, k.Code, err)
	}
}

func (p *Page) lookup(t testing.TB, code string) Key {
	t.Helper()
	k, ok := keys[code]
	if !ok {
		t.Fatalf("browsertest: unknown key code %q", code)
	}
	return k
}

// KeyDown presses the key with the given KeyboardEvent.code (e.g. "KeyA",
// "ControlLeft", "F5") and keeps it held. Modifiers held this way apply to
// later key events.
func (p *Page) KeyDown(t testing.TB, code string) {
	t.Helper()
	k := p.lookup(t, code)
	p.modifiers |= k.modifier
	typ := "rawKeyDown"
	if k.printable || k.Code == "Enter" {
		if p.modifiers&(modCtrl|modAlt|modMeta) == 0 {
			typ = "keyDown"
		}
	}
	p.dispatchKey(t, typ, k, false)
	p.held[code] = k
}

// KeyRepeat sends an auto-repeat key down for a key held with KeyDown.
func (p *Page) KeyRepeat(t testing.TB, code string) {
	t.Helper()
	k := p.lookup(t, code)
	p.dispatchKey(t, "rawKeyDown", k, true)
}

// KeyUp releases the key with the given code.
func (p *Page) KeyUp(t testing.TB, code string) {
	t.Helper()
	k := p.lookup(t, code)
	p.modifiers &^= k.modifier
	p.dispatchKey(t, "keyUp", k, false)
	delete(p.held, code)
}

// KeyPress presses and releases the key with the given code.
func (p *Page) KeyPress(t testing.TB, code string) {
	t.Helper()
	p.KeyDown(t, code)
	p.KeyUp(t, code)
}

// Type types ASCII text on a US keyboard, key by key, pressing Shift where
// a character needs it. "\n" presses Enter.
func (p *Page) Type(t testing.TB, text string) {
	t.Helper()
	p.TypeSlowly(t, text, 0)
}

// TypeSlowly types text like Type, pausing gap after each character. Guests
// under emulation drop keys when their 16-byte PS/2 queue overflows, which
// a busy machine makes likely; tests typing into QEMU use a small gap.
func (p *Page) TypeSlowly(t testing.TB, text string, gap time.Duration) {
	t.Helper()
	for _, r := range text {
		if gap > 0 {
			time.Sleep(gap)
		}
		if r == '\n' {
			p.KeyPress(t, "Enter")
			continue
		}
		kr, ok := runes[r]
		if !ok {
			t.Fatalf("browsertest: cannot type %q on a US keyboard", r)
		}
		if kr.shift {
			p.KeyDown(t, "ShiftLeft")
		}
		p.KeyPress(t, kr.code)
		if kr.shift {
			p.KeyUp(t, "ShiftLeft")
		}
	}
}

// Mouse buttons for MouseDown and MouseUp.
const (
	Left   = "left"
	Middle = "middle"
	Right  = "right"
)

var buttonBits = map[string]int{Left: 1, Right: 2, Middle: 4}

func (p *Page) mouse(t testing.TB, typ string, x, y float64, button string, extra map[string]any) {
	t.Helper()
	params := map[string]any{
		"type":      typ,
		"x":         x,
		"y":         y,
		"modifiers": p.modifiers,
		"buttons":   p.buttons,
		"button":    "none",
	}
	if button != "" {
		params["button"] = button
		params["clickCount"] = 1
	}
	for k, v := range extra {
		params[k] = v
	}
	if err := p.call("Input.dispatchMouseEvent", params, nil); err != nil {
		t.Fatalf("browsertest: mouse %s at %v,%v: %v", typ, x, y, err)
	}
}

// MouseMove moves the pointer to viewport coordinates x, y (CSS pixels).
func (p *Page) MouseMove(t testing.TB, x, y float64) {
	t.Helper()
	p.mouse(t, "mouseMoved", x, y, "", nil)
}

// MouseDown presses a button (Left, Middle, Right) at x, y.
func (p *Page) MouseDown(t testing.TB, x, y float64, button string) {
	t.Helper()
	p.buttons |= buttonBits[button]
	p.mouse(t, "mousePressed", x, y, button, nil)
}

// MouseUp releases a button at x, y.
func (p *Page) MouseUp(t testing.TB, x, y float64, button string) {
	t.Helper()
	p.buttons &^= buttonBits[button]
	p.mouse(t, "mouseReleased", x, y, button, nil)
}

// Click moves to x, y (viewport CSS pixels) and clicks the left button.
func (p *Page) Click(t testing.TB, x, y float64) {
	t.Helper()
	p.MouseMove(t, x, y)
	p.MouseDown(t, x, y, Left)
	p.MouseUp(t, x, y, Left)
}

// ClickElement clicks the center of the element selector matches. In the
// selector, " >>> " steps into the shadow root of the element matched so
// far: "kvm-console >>> button.keys".
func (p *Page) ClickElement(t testing.TB, selector string) {
	t.Helper()
	x, y, err := p.ElementCenter(selector)
	if err != nil {
		t.Fatalf("%v", err)
	}
	p.Click(t, x, y)
}

// Wheel scrolls by dx, dy CSS pixels with the pointer at x, y.
func (p *Page) Wheel(t testing.TB, x, y, dx, dy float64) {
	t.Helper()
	p.mouse(t, "mouseWheel", x, y, "", map[string]any{"deltaX": dx, "deltaY": dy})
}
