package input

import (
	"bytes"
	"fmt"
	"testing"
)

func TestXTScancode(t *testing.T) {
	tests := []struct {
		code string
		want uint16
	}{
		{"KeyA", 0x1e},
		{"KeyZ", 0x2c},
		{"Digit1", 0x02},
		{"Digit0", 0x0b},
		{"Enter", 0x1c},
		{"Escape", 0x01},
		{"Backspace", 0x0e},
		{"Space", 0x39},
		{"F1", 0x3b},
		{"F10", 0x44},
		{"F11", 0x57},
		{"F12", 0x58},
		{"IntlBackslash", 0x56},
		{"IntlRo", 0x73},
		{"IntlYen", 0x7d},
		{"Lang1", 0xf2},
		{"Lang2", 0xf1},
		{"NumLock", 0x45},
		{"ScrollLock", 0x46},
		{"NumpadMultiply", 0x37},
		{"Numpad7", 0x47},
		{"Numpad0", 0x52},
		{"NumpadDecimal", 0x53},
		{"ArrowUp", 0xe048},
		{"ArrowDown", 0xe050},
		{"ArrowLeft", 0xe04b},
		{"ArrowRight", 0xe04d},
		{"Insert", 0xe052},
		{"Delete", 0xe053},
		{"Home", 0xe047},
		{"End", 0xe04f},
		{"PageUp", 0xe049},
		{"PageDown", 0xe051},
		{"NumpadEnter", 0xe01c},
		{"NumpadDivide", 0xe035},
		{"ControlRight", 0xe01d},
		{"AltRight", 0xe038},
		{"MetaLeft", 0xe05b},
		{"MetaRight", 0xe05c},
		{"ContextMenu", 0xe05d},
		{"PrintScreen", 0xe037},
		{"Pause", 0xe046},
		{"AudioVolumeMute", 0xe020},
		{"AudioVolumeDown", 0xe02e},
		{"AudioVolumeUp", 0xe030},
		{"Power", 0xe05e},
		{"Sleep", 0xe05f},
		{"WakeUp", 0xe063},
		{"OSLeft", 0xe05b},     // old Firefox name
		{"VolumeMute", 0xe020}, // old name
	}
	for _, tt := range tests {
		got, ok := XTScancode(tt.code)
		if !ok || got != tt.want {
			t.Errorf("XTScancode(%q) = %#x, %v; want %#x, true", tt.code, got, ok, tt.want)
		}
	}
}

func TestUnknownCodes(t *testing.T) {
	for _, code := range []string{"", "keya", "KeyAA", "Fn", "FnLock", "F25", "Unidentified", "Digit10", "Numpad", "Key"} {
		if v, ok := XTScancode(code); ok {
			t.Errorf("XTScancode(%q) = %#x, true; want false", code, v)
		}
		if v, ok := QEMUKeycode(code); ok {
			t.Errorf("QEMUKeycode(%q) = %#x, true; want false", code, v)
		}
		if b := SetOneBytes(code, true); b != nil {
			t.Errorf("SetOneBytes(%q, true) = % x; want nil", code, b)
		}
		if v, ok := HIDUsage(code); ok {
			t.Errorf("HIDUsage(%q) = %#x, true; want false", code, v)
		}
		if v, ok := HIDModifierBit(code); ok {
			t.Errorf("HIDModifierBit(%q) = %#x, true; want false", code, v)
		}
		if k, ok := USKey(code); ok {
			t.Errorf("USKey(%q) = %q, true; want false", code, k)
		}
	}
}

func TestXTScancodesWellFormed(t *testing.T) {
	seen := make(map[uint16]string)
	for code, sc := range xtScancodes {
		if prev, dup := seen[sc]; dup {
			t.Errorf("%s and %s share scancode %#x", code, prev, sc)
		}
		seen[sc] = code
		switch hi := sc >> 8; {
		case hi == 0xe0:
			if sc&0xff >= 0x80 {
				t.Errorf("%s: E0 scancode %#x has bit 7 set in its second byte", code, sc)
			}
		case hi != 0:
			t.Errorf("%s: scancode %#x has prefix %#x, want none or E0", code, sc, hi)
		case sc >= 0x80 && code != "Lang1" && code != "Lang2":
			t.Errorf("%s: one-byte scancode %#x has bit 7 set", code, sc)
		}
	}
}

func TestQEMUKeycode(t *testing.T) {
	tests := []struct {
		code string
		want uint32
	}{
		{"KeyA", 0x1e},
		{"Enter", 0x1c},
		{"ArrowUp", 0xc8},
		{"ArrowRight", 0xcd}, // the example in rfbproto.rst
		{"ArrowLeft", 0xcb},
		{"Delete", 0xd3},
		{"ControlRight", 0x9d},
		{"AltRight", 0xb8},
		{"MetaLeft", 0xdb},
		{"NumpadEnter", 0x9c},
		{"NumpadDivide", 0xb5},
		{"PrintScreen", 0x54},
		{"Pause", 0xc6},
		{"Lang1", 0x72},
		{"Lang2", 0x71},
		{"AudioVolumeMute", 0xa0},
		{"F17", 0x83},
	}
	for _, tt := range tests {
		got, ok := QEMUKeycode(tt.code)
		if !ok || got != tt.want {
			t.Errorf("QEMUKeycode(%q) = %#x, %v; want %#x, true", tt.code, got, ok, tt.want)
		}
	}
}

func TestQEMUKeycodeRoundTrip(t *testing.T) {
	seen := make(map[uint32]string)
	for code := range xtScancodes {
		k, ok := QEMUKeycode(code)
		if !ok {
			t.Fatalf("QEMUKeycode(%q) not ok for a code in the XT table", code)
		}
		if k > 0xff {
			t.Errorf("QEMUKeycode(%q) = %#x, want one byte", code, k)
		}
		if prev, dup := seen[k]; dup {
			t.Errorf("%s and %s share QEMU keycode %#x", code, prev, k)
		}
		seen[k] = code
		back, ok := CodeForQEMUKeycode(k)
		if !ok || back != code {
			t.Errorf("CodeForQEMUKeycode(%#x) = %q, %v; want %q", k, back, ok, code)
		}
	}
	if code, ok := CodeForQEMUKeycode(0xb7); !ok || code != "PrintScreen" {
		t.Errorf("CodeForQEMUKeycode(0xb7) = %q, %v; want PrintScreen", code, ok)
	}
	for _, k := range []uint32{0, 0x7f, 0xff, 0x100, 0xe048} {
		if code, ok := CodeForQEMUKeycode(k); ok {
			t.Errorf("CodeForQEMUKeycode(%#x) = %q, true; want false", k, code)
		}
	}
}

func TestSetOneBytes(t *testing.T) {
	tests := []struct {
		code string
		down bool
		want []byte
	}{
		{"KeyA", true, []byte{0x1e}},
		{"KeyA", false, []byte{0x9e}},
		{"Escape", false, []byte{0x81}},
		{"ArrowRight", true, []byte{0xe0, 0x4d}},
		{"ArrowRight", false, []byte{0xe0, 0xcd}},
		{"ControlRight", false, []byte{0xe0, 0x9d}},
		{"MetaLeft", true, []byte{0xe0, 0x5b}},
		{"PrintScreen", true, []byte{0xe0, 0x2a, 0xe0, 0x37}},
		{"PrintScreen", false, []byte{0xe0, 0xb7, 0xe0, 0xaa}},
		{"Pause", true, []byte{0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5}},
		{"Pause", false, nil},
		{"Lang1", true, []byte{0xf2}},
		{"Lang1", false, nil},
		{"Lang2", true, []byte{0xf1}},
		{"NumLock", true, []byte{0x45}},
		{"NumLock", false, []byte{0xc5}},
	}
	for _, tt := range tests {
		got := SetOneBytes(tt.code, tt.down)
		if !bytes.Equal(got, tt.want) {
			t.Errorf("SetOneBytes(%q, %v) = % x; want % x", tt.code, tt.down, got, tt.want)
		}
	}
}

// TestSetOneBytesMatchesXT checks that the ordinary keys' byte sequences
// decode back to their scancodes.
func TestSetOneBytesMatchesXT(t *testing.T) {
	special := map[string]bool{"PrintScreen": true, "Pause": true, "Lang1": true, "Lang2": true}
	for code, sc := range xtScancodes {
		if special[code] {
			continue
		}
		for _, down := range []bool{true, false} {
			b := SetOneBytes(code, down)
			var got uint16
			switch len(b) {
			case 1:
				got = uint16(b[0])
			case 2:
				if b[0] != 0xe0 {
					t.Errorf("SetOneBytes(%q, %v) = % x: want E0 prefix", code, down, b)
				}
				got = 0xe000 | uint16(b[1])
			default:
				t.Errorf("SetOneBytes(%q, %v) = % x: want 1 or 2 bytes", code, down, b)
				continue
			}
			want := sc
			if !down {
				want |= 0x80
			}
			if got != want {
				t.Errorf("SetOneBytes(%q, %v) = % x; want scancode %#x", code, down, b, want)
			}
		}
	}
}

func ExampleSetOneBytes() {
	fmt.Printf("% x\n", SetOneBytes("ArrowUp", true))
	fmt.Printf("% x\n", SetOneBytes("ArrowUp", false))
	// Output:
	// e0 48
	// e0 c8
}
