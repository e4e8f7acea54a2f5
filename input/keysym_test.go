package input

import "testing"

func TestKeysym(t *testing.T) {
	tests := []struct {
		code, key string
		want      uint32 // 0 means Keysym must report false
	}{
		// Printable characters from Key.
		{"KeyA", "a", 0x61},
		{"KeyA", "A", 0x41},
		{"KeyQ", "a", 0x61}, // AZERTY: Key decides, not Code
		{"KeyE", "é", 0xe9},
		{"KeyE", "€", 0x20ac},
		{"KeyL", "ł", 0x1000142},
		{"Digit2", "@", 0x40},
		{"Space", " ", 0x20},
		{"", "z", 0x7a},
		// Named keys.
		{"Enter", "Enter", 0xff0d},
		{"Backspace", "Backspace", 0xff08},
		{"Tab", "Tab", 0xff09},
		{"Escape", "Escape", 0xff1b},
		{"ArrowLeft", "ArrowLeft", 0xff51},
		{"ArrowUp", "ArrowUp", 0xff52},
		{"ArrowRight", "ArrowRight", 0xff53},
		{"ArrowDown", "ArrowDown", 0xff54},
		{"F1", "F1", 0xffbe},
		{"F12", "F12", 0xffc9},
		{"F24", "F24", 0xffd5},
		{"Home", "Home", 0xff50},
		{"End", "End", 0xff57},
		{"PageUp", "PageUp", 0xff55},
		{"PageDown", "PageDown", 0xff56},
		{"Insert", "Insert", 0xff63},
		{"Delete", "Delete", 0xffff},
		{"CapsLock", "CapsLock", 0xffe5},
		{"NumLock", "NumLock", 0xff7f},
		{"ScrollLock", "ScrollLock", 0xff14},
		{"PrintScreen", "PrintScreen", 0xff61},
		{"Pause", "Pause", 0xff13},
		{"ContextMenu", "ContextMenu", 0xff67},
		{"AudioVolumeMute", "AudioVolumeMute", 0x1008ff12},
		// Modifiers by code.
		{"ShiftLeft", "Shift", 0xffe1},
		{"ShiftRight", "Shift", 0xffe2},
		{"ControlLeft", "Control", 0xffe3},
		{"ControlRight", "Control", 0xffe4},
		{"AltLeft", "Alt", 0xffe9},
		{"AltRight", "Alt", 0xffea},
		{"AltRight", "AltGraph", 0xfe03},
		{"MetaLeft", "Meta", 0xffeb},
		{"MetaRight", "Meta", 0xffec},
		{"OSLeft", "OS", 0xffeb},
		{"", "AltGraph", 0xfe03},
		{"", "Meta", 0xffeb},
		// Numpad by code and key.
		{"Numpad0", "0", 0xffb0},
		{"Numpad7", "7", 0xffb7},
		{"Numpad7", "Home", 0xff95},
		{"Numpad1", "End", 0xff9c},
		{"Numpad5", "Clear", 0xff9d},
		{"Numpad0", "Insert", 0xff9e},
		{"NumpadDecimal", ".", 0xffae},
		{"NumpadDecimal", ",", 0xffac},
		{"NumpadDecimal", "Delete", 0xff9f},
		{"NumpadEnter", "Enter", 0xff8d},
		{"NumpadAdd", "+", 0xffab},
		{"NumpadDivide", "/", 0xffaf},
		{"Digit7", "7", 0x37}, // not on the numpad
		// Dead keys.
		{"BracketLeft", "Dead", 0},
		{"BracketLeft", "\u0302", 0xfe52}, // dead_circumflex
		{"Equal", "\u0301", 0xfe51},       // dead_acute
		{"Backquote", "\u0300", 0xfe50},   // dead_grave
		// Fallback to the US keysym of Code.
		{"KeyQ", "Unidentified", 0x71},
		{"KeyQ", "", 0x71},
		{"Enter", "", 0xff0d},
		{"Numpad7", "", 0xffb7},
		{"ShiftRight", "Unidentified", 0xffe2},
		{"Slash", "", 0x2f},
		// Nothing to send.
		{"", "", 0},
		{"Fn", "Unidentified", 0},
		{"KeyA", "ab", 0},
		{"KeyA", "Process", 0},
		{"KeyA", "\xff", 0},
		{"KeyA", "\x00", 0},
	}
	for _, tt := range tests {
		got, ok := Keysym(KeyEvent{Code: tt.code, Key: tt.key, Down: true})
		if tt.want == 0 {
			if ok {
				t.Errorf("Keysym(%q, %q) = %#x, true; want false", tt.code, tt.key, got)
			}
			continue
		}
		if !ok || got != tt.want {
			t.Errorf("Keysym(%q, %q) = %#x, %v; want %#x, true", tt.code, tt.key, got, ok, tt.want)
		}
	}
}

// TestKeysymFallbackCoversXT checks that every key with a scancode can be
// sent to a keysym server even when the browser does not identify it.
func TestKeysymFallbackCoversXT(t *testing.T) {
	for code := range xtScancodes {
		if _, ok := USKey(code); !ok {
			t.Errorf("USKey(%q) missing", code)
		}
		if _, ok := Keysym(KeyEvent{Code: code, Key: "Unidentified"}); !ok {
			t.Errorf("Keysym(%q, Unidentified) not ok", code)
		}
	}
}

func TestKeysymForRune(t *testing.T) {
	tests := []struct {
		r    rune
		want uint32
	}{
		{'a', 0x61},
		{'~', 0x7e},
		{' ', 0x20},
		{'\u00a0', 0xa0},
		{'é', 0xe9},
		{'ÿ', 0xff},
		{'€', 0x20ac}, // the legacy EuroSign keysym, not 0x10020ac
		{'ł', 0x1000142},
		{'中', 0x1004e2d},
		{'😀', 0x101f600},
		{'\n', 0xff0d},
		{'\r', 0xff0d},
		{'\t', 0xff09},
		{'\b', 0xff08},
		{0x1b, 0xff1b},
		{0x7f, 0xffff},
		{0, 0},
		{0x01, 0},
		{0x85, 0},
		{-1, 0},
		{0xd800, 0},
		{0x110000, 0},
	}
	for _, tt := range tests {
		if got := KeysymForRune(tt.r); got != tt.want {
			t.Errorf("KeysymForRune(%U) = %#x, want %#x", tt.r, got, tt.want)
		}
	}
}
