package input

// This file maps KeyboardEvent.code values to PC scancode set 1 (the "XT"
// scancodes a PS/2 keyboard delivers after the i8042 translation), to the
// keycodes of QEMU's RFB extended key event, and to raw set-1 byte sequences.
//
// The values follow what QEMU understands (its "qnum" key numbers, which
// SPICE and QEMU's VNC server both go through), so that a key sent to a QEMU
// guest arrives as the same key. For the common keys this is the plain IBM
// set 1. For the rarer keys whose set-1 code was never standardised (F13-F24,
// some Japanese and Korean keys) it is the numbering QEMU and Linux use,
// which differs from Microsoft's scancode table for F13-F24.

// xtScancodes maps KeyboardEvent.code to the set-1 make code. Keys sent with
// an E0 prefix are stored as 0xE0xx.
var xtScancodes = map[string]uint16{
	// Writing system keys.
	"Backquote":     0x29,
	"Backslash":     0x2b,
	"BracketLeft":   0x1a,
	"BracketRight":  0x1b,
	"Comma":         0x33,
	"Digit0":        0x0b,
	"Digit1":        0x02,
	"Digit2":        0x03,
	"Digit3":        0x04,
	"Digit4":        0x05,
	"Digit5":        0x06,
	"Digit6":        0x07,
	"Digit7":        0x08,
	"Digit8":        0x09,
	"Digit9":        0x0a,
	"Equal":         0x0d,
	"IntlBackslash": 0x56,
	"IntlRo":        0x73,
	"IntlYen":       0x7d,
	"KeyA":          0x1e,
	"KeyB":          0x30,
	"KeyC":          0x2e,
	"KeyD":          0x20,
	"KeyE":          0x12,
	"KeyF":          0x21,
	"KeyG":          0x22,
	"KeyH":          0x23,
	"KeyI":          0x17,
	"KeyJ":          0x24,
	"KeyK":          0x25,
	"KeyL":          0x26,
	"KeyM":          0x32,
	"KeyN":          0x31,
	"KeyO":          0x18,
	"KeyP":          0x19,
	"KeyQ":          0x10,
	"KeyR":          0x13,
	"KeyS":          0x1f,
	"KeyT":          0x14,
	"KeyU":          0x16,
	"KeyV":          0x2f,
	"KeyW":          0x11,
	"KeyX":          0x2d,
	"KeyY":          0x15,
	"KeyZ":          0x2c,
	"Minus":         0x0c,
	"Period":        0x34,
	"Quote":         0x28,
	"Semicolon":     0x27,
	"Slash":         0x35,

	// Functional keys.
	"AltLeft":      0x38,
	"AltRight":     0xe038,
	"Backspace":    0x0e,
	"CapsLock":     0x3a,
	"ContextMenu":  0xe05d,
	"ControlLeft":  0x1d,
	"ControlRight": 0xe01d,
	"Enter":        0x1c,
	"MetaLeft":     0xe05b,
	"MetaRight":    0xe05c,
	"ShiftLeft":    0x2a,
	"ShiftRight":   0x36,
	"Space":        0x39,
	"Tab":          0x0f,
	"Convert":      0x79,
	"KanaMode":     0x70,
	"NonConvert":   0x7b,
	"Lang1":        0xf2, // Hangul/English; make only, no break code
	"Lang2":        0xf1, // Hanja; make only, no break code
	"Lang3":        0x78, // Katakana
	"Lang4":        0x77, // Hiragana
	"Lang5":        0x76, // Zenkaku/Hankaku

	// Control pad and arrows.
	"Delete":     0xe053,
	"End":        0xe04f,
	"Home":       0xe047,
	"Insert":     0xe052,
	"PageDown":   0xe051,
	"PageUp":     0xe049,
	"ArrowDown":  0xe050,
	"ArrowLeft":  0xe04b,
	"ArrowRight": 0xe04d,
	"ArrowUp":    0xe048,

	// Numpad.
	"NumLock":        0x45,
	"Numpad0":        0x52,
	"Numpad1":        0x4f,
	"Numpad2":        0x50,
	"Numpad3":        0x51,
	"Numpad4":        0x4b,
	"Numpad5":        0x4c,
	"Numpad6":        0x4d,
	"Numpad7":        0x47,
	"Numpad8":        0x48,
	"Numpad9":        0x49,
	"NumpadAdd":      0x4e,
	"NumpadComma":    0x7e,
	"NumpadDecimal":  0x53,
	"NumpadDivide":   0xe035,
	"NumpadEnter":    0xe01c,
	"NumpadEqual":    0x59,
	"NumpadMultiply": 0x37,
	"NumpadSubtract": 0x4a,

	// Function section.
	"Escape":      0x01,
	"F1":          0x3b,
	"F2":          0x3c,
	"F3":          0x3d,
	"F4":          0x3e,
	"F5":          0x3f,
	"F6":          0x40,
	"F7":          0x41,
	"F8":          0x42,
	"F9":          0x43,
	"F10":         0x44,
	"F11":         0x57,
	"F12":         0x58,
	"F13":         0x5d,
	"F14":         0x5e,
	"F15":         0x5f,
	"F16":         0x55,
	"F17":         0xe003,
	"F18":         0xe077,
	"F19":         0xe004,
	"F20":         0x5a,
	"F21":         0x74,
	"F22":         0xe079,
	"F23":         0x6d,
	"F24":         0x6f,
	"PrintScreen": 0xe037,
	"ScrollLock":  0x46,
	// Pause really sends E1 1D 45 E1 9D C5 (see SetOneBytes); E0 46 is the
	// conventional one-code stand-in QEMU and Linux use for it.
	"Pause": 0xe046,

	// Media, browser and power keys.
	"AudioVolumeDown":    0xe02e,
	"AudioVolumeMute":    0xe020,
	"AudioVolumeUp":      0xe030,
	"BrowserBack":        0xe06a,
	"BrowserFavorites":   0xe066,
	"BrowserForward":     0xe069,
	"BrowserHome":        0xe032,
	"BrowserRefresh":     0xe067,
	"BrowserSearch":      0xe065,
	"BrowserStop":        0xe068,
	"LaunchApp1":         0xe06b, // "My Computer"
	"LaunchApp2":         0xe021, // Calculator
	"LaunchMail":         0xe06c,
	"MediaPlayPause":     0xe022,
	"MediaSelect":        0xe06d,
	"MediaStop":          0xe024,
	"MediaTrackNext":     0xe019,
	"MediaTrackPrevious": 0xe010,
	"Power":              0xe05e,
	"Sleep":              0xe05f,
	"WakeUp":             0xe063,
}

// codeAliases maps KeyboardEvent.code names that older browsers sent to the
// names of the current specification.
var codeAliases = map[string]string{
	"OSLeft":     "MetaLeft",
	"OSRight":    "MetaRight",
	"VolumeMute": "AudioVolumeMute",
	"VolumeDown": "AudioVolumeDown",
	"VolumeUp":   "AudioVolumeUp",
}

// canonicalCode returns the current specification's name for code.
func canonicalCode(code string) string {
	if c, ok := codeAliases[code]; ok {
		return c
	}
	return code
}

// XTScancode returns the PC scancode set 1 make code for a KeyboardEvent.code.
// Keys sent with an E0 prefix are returned as 0xE0xx (ArrowUp is 0xE048).
// Pause, whose real make sequence is E1 1D 45 E1 9D C5, is returned as its
// conventional stand-in 0xE046; Lang1 and Lang2 are the make-only codes 0xF2
// and 0xF1. The result is false for codes a PC keyboard does not have.
func XTScancode(code string) (uint16, bool) {
	sc, ok := xtScancodes[canonicalCode(code)]
	return sc, ok
}

// QEMUKeycode returns the keycode field of an RFB QEMU Extended Key Event
// for a KeyboardEvent.code. It is the XT scancode with the E0 prefix folded
// into the high bit of one byte (E0 48 becomes 0xC8), as rfbproto.rst
// specifies and QEMU decodes. PrintScreen is 0x54 (its SysRq code, which
// QEMU prefers), Pause 0xC6, and Lang1 and Lang2 0x72 and 0x71, the numbers
// QEMU has always used for them.
func QEMUKeycode(code string) (uint32, bool) {
	code = canonicalCode(code)
	sc, ok := xtScancodes[code]
	if !ok {
		return 0, false
	}
	switch {
	case code == "PrintScreen":
		return 0x54, true
	case code == "Lang1" || code == "Lang2":
		return uint32(sc & 0x7f), true
	case sc&0xff00 == 0xe000:
		return 0x80 | uint32(sc&0x7f), true
	default:
		return uint32(sc), true
	}
}

// qemuCodes maps QEMU keycodes back to KeyboardEvent.code; built at init.
var qemuCodes = func() map[uint32]string {
	m := make(map[uint32]string, len(xtScancodes)+1)
	for code := range xtScancodes {
		k, _ := QEMUKeycode(code)
		m[k] = code
	}
	m[0xb7] = "PrintScreen" // the E0 37 form older clients send
	return m
}()

// CodeForQEMUKeycode returns the KeyboardEvent.code for the keycode of a QEMU
// Extended Key Event, the inverse of QEMUKeycode. An RFB server facing
// viewers such as noVNC can use it to turn their key events into KeyEvents.
func CodeForQEMUKeycode(keycode uint32) (string, bool) {
	code, ok := qemuCodes[keycode]
	return code, ok
}

// SetOneBytes returns the raw scancode set 1 bytes a PC keyboard sends when
// the key with the given KeyboardEvent.code goes down (down true) or up. A
// plain key sends its code on make and the code with bit 7 set on break; an
// E0 key sends the same behind an E0 byte. PrintScreen sends E0 2A E0 37 and
// E0 B7 E0 AA; Pause sends E1 1D 45 E1 9D C5 on make and nothing on break;
// Lang1 and Lang2 send F2 and F1 on make and nothing on break. The result is
// nil for unknown codes and for breaks that send nothing.
func SetOneBytes(code string, down bool) []byte {
	code = canonicalCode(code)
	sc, ok := xtScancodes[code]
	if !ok {
		return nil
	}
	switch code {
	case "PrintScreen":
		if down {
			return []byte{0xe0, 0x2a, 0xe0, 0x37}
		}
		return []byte{0xe0, 0xb7, 0xe0, 0xaa}
	case "Pause":
		if down {
			return []byte{0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5}
		}
		return nil
	case "Lang1", "Lang2":
		if down {
			return []byte{byte(sc)}
		}
		return nil
	}
	b := byte(sc)
	if !down {
		b |= 0x80
	}
	if sc&0xff00 == 0xe000 {
		return []byte{0xe0, b}
	}
	return []byte{b}
}
