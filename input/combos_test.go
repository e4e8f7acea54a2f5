package input

import (
	"slices"
	"strings"
	"testing"
)

// comboCodes returns the codes pressed by evs, checking that all presses
// come first and the releases follow in reverse order.
func comboCodes(t *testing.T, name string, evs []KeyEvent) []string {
	t.Helper()
	if len(evs) == 0 || len(evs)%2 != 0 {
		t.Fatalf("Combo(%q): %d events, want a non-zero even number", name, len(evs))
	}
	n := len(evs) / 2
	var codes []string
	for i, ev := range evs {
		if ev.Down != (i < n) {
			t.Fatalf("Combo(%q): event %d %+v: presses must all come before releases", name, i, ev)
		}
		if i < n {
			codes = append(codes, ev.Code)
			continue
		}
		if want := evs[2*n-1-i]; ev.Code != want.Code || ev.Key != want.Key {
			t.Fatalf("Combo(%q): release %d is %q, want %q (reverse order)", name, i-n, ev.Code, want.Code)
		}
	}
	return codes
}

func TestCombosReleaseWhatTheyPress(t *testing.T) {
	infos := Combos()
	seen := make(map[string]bool)
	for _, info := range infos {
		if seen[info.Name] {
			t.Errorf("combo %q listed twice", info.Name)
		}
		seen[info.Name] = true
		if info.Label == "" {
			t.Errorf("combo %q has no label", info.Name)
		}
		evs, ok := Combo(info.Name)
		if !ok {
			t.Errorf("Combo(%q) not ok for a listed name", info.Name)
			continue
		}
		codes := comboCodes(t, info.Name, evs)
		held := make(map[string]bool)
		for _, ev := range evs {
			if ev.Down == held[ev.Code] {
				t.Errorf("Combo(%q): %+v while held=%v", info.Name, ev, held[ev.Code])
			}
			held[ev.Code] = ev.Down
			if ev.Key == "" {
				t.Errorf("Combo(%q): %s has no Key", info.Name, ev.Code)
			}
		}
		for _, code := range codes {
			if held[code] {
				t.Errorf("Combo(%q) leaves %s held", info.Name, code)
			}
			if _, ok := XTScancode(code); !ok {
				t.Errorf("Combo(%q): %s has no scancode", info.Name, code)
			}
			if _, ok := HIDUsage(code); !ok {
				t.Errorf("Combo(%q): %s has no HID usage", info.Name, code)
			}
		}
	}
	for _, name := range []string{"ctrl-alt-del", "ctrl-alt-backspace", "alt-tab", "alt-f2", "alt-f4",
		"win", "printscreen", "sysrq", "esc", "ctrl-esc"} {
		if !seen[name] {
			t.Errorf("Combos() lacks %q", name)
		}
	}
	for i := 1; i <= 12; i++ {
		if name := "ctrl-alt-f" + itoa(i); !seen[name] {
			t.Errorf("Combos() lacks %q", name)
		}
	}
}

func TestCombo(t *testing.T) {
	tests := []struct {
		name  string
		codes string
	}{
		{"ctrl-alt-del", "ControlLeft AltLeft Delete"},
		{"ctrl-alt-backspace", "ControlLeft AltLeft Backspace"},
		{"ctrl-alt-f1", "ControlLeft AltLeft F1"},
		{"ctrl-alt-f12", "ControlLeft AltLeft F12"},
		{"alt-tab", "AltLeft Tab"},
		{"alt-f4", "AltLeft F4"},
		{"win", "MetaLeft"},
		{"esc", "Escape"},
		{"ctrl-esc", "ControlLeft Escape"},
		{"printscreen", "PrintScreen"},
		{"sysrq", "AltLeft PrintScreen"},
		{"alt-sysrq-b", "AltLeft PrintScreen KeyB"},
		{"alt-sysrq-z", "AltLeft PrintScreen KeyZ"},
		{"alt-sysrq-9", "AltLeft PrintScreen Digit9"},
	}
	for _, tt := range tests {
		evs, ok := Combo(tt.name)
		if !ok {
			t.Errorf("Combo(%q) not ok", tt.name)
			continue
		}
		if got := strings.Join(comboCodes(t, tt.name, evs), " "); got != tt.codes {
			t.Errorf("Combo(%q) presses %q, want %q", tt.name, got, tt.codes)
		}
	}
	evs, _ := Combo("ctrl-alt-del")
	want := []KeyEvent{
		{Code: "ControlLeft", Key: "Control", Down: true},
		{Code: "AltLeft", Key: "Alt", Down: true},
		{Code: "Delete", Key: "Delete", Down: true},
		{Code: "Delete", Key: "Delete"},
		{Code: "AltLeft", Key: "Alt"},
		{Code: "ControlLeft", Key: "Control"},
	}
	if !slices.Equal(evs, want) {
		t.Errorf("Combo(ctrl-alt-del) = %+v, want %+v", evs, want)
	}
}

func TestComboUnknown(t *testing.T) {
	for _, name := range []string{"", "nope", "ctrl-alt-f13", "ctrl-alt-f0", "alt-sysrq-", "alt-sysrq-ab",
		"alt-sysrq-!", "alt-sysrq-B", "CTRL-ALT-DEL"} {
		if evs, ok := Combo(name); ok {
			t.Errorf("Combo(%q) = %v, true; want false", name, evs)
		}
	}
}
