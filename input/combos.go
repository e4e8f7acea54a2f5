package input

import "strings"

// This file defines the named key combinations the toolbar offers, the keys
// a browser tab cannot send itself (Ctrl+Alt+Del and kin).

// ComboInfo names a key combination for a menu.
type ComboInfo struct {
	Name  string // the name Combo takes, e.g. "ctrl-alt-del"
	Label string // a short label for people, e.g. "Ctrl+Alt+Del"
}

// combo is a named combination: the keys pressed, in order.
type combo struct {
	info  ComboInfo
	codes []string
}

// combos lists the combinations in menu order.
var combos = func() []combo {
	cs := []combo{
		{ComboInfo{"ctrl-alt-del", "Ctrl+Alt+Del"}, []string{"ControlLeft", "AltLeft", "Delete"}},
		{ComboInfo{"ctrl-alt-backspace", "Ctrl+Alt+Backspace"}, []string{"ControlLeft", "AltLeft", "Backspace"}},
	}
	for i := 1; i <= 12; i++ {
		f := "F" + itoa(i)
		cs = append(cs, combo{
			ComboInfo{"ctrl-alt-" + strings.ToLower(f), "Ctrl+Alt+" + f},
			[]string{"ControlLeft", "AltLeft", f},
		})
	}
	cs = append(cs,
		combo{ComboInfo{"alt-tab", "Alt+Tab"}, []string{"AltLeft", "Tab"}},
		combo{ComboInfo{"alt-f2", "Alt+F2"}, []string{"AltLeft", "F2"}},
		combo{ComboInfo{"alt-f4", "Alt+F4"}, []string{"AltLeft", "F4"}},
		combo{ComboInfo{"win", "Windows key"}, []string{"MetaLeft"}},
		combo{ComboInfo{"esc", "Esc"}, []string{"Escape"}},
		combo{ComboInfo{"ctrl-esc", "Ctrl+Esc"}, []string{"ControlLeft", "Escape"}},
		combo{ComboInfo{"printscreen", "Print Screen"}, []string{"PrintScreen"}},
		combo{ComboInfo{"sysrq", "SysRq (Alt+PrintScreen)"}, []string{"AltLeft", "PrintScreen"}},
	)
	// A few magic SysRq commands worth a menu entry; Combo accepts
	// "alt-sysrq-" with any letter or digit.
	for _, c := range []struct{ key, what string }{
		{"h", "help"}, {"s", "sync"}, {"u", "remount read-only"}, {"b", "reboot"},
	} {
		cs = append(cs, combo{
			ComboInfo{"alt-sysrq-" + c.key, "Alt+SysRq+" + strings.ToUpper(c.key) + " (" + c.what + ")"},
			sysrqCodes(c.key),
		})
	}
	return cs
}()

// sysrqCodes returns the keys of Linux's magic SysRq with the given command
// key, which must be one letter or digit, or nil.
func sysrqCodes(key string) []string {
	if len(key) != 1 {
		return nil
	}
	c := key[0]
	var code string
	switch {
	case c >= 'a' && c <= 'z':
		code = "Key" + string(c-'a'+'A')
	case c >= '0' && c <= '9':
		code = "Digit" + string(c)
	default:
		return nil
	}
	return []string{"AltLeft", "PrintScreen", code}
}

// Combos lists the named key combinations for a toolbar menu, in menu order.
// Combo also accepts "alt-sysrq-" followed by any letter a-z or digit 0-9.
func Combos() []ComboInfo {
	out := make([]ComboInfo, len(combos))
	for i, c := range combos {
		out[i] = c.info
	}
	return out
}

// Combo returns the key events of a named combination: its keys pressed in
// order, then released in reverse order. Names are those of Combos plus
// "alt-sysrq-<letter or digit>" (Linux's magic SysRq: Alt, PrintScreen and
// the command key). The result is false for unknown names.
func Combo(name string) ([]KeyEvent, bool) {
	var codes []string
	for _, c := range combos {
		if c.info.Name == name {
			codes = c.codes
			break
		}
	}
	if codes == nil {
		if rest, ok := strings.CutPrefix(name, "alt-sysrq-"); ok {
			codes = sysrqCodes(rest)
		}
	}
	if codes == nil {
		return nil, false
	}
	evs := make([]KeyEvent, 0, 2*len(codes))
	for _, code := range codes {
		evs = append(evs, KeyEvent{Code: code, Key: usKeys[code], Down: true})
	}
	for i := len(codes) - 1; i >= 0; i-- {
		evs = append(evs, KeyEvent{Code: codes[i], Key: usKeys[codes[i]]})
	}
	return evs, true
}
