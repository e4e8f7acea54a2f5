package input

import "testing"

func TestHIDUsage(t *testing.T) {
	tests := []struct {
		code string
		want uint8
	}{
		{"KeyA", 0x04},
		{"KeyZ", 0x1d},
		{"Digit1", 0x1e},
		{"Digit0", 0x27},
		{"Enter", 0x28},
		{"Escape", 0x29},
		{"Backspace", 0x2a},
		{"Tab", 0x2b},
		{"Space", 0x2c},
		{"Backslash", 0x31},
		{"Backquote", 0x35},
		{"Slash", 0x38},
		{"CapsLock", 0x39},
		{"F1", 0x3a},
		{"F12", 0x45},
		{"PrintScreen", 0x46},
		{"Pause", 0x48},
		{"Delete", 0x4c},
		{"ArrowRight", 0x4f},
		{"ArrowUp", 0x52},
		{"NumLock", 0x53},
		{"NumpadEnter", 0x58},
		{"Numpad1", 0x59},
		{"Numpad0", 0x62},
		{"IntlBackslash", 0x64},
		{"ContextMenu", 0x65},
		{"Power", 0x66},
		{"F13", 0x68},
		{"F24", 0x73},
		{"AudioVolumeMute", 0x7f},
		{"IntlRo", 0x87},
		{"IntlYen", 0x89},
		{"Lang1", 0x90},
		{"ControlLeft", 0xe0},
		{"ShiftLeft", 0xe1},
		{"AltRight", 0xe6},
		{"MetaRight", 0xe7},
		{"OSRight", 0xe7},
	}
	for _, tt := range tests {
		got, ok := HIDUsage(tt.code)
		if !ok || got != tt.want {
			t.Errorf("HIDUsage(%q) = %#x, %v; want %#x, true", tt.code, got, ok, tt.want)
		}
	}
}

// xtOnly lists the keys that have an XT scancode but no usage on the HID
// keyboard page: they live on the consumer or generic desktop pages.
var xtOnly = map[string]bool{
	"BrowserBack": true, "BrowserFavorites": true, "BrowserForward": true,
	"BrowserHome": true, "BrowserRefresh": true, "BrowserSearch": true,
	"BrowserStop": true, "LaunchApp1": true, "LaunchApp2": true,
	"LaunchMail": true, "MediaPlayPause": true, "MediaSelect": true,
	"MediaStop": true, "MediaTrackNext": true, "MediaTrackPrevious": true,
	"Sleep": true, "WakeUp": true,
}

func TestXTAndHIDCoverSameKeys(t *testing.T) {
	for code := range xtScancodes {
		_, ok := HIDUsage(code)
		switch {
		case xtOnly[code] && ok:
			t.Errorf("%s has a HID usage but is listed as XT-only", code)
		case !xtOnly[code] && !ok:
			t.Errorf("%s has an XT scancode but no HID usage", code)
		}
	}
	for code := range xtOnly {
		if _, ok := XTScancode(code); !ok {
			t.Errorf("XT-only %s has no XT scancode", code)
		}
	}
	seen := make(map[uint8]string)
	for code, u := range hidUsages {
		if _, ok := XTScancode(code); !ok {
			t.Errorf("%s has a HID usage but no XT scancode", code)
		}
		if prev, dup := seen[u]; dup {
			t.Errorf("%s and %s share HID usage %#x", code, prev, u)
		}
		seen[u] = code
		if u < 0x04 {
			t.Errorf("%s: usage %#x is reserved for error codes", code, u)
		}
	}
}

func TestHIDModifierBit(t *testing.T) {
	tests := []struct {
		code string
		want uint8
	}{
		{"ControlLeft", 0x01},
		{"ShiftLeft", 0x02},
		{"AltLeft", 0x04},
		{"MetaLeft", 0x08},
		{"ControlRight", 0x10},
		{"ShiftRight", 0x20},
		{"AltRight", 0x40},
		{"MetaRight", 0x80},
	}
	for _, tt := range tests {
		got, ok := HIDModifierBit(tt.code)
		if !ok || got != tt.want {
			t.Errorf("HIDModifierBit(%q) = %#x, %v; want %#x, true", tt.code, got, ok, tt.want)
		}
	}
	for _, code := range []string{"KeyA", "CapsLock", "NumLock", "ContextMenu", "Enter"} {
		if got, ok := HIDModifierBit(code); ok {
			t.Errorf("HIDModifierBit(%q) = %#x, true; want false", code, got)
		}
	}
}

func TestHIDKeyboard(t *testing.T) {
	var k HIDKeyboard
	steps := []struct {
		ev      KeyEvent
		changed bool
		want    [8]byte
	}{
		{KeyEvent{Code: "ShiftLeft", Down: true}, true, [8]byte{0x02}},
		{KeyEvent{Code: "KeyA", Down: true}, true, [8]byte{0x02, 0, 0x04}},
		{KeyEvent{Code: "KeyA", Down: true}, false, [8]byte{0x02, 0, 0x04}}, // auto-repeat
		{KeyEvent{Code: "AltRight", Down: true}, true, [8]byte{0x42, 0, 0x04}},
		{KeyEvent{Code: "Enter", Down: true}, true, [8]byte{0x42, 0, 0x04, 0x28}},
		{KeyEvent{Code: "KeyA"}, true, [8]byte{0x42, 0, 0x28}},
		{KeyEvent{Code: "KeyA"}, false, [8]byte{0x42, 0, 0x28}},
		{KeyEvent{Code: "MediaPlayPause", Down: true}, false, [8]byte{0x42, 0, 0x28}},
		{KeyEvent{Code: "ShiftLeft"}, true, [8]byte{0x40, 0, 0x28}},
		{KeyEvent{Code: "ShiftLeft"}, false, [8]byte{0x40, 0, 0x28}},
		{KeyEvent{Code: "AltRight"}, true, [8]byte{0, 0, 0x28}},
		{KeyEvent{Code: "Enter"}, true, [8]byte{}},
	}
	for i, s := range steps {
		if changed := k.Apply(s.ev); changed != s.changed {
			t.Errorf("step %d: Apply(%+v) = %v, want %v", i, s.ev, changed, s.changed)
		}
		if got := k.Report(); got != s.want {
			t.Errorf("step %d: Report() = % x, want % x", i, got, s.want)
		}
	}
}

func TestHIDKeyboardRollOver(t *testing.T) {
	var k HIDKeyboard
	k.Apply(KeyEvent{Code: "ControlLeft", Down: true})
	codes := []string{"KeyA", "KeyB", "KeyC", "KeyD", "KeyE", "KeyF"}
	for _, c := range codes {
		k.Apply(KeyEvent{Code: c, Down: true})
	}
	if got, want := k.Report(), [8]byte{0x01, 0, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09}; got != want {
		t.Fatalf("six keys: Report() = % x, want % x", got, want)
	}
	k.Apply(KeyEvent{Code: "KeyG", Down: true})
	if got, want := k.Report(), [8]byte{0x01, 0, 1, 1, 1, 1, 1, 1}; got != want {
		t.Fatalf("seven keys: Report() = % x, want % x", got, want)
	}
	k.Apply(KeyEvent{Code: "KeyA"})
	if got, want := k.Report(), [8]byte{0x01, 0, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a}; got != want {
		t.Fatalf("back to six: Report() = % x, want % x", got, want)
	}
	k.Reset()
	if got := k.Report(); got != ([8]byte{}) {
		t.Fatalf("after Reset: Report() = % x, want zeros", got)
	}
}
