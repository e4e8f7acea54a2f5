package rfbserver

import (
	"strconv"
	"strings"

	"kvmgate/input"
)

// This file turns X11 keysyms, which plain RFB key events carry, into
// KeyboardEvent-style key and code names. Code is the physical key that
// produces the keysym on a US keyboard; it is a guess for layouts that differ,
// which is why QEMU extended key events, carrying the real key, are better.

// namedKey is a non-character keysym's KeyboardEvent.key and .code.
type namedKey struct{ key, code string }

// namedKeysyms maps function and modifier keysyms (0xff00 page and a few
// ISO ones) to their key and code names.
var namedKeysyms = map[uint32]namedKey{
	0xff08: {"Backspace", "Backspace"}, 0xff09: {"Tab", "Tab"}, 0xfe20: {"Tab", "Tab"},
	0xff0d: {"Enter", "Enter"}, 0xff1b: {"Escape", "Escape"}, 0xffff: {"Delete", "Delete"},
	0xff13: {"Pause", "Pause"}, 0xff14: {"ScrollLock", "ScrollLock"}, 0xff15: {"SysReq", "PrintScreen"},
	0xff61: {"PrintScreen", "PrintScreen"}, 0xff63: {"Insert", "Insert"}, 0xff67: {"ContextMenu", "ContextMenu"},
	0xff6b: {"Pause", "Pause"},
	0xff50: {"Home", "Home"}, 0xff51: {"ArrowLeft", "ArrowLeft"}, 0xff52: {"ArrowUp", "ArrowUp"},
	0xff53: {"ArrowRight", "ArrowRight"}, 0xff54: {"ArrowDown", "ArrowDown"}, 0xff55: {"PageUp", "PageUp"},
	0xff56: {"PageDown", "PageDown"}, 0xff57: {"End", "End"},
	0xff7f: {"NumLock", "NumLock"}, 0xffe5: {"CapsLock", "CapsLock"},
	0xffe1: {"Shift", "ShiftLeft"}, 0xffe2: {"Shift", "ShiftRight"},
	0xffe3: {"Control", "ControlLeft"}, 0xffe4: {"Control", "ControlRight"},
	0xffe7: {"Meta", "MetaLeft"}, 0xffe8: {"Meta", "MetaRight"},
	0xffe9: {"Alt", "AltLeft"}, 0xffea: {"Alt", "AltRight"},
	0xffeb: {"Meta", "MetaLeft"}, 0xffec: {"Meta", "MetaRight"},
	0xfe03: {"AltGraph", "AltRight"},
	// Keypad.
	0xff8d: {"Enter", "NumpadEnter"}, 0xffaa: {"*", "NumpadMultiply"}, 0xffab: {"+", "NumpadAdd"},
	0xffac: {",", "NumpadComma"}, 0xffad: {"-", "NumpadSubtract"}, 0xffae: {".", "NumpadDecimal"},
	0xffaf: {"/", "NumpadDivide"}, 0xffbd: {"=", "NumpadEqual"},
	0xff95: {"Home", "Numpad7"}, 0xff96: {"ArrowLeft", "Numpad4"}, 0xff97: {"ArrowUp", "Numpad8"},
	0xff98: {"ArrowRight", "Numpad6"}, 0xff99: {"ArrowDown", "Numpad2"}, 0xff9a: {"PageUp", "Numpad9"},
	0xff9b: {"PageDown", "Numpad3"}, 0xff9c: {"End", "Numpad1"}, 0xff9d: {"Clear", "Numpad5"},
	0xff9e: {"Insert", "Numpad0"}, 0xff9f: {"Delete", "NumpadDecimal"},
}

// usPunct lists the US layout's punctuation keys: the unshifted and the
// shifted character of each, in the order of usPunctCodes.
const (
	usPunct        = "`-=[]\\;',./"
	usPunctShifted = "~_+{}|:\"<>?"
	usDigitShifted = ")!@#$%^&*("
)

var usPunctCodes = [...]string{
	"Backquote", "Minus", "Equal", "BracketLeft", "BracketRight", "Backslash",
	"Semicolon", "Quote", "Comma", "Period", "Slash",
}

// keyEventFromKeysym returns the KeyEvent for an RFB key event.
func keyEventFromKeysym(ks uint32, down bool) input.KeyEvent {
	ev := input.KeyEvent{Down: down}
	switch {
	case ks >= 0x20 && ks <= 0x7e:
		ev.Key = string(rune(ks))
		ev.Code = usCode(byte(ks))
	case ks >= 0xa0 && ks <= 0xff:
		ev.Key = string(rune(ks))
	case ks >= 0xffbe && ks <= 0xffd5: // F1..F24
		ev.Key = "F" + strconv.Itoa(int(ks-0xffbe)+1)
		ev.Code = ev.Key
	case ks >= 0xffb0 && ks <= 0xffb9: // KP_0..KP_9
		ev.Key = string(rune('0' + ks - 0xffb0))
		ev.Code = "Numpad" + ev.Key
	case ks >= 0x01000100 && ks <= 0x0110ffff: // Unicode keysyms
		ev.Key = string(rune(ks - 0x01000000))
	case ks >= 0xfe50 && ks <= 0xfe8f:
		ev.Key = "Dead"
	default:
		if n, ok := namedKeysyms[ks]; ok {
			ev.Key, ev.Code = n.key, n.code
		} else {
			ev.Key = "Unidentified"
		}
	}
	return ev
}

// usCode returns the code of the key producing ASCII character c on a US
// keyboard.
func usCode(c byte) string {
	switch {
	case c >= 'a' && c <= 'z':
		return "Key" + string(rune(c-'a'+'A'))
	case c >= 'A' && c <= 'Z':
		return "Key" + string(rune(c))
	case c >= '0' && c <= '9':
		return "Digit" + string(rune(c))
	case c == ' ':
		return "Space"
	}
	if i := strings.IndexByte(usDigitShifted, c); i >= 0 {
		return "Digit" + string(rune('0'+i))
	}
	if i := strings.IndexByte(usPunct, c); i >= 0 {
		return usPunctCodes[i]
	}
	if i := strings.IndexByte(usPunctShifted, c); i >= 0 {
		return usPunctCodes[i]
	}
	return ""
}
