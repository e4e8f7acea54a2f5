package input

import (
	"strings"
	"unicode/utf8"
)

// This file turns browser key events into X11 keysyms for RFB servers that
// take plain KeyEvent messages.

// Keysyms used by name elsewhere in the package.
const (
	xkReturn         = 0xff0d
	xkISOLevel3Shift = 0xfe03
)

// namedKeysyms maps KeyboardEvent.key values for non-printing keys to X11
// keysyms (keysymdef.h and XF86keysym.h).
var namedKeysyms = map[string]uint32{
	// Whitespace and editing.
	"Enter":     xkReturn,
	"Tab":       0xff09, // Tab
	"Backspace": 0xff08, // BackSpace
	"Delete":    0xffff, // Delete
	"Insert":    0xff63, // Insert
	"Clear":     0xff0b, // Clear
	"Undo":      0xff65, // Undo
	"Redo":      0xff66, // Redo
	"Again":     0xff66, // Redo
	"Copy":      0x1008ff57,
	"Cut":       0x1008ff58,
	"Paste":     0x1008ff6d,
	"EraseEof":  0xfd06, // 3270_EraseEOF
	"CrSel":     0xfd1c, // 3270_CursorSelect
	"ExSel":     0xfd1b, // 3270_ExSelect

	// Navigation.
	"ArrowLeft":  0xff51,
	"ArrowUp":    0xff52,
	"ArrowRight": 0xff53,
	"ArrowDown":  0xff54,
	"Home":       0xff50,
	"End":        0xff57,
	"PageUp":     0xff55, // Prior
	"PageDown":   0xff56, // Next

	// User interface and device keys.
	"Escape":      0xff1b,
	"ContextMenu": 0xff67, // Menu
	"Pause":       0xff13,
	"PrintScreen": 0xff61, // Print
	"Help":        0xff6a,
	"Find":        0xff68,
	"Cancel":      0xff69,
	"Execute":     0xff62,
	"Select":      0xff60,
	"Attn":        0xfd0e, // 3270_Attn
	"ZoomIn":      0x1008ff8b,
	"ZoomOut":     0x1008ff8c,
	"Open":        0x1008ff6b,
	"Eject":       0x1008ff2c,
	"LogOff":      0x1008ff61,
	"Power":       0x1008ff2a, // XF86PowerOff
	"PowerOff":    0x1008ff2a,
	"WakeUp":      0x1008ff2b,
	"Standby":     0x1008ff2f, // XF86Sleep, what Linux maps the Sleep key to
	"Hibernate":   0x1008ffa8,

	"BrightnessUp":   0x1008ff02, // XF86MonBrightnessUp
	"BrightnessDown": 0x1008ff03,

	// Lock keys and modifiers that are not decided by code.
	"CapsLock":   0xffe5,
	"NumLock":    0xff7f,
	"ScrollLock": 0xff14,
	"AltGraph":   xkISOLevel3Shift,
	"Shift":      0xffe1, // Shift_L
	"Control":    0xffe3, // Control_L
	"Alt":        0xffe9, // Alt_L
	"Meta":       0xffeb, // Super_L: the browser's Meta is the Windows key
	"OS":         0xffeb, // Super_L (older browsers)
	"Super":      0xffeb, // Super_L
	"Hyper":      0xffed, // Hyper_L

	// IME and national keys.
	"Compose":           0xff20, // Multi_key
	"ModeChange":        0xff7e, // Mode_switch
	"GroupNext":         0xfe08, // ISO_Next_Group
	"GroupPrevious":     0xfe0a, // ISO_Prev_Group
	"GroupFirst":        0xfe0c, // ISO_First_Group
	"GroupLast":         0xfe0e, // ISO_Last_Group
	"CodeInput":         0xff37, // Codeinput
	"SingleCandidate":   0xff3c,
	"AllCandidates":     0xff3d, // MultipleCandidate
	"PreviousCandidate": 0xff3e,
	"KanjiMode":         0xff21, // Kanji
	"NonConvert":        0xff22, // Muhenkan
	"Convert":           0xff23, // Henkan
	"Romaji":            0xff24,
	"Hiragana":          0xff25,
	"Katakana":          0xff26,
	"HiraganaKatakana":  0xff27, // Hiragana_Katakana
	"KanaMode":          0xff27, // Hiragana_Katakana
	"Zenkaku":           0xff28,
	"Hankaku":           0xff29,
	"ZenkakuHankaku":    0xff2a, // Zenkaku_Hankaku
	"Eisu":              0xff30, // Eisu_toggle
	"Alphanumeric":      0xff30, // Eisu_toggle
	"HangulMode":        0xff31, // Hangul
	"HanjaMode":         0xff34, // Hangul_Hanja

	// Media and application keys (XF86keysym.h).
	"AudioVolumeDown":    0x1008ff11, // XF86AudioLowerVolume
	"AudioVolumeMute":    0x1008ff12, // XF86AudioMute
	"AudioVolumeUp":      0x1008ff13, // XF86AudioRaiseVolume
	"MediaPlayPause":     0x1008ff14, // XF86AudioPlay
	"MediaPlay":          0x1008ff14, // XF86AudioPlay
	"MediaStop":          0x1008ff15, // XF86AudioStop
	"MediaTrackPrevious": 0x1008ff16, // XF86AudioPrev
	"MediaTrackNext":     0x1008ff17, // XF86AudioNext
	"BrowserHome":        0x1008ff18, // XF86HomePage
	"LaunchMail":         0x1008ff19, // XF86Mail
	"BrowserSearch":      0x1008ff1b, // XF86Search
	"LaunchCalculator":   0x1008ff1d, // XF86Calculator
	"LaunchApplication2": 0x1008ff1d, // XF86Calculator
	"BrowserBack":        0x1008ff26, // XF86Back
	"BrowserForward":     0x1008ff27, // XF86Forward
	"BrowserStop":        0x1008ff28, // XF86Stop
	"BrowserRefresh":     0x1008ff29, // XF86Refresh
	"BrowserFavorites":   0x1008ff30, // XF86Favorites
	"LaunchMediaPlayer":  0x1008ff32, // XF86AudioMedia
	"LaunchMyComputer":   0x1008ff33, // XF86MyComputer
	"LaunchApplication1": 0x1008ff33, // XF86MyComputer
}

// codeKeysyms gives the keysym for keys whose keysym depends on which
// physical key was pressed rather than on what it produced: the modifiers,
// which have distinct left and right keysyms.
var codeKeysyms = map[string]uint32{
	"ShiftLeft":    0xffe1, // Shift_L
	"ShiftRight":   0xffe2, // Shift_R
	"ControlLeft":  0xffe3, // Control_L
	"ControlRight": 0xffe4, // Control_R
	"AltLeft":      0xffe9, // Alt_L
	"AltRight":     0xffea, // Alt_R, or ISO_Level3_Shift when .key is AltGraph
	"MetaLeft":     0xffeb, // Super_L
	"MetaRight":    0xffec, // Super_R
	"CapsLock":     0xffe5, // Caps_Lock
}

// numpadChars maps the characters a numpad key produces with NumLock on to
// the keypad keysyms.
var numpadChars = map[string]uint32{
	"0": 0xffb0, "1": 0xffb1, "2": 0xffb2, "3": 0xffb3, "4": 0xffb4,
	"5": 0xffb5, "6": 0xffb6, "7": 0xffb7, "8": 0xffb8, "9": 0xffb9,
	".": 0xffae, // KP_Decimal
	",": 0xffac, // KP_Separator
	"+": 0xffab, // KP_Add
	"-": 0xffad, // KP_Subtract
	"*": 0xffaa, // KP_Multiply
	"/": 0xffaf, // KP_Divide
	"=": 0xffbd, // KP_Equal
}

// numpadNamed maps the named keys a numpad produces with NumLock off to the
// keypad keysyms.
var numpadNamed = map[string]uint32{
	"Enter":      0xff8d, // KP_Enter
	"Home":       0xff95, // KP_Home
	"ArrowLeft":  0xff96, // KP_Left
	"ArrowUp":    0xff97, // KP_Up
	"ArrowRight": 0xff98, // KP_Right
	"ArrowDown":  0xff99, // KP_Down
	"PageUp":     0xff9a, // KP_Prior
	"PageDown":   0xff9b, // KP_Next
	"End":        0xff9c, // KP_End
	"Clear":      0xff9d, // KP_Begin
	"Insert":     0xff9e, // KP_Insert
	"Delete":     0xff9f, // KP_Delete
}

// deadKeysyms maps combining diacritical marks to dead-key keysyms.
var deadKeysyms = map[rune]uint32{
	'\u0300': 0xfe50, // dead_grave
	'\u0301': 0xfe51, // dead_acute
	'\u0302': 0xfe52, // dead_circumflex
	'\u0303': 0xfe53, // dead_tilde
	'\u0304': 0xfe54, // dead_macron
	'\u0306': 0xfe55, // dead_breve
	'\u0307': 0xfe56, // dead_abovedot
	'\u0308': 0xfe57, // dead_diaeresis
	'\u030a': 0xfe58, // dead_abovering
	'\u030b': 0xfe59, // dead_doubleacute
	'\u030c': 0xfe5a, // dead_caron
	'\u0327': 0xfe5b, // dead_cedilla
	'\u0328': 0xfe5c, // dead_ogonek
	'\u0345': 0xfe5d, // dead_iota
	'\u0323': 0xfe60, // dead_belowdot
}

// usKeys gives, for each KeyboardEvent.code, the KeyboardEvent.key a US
// keyboard produces without modifiers. It is the fallback when the browser
// could not identify the key, and the Key of events this package makes up.
var usKeys = map[string]string{
	"Backquote": "`", "Backslash": "\\", "BracketLeft": "[", "BracketRight": "]",
	"Comma": ",", "Equal": "=", "Minus": "-", "Period": ".", "Quote": "'",
	"Semicolon": ";", "Slash": "/", "Space": " ",
	"IntlBackslash": "\\", "IntlRo": "\\", "IntlYen": "\\",

	"AltLeft": "Alt", "AltRight": "Alt", "ControlLeft": "Control",
	"ControlRight": "Control", "MetaLeft": "Meta", "MetaRight": "Meta",
	"ShiftLeft": "Shift", "ShiftRight": "Shift", "CapsLock": "CapsLock",
	"Backspace": "Backspace", "ContextMenu": "ContextMenu", "Enter": "Enter",
	"Tab": "Tab", "Convert": "Convert", "NonConvert": "NonConvert",
	"KanaMode": "KanaMode", "Lang1": "HangulMode", "Lang2": "HanjaMode",
	"Lang3": "Katakana", "Lang4": "Hiragana", "Lang5": "ZenkakuHankaku",

	"Delete": "Delete", "End": "End", "Home": "Home", "Insert": "Insert",
	"PageDown": "PageDown", "PageUp": "PageUp", "ArrowDown": "ArrowDown",
	"ArrowLeft": "ArrowLeft", "ArrowRight": "ArrowRight", "ArrowUp": "ArrowUp",

	"NumLock": "NumLock", "NumpadAdd": "+", "NumpadComma": ",",
	"NumpadDecimal": ".", "NumpadDivide": "/", "NumpadEnter": "Enter",
	"NumpadEqual": "=", "NumpadMultiply": "*", "NumpadSubtract": "-",

	"Escape": "Escape", "PrintScreen": "PrintScreen", "ScrollLock": "ScrollLock",
	"Pause": "Pause",

	"AudioVolumeDown": "AudioVolumeDown", "AudioVolumeMute": "AudioVolumeMute",
	"AudioVolumeUp": "AudioVolumeUp", "BrowserBack": "BrowserBack",
	"BrowserFavorites": "BrowserFavorites", "BrowserForward": "BrowserForward",
	"BrowserHome": "BrowserHome", "BrowserRefresh": "BrowserRefresh",
	"BrowserSearch": "BrowserSearch", "BrowserStop": "BrowserStop",
	"LaunchApp1": "LaunchApplication1", "LaunchApp2": "LaunchApplication2",
	"LaunchMail": "LaunchMail", "MediaPlayPause": "MediaPlayPause",
	"MediaSelect": "LaunchMediaPlayer", "MediaStop": "MediaStop",
	"MediaTrackNext": "MediaTrackNext", "MediaTrackPrevious": "MediaTrackPrevious",
	"Power": "Power", "Sleep": "Standby", "WakeUp": "WakeUp",
}

func init() {
	for c := 'A'; c <= 'Z'; c++ {
		usKeys["Key"+string(c)] = string(c + 'a' - 'A')
	}
	for c := '0'; c <= '9'; c++ {
		usKeys["Digit"+string(c)] = string(c)
		usKeys["Numpad"+string(c)] = string(c)
	}
	for i := 1; i <= 24; i++ {
		name := "F" + itoa(i)
		usKeys[name] = name
		namedKeysyms[name] = 0xffbe + uint32(i-1) // F1 is 0xffbe, F24 0xffd5
	}
}

// itoa formats a small non-negative integer.
func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// USKey returns the KeyboardEvent.key that the key with the given code
// produces on a US keyboard without modifiers ("KeyA" gives "a", "Enter"
// gives "Enter"). It is false for unknown codes.
func USKey(code string) (string, bool) {
	k, ok := usKeys[canonicalCode(code)]
	return k, ok
}

// Keysym returns the X11 keysym an RFB KeyEvent message should carry for a
// browser key event.
//
// Modifiers are decided by Code, so that left and right keys stay apart
// (ShiftRight gives Shift_R); AltRight gives ISO_Level3_Shift when Key is
// "AltGraph". Numpad keys are decided by Code and Key together: "NumpadN"
// producing a digit gives KP_N, producing "Home" gives KP_Home. Named keys
// come from Key (Enter gives Return 0xff0d, F1 0xffbe, Meta Super_L).
// Printable characters come from Key through KeysymForRune. A Key that is a
// single combining diacritical mark (U+0300-U+036F) gives the matching dead
// key keysym, for clients that learn which accent a dead key carries. A bare
// "Dead" gives false: the browser does not say which accent it is, and the
// character it composes arrives with the next key. When Key is empty or
// "Unidentified" the keysym a US keyboard gives for Code is used.
func Keysym(ev KeyEvent) (uint32, bool) {
	code := canonicalCode(ev.Code)
	key := ev.Key
	if key == "" || key == "Unidentified" {
		k, ok := usKeys[code]
		if !ok {
			return 0, false
		}
		key = k
	}
	if ks, ok := codeKeysyms[code]; ok {
		if code == "AltRight" && key == "AltGraph" {
			return xkISOLevel3Shift, true
		}
		return ks, true
	}
	if strings.HasPrefix(code, "Numpad") {
		if ks, ok := numpadChars[key]; ok {
			return ks, true
		}
		if ks, ok := numpadNamed[key]; ok {
			return ks, true
		}
	}
	if ks, ok := namedKeysyms[key]; ok {
		return ks, true
	}
	r, size := utf8.DecodeRuneInString(key)
	if size != len(key) || r == utf8.RuneError {
		// More than one character (a named key this package does not know,
		// or a composed sequence): nothing sensible to send.
		return 0, false
	}
	if ks, ok := deadKeysyms[r]; ok {
		return ks, true
	}
	ks := KeysymForRune(r)
	return ks, ks != 0
}

// KeysymForRune returns the X11 keysym for a character. Latin-1 characters
// map to themselves ('a' is 0x61, 'é' 0xe9); the euro sign gives the legacy
// keysym EuroSign 0x20ac, which X keymaps use for it; control characters give
// their keys (newline and carriage return give Return, tab Tab, backspace
// BackSpace, escape Escape, DEL Delete); every other character gives the
// Unicode keysym 0x01000000 + code point. Characters with no keysym
// (other C0 and C1 controls, surrogates, invalid runes) give 0, NoSymbol.
func KeysymForRune(r rune) uint32 {
	switch {
	case r == '\n' || r == '\r':
		return xkReturn
	case r == '\t':
		return 0xff09
	case r == '\b':
		return 0xff08
	case r == 0x1b:
		return 0xff1b
	case r == 0x7f:
		return 0xffff
	case r < 0x20 || (r >= 0x80 && r < 0xa0):
		return 0
	case r <= 0xff:
		return uint32(r)
	case r == '€':
		return 0x20ac
	case r > utf8.MaxRune || (r >= 0xd800 && r <= 0xdfff):
		return 0
	default:
		return 0x01000000 | uint32(r)
	}
}
