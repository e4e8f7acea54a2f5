package input

// This file maps KeyboardEvent.code values to USB HID usages of the
// Keyboard/Keypad page (0x07), as BMC virtual keyboards want them, and keeps
// the state of an 8-byte boot-protocol keyboard report.

// hidUsages maps KeyboardEvent.code to its usage ID on HID page 0x07.
var hidUsages = map[string]uint8{
	"KeyA": 0x04, "KeyB": 0x05, "KeyC": 0x06, "KeyD": 0x07, "KeyE": 0x08,
	"KeyF": 0x09, "KeyG": 0x0a, "KeyH": 0x0b, "KeyI": 0x0c, "KeyJ": 0x0d,
	"KeyK": 0x0e, "KeyL": 0x0f, "KeyM": 0x10, "KeyN": 0x11, "KeyO": 0x12,
	"KeyP": 0x13, "KeyQ": 0x14, "KeyR": 0x15, "KeyS": 0x16, "KeyT": 0x17,
	"KeyU": 0x18, "KeyV": 0x19, "KeyW": 0x1a, "KeyX": 0x1b, "KeyY": 0x1c,
	"KeyZ": 0x1d,

	"Digit1": 0x1e, "Digit2": 0x1f, "Digit3": 0x20, "Digit4": 0x21,
	"Digit5": 0x22, "Digit6": 0x23, "Digit7": 0x24, "Digit8": 0x25,
	"Digit9": 0x26, "Digit0": 0x27,

	"Enter":     0x28,
	"Escape":    0x29,
	"Backspace": 0x2a,
	"Tab":       0x2b,
	"Space":     0x2c,
	"Minus":     0x2d,
	"Equal":     0x2e,
	// BracketLeft..Slash: the US punctuation keys.
	"BracketLeft":  0x2f,
	"BracketRight": 0x30,
	// Backslash is 0x31; the ISO "#~" key in the same place (0x32, Keyboard
	// Non-US #) is reported by browsers as Backslash too, and hosts treat
	// both usages alike.
	"Backslash": 0x31,
	"Semicolon": 0x33,
	"Quote":     0x34,
	"Backquote": 0x35,
	"Comma":     0x36,
	"Period":    0x37,
	"Slash":     0x38,
	"CapsLock":  0x39,

	"F1": 0x3a, "F2": 0x3b, "F3": 0x3c, "F4": 0x3d, "F5": 0x3e, "F6": 0x3f,
	"F7": 0x40, "F8": 0x41, "F9": 0x42, "F10": 0x43, "F11": 0x44, "F12": 0x45,

	"PrintScreen": 0x46,
	"ScrollLock":  0x47,
	"Pause":       0x48,
	"Insert":      0x49,
	"Home":        0x4a,
	"PageUp":      0x4b,
	"Delete":      0x4c,
	"End":         0x4d,
	"PageDown":    0x4e,
	"ArrowRight":  0x4f,
	"ArrowLeft":   0x50,
	"ArrowDown":   0x51,
	"ArrowUp":     0x52,

	"NumLock":        0x53,
	"NumpadDivide":   0x54,
	"NumpadMultiply": 0x55,
	"NumpadSubtract": 0x56,
	"NumpadAdd":      0x57,
	"NumpadEnter":    0x58,
	"Numpad1":        0x59,
	"Numpad2":        0x5a,
	"Numpad3":        0x5b,
	"Numpad4":        0x5c,
	"Numpad5":        0x5d,
	"Numpad6":        0x5e,
	"Numpad7":        0x5f,
	"Numpad8":        0x60,
	"Numpad9":        0x61,
	"Numpad0":        0x62,
	"NumpadDecimal":  0x63,
	"IntlBackslash":  0x64,
	"ContextMenu":    0x65,
	"Power":          0x66,
	"NumpadEqual":    0x67,

	"F13": 0x68, "F14": 0x69, "F15": 0x6a, "F16": 0x6b, "F17": 0x6c,
	"F18": 0x6d, "F19": 0x6e, "F20": 0x6f, "F21": 0x70, "F22": 0x71,
	"F23": 0x72, "F24": 0x73,

	"AudioVolumeMute": 0x7f,
	"AudioVolumeUp":   0x80,
	"AudioVolumeDown": 0x81,
	"NumpadComma":     0x85,
	"IntlRo":          0x87, // Keyboard International1
	"KanaMode":        0x88, // Keyboard International2
	"IntlYen":         0x89, // Keyboard International3
	"Convert":         0x8a, // Keyboard International4
	"NonConvert":      0x8b, // Keyboard International5
	"Lang1":           0x90,
	"Lang2":           0x91,
	"Lang3":           0x92,
	"Lang4":           0x93,
	"Lang5":           0x94,

	"ControlLeft":  0xe0,
	"ShiftLeft":    0xe1,
	"AltLeft":      0xe2,
	"MetaLeft":     0xe3,
	"ControlRight": 0xe4,
	"ShiftRight":   0xe5,
	"AltRight":     0xe6,
	"MetaRight":    0xe7,
}

// HIDUsage returns the USB HID usage ID on the Keyboard/Keypad page (0x07)
// for a KeyboardEvent.code (KeyA is 0x04, Enter 0x28, ControlLeft 0xE0). The
// result is false for unknown codes and for keys that live on other usage
// pages (media and browser keys, Sleep, WakeUp).
func HIDUsage(code string) (uint8, bool) {
	u, ok := hidUsages[canonicalCode(code)]
	return u, ok
}

// HIDModifierBit returns the bit a modifier key sets in byte 0 of a boot
// keyboard report: ControlLeft 0x01, ShiftLeft 0x02, AltLeft 0x04, MetaLeft
// 0x08, and the right-hand keys 0x10, 0x20, 0x40, 0x80. The result is false
// for keys that are not one of these eight modifiers.
func HIDModifierBit(code string) (uint8, bool) {
	u, ok := hidUsages[canonicalCode(code)]
	if !ok || u < 0xe0 || u > 0xe7 {
		return 0, false
	}
	return 1 << (u - 0xe0), true
}

// hidErrorRollOver is the usage a boot report repeats in every key slot when
// more keys are held than it has room for.
const hidErrorRollOver = 0x01

// HIDKeyboard tracks which keys are held and produces USB HID boot-protocol
// keyboard reports from them. Its zero value has no key held. It is not safe
// for concurrent use.
type HIDKeyboard struct {
	mods uint8
	keys []uint8 // held non-modifier usages, in press order
}

// Apply records a key press or release and reports whether the held state
// changed (a repeated press, a release of a key not held and a code without
// a HID usage change nothing).
func (k *HIDKeyboard) Apply(ev KeyEvent) bool {
	if bit, ok := HIDModifierBit(ev.Code); ok {
		old := k.mods
		if ev.Down {
			k.mods |= bit
		} else {
			k.mods &^= bit
		}
		return k.mods != old
	}
	u, ok := HIDUsage(ev.Code)
	if !ok {
		return false
	}
	for i, held := range k.keys {
		if held == u {
			if ev.Down {
				return false
			}
			k.keys = append(k.keys[:i], k.keys[i+1:]...)
			return true
		}
	}
	if !ev.Down {
		return false
	}
	k.keys = append(k.keys, u)
	return true
}

// Reset releases every key.
func (k *HIDKeyboard) Reset() {
	k.mods = 0
	k.keys = k.keys[:0]
}

// Report returns the 8-byte boot keyboard report for the held keys: the
// modifier bits, a reserved byte and up to six usages in press order. With
// more than six keys held every slot holds ErrorRollOver (0x01), as the HID
// specification asks.
func (k *HIDKeyboard) Report() [8]byte {
	var r [8]byte
	r[0] = k.mods
	if len(k.keys) > 6 {
		for i := 2; i < 8; i++ {
			r[i] = hidErrorRollOver
		}
		return r
	}
	copy(r[2:], k.keys)
	return r
}
