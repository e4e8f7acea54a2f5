package input

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// modifierCodes are the keys TypeText holds around others.
var modifierCodes = map[string]bool{"ShiftLeft": true, "AltRight": true}

// replay checks that evs is a well-formed key sequence (every release
// matches a held key, nothing is held at the end, no key is pressed twice)
// and returns the text a keysym backend would type from it: the Key of each
// non-modifier press, with Enter and Tab as "\n" and "\t" and dead keys
// skipped.
func replay(evs []KeyEvent) (string, error) {
	var b strings.Builder
	held := make(map[string]bool)
	for i, ev := range evs {
		if ev.Down == held[ev.Code] {
			return "", fmt.Errorf("event %d: %+v while held=%v", i, ev, held[ev.Code])
		}
		held[ev.Code] = ev.Down
		if !ev.Down || modifierCodes[ev.Code] {
			continue
		}
		switch ev.Key {
		case "Enter":
			b.WriteByte('\n')
		case "Tab":
			b.WriteByte('\t')
		case "Dead":
		default:
			b.WriteString(ev.Key)
		}
	}
	for code, down := range held {
		if down {
			return "", fmt.Errorf("%s still held at the end", code)
		}
	}
	return b.String(), nil
}

// describe renders the strokes of evs compactly: "Shift+KeyA AltGr+KeyQ".
func describe(evs []KeyEvent) string {
	var parts []string
	shift, altgr := false, false
	for _, ev := range evs {
		switch ev.Code {
		case "ShiftLeft":
			shift = ev.Down
			continue
		case "AltRight":
			altgr = ev.Down
			continue
		}
		if !ev.Down {
			continue
		}
		s := ev.Code
		if altgr {
			s = "AltGr+" + s
		}
		if shift {
			s = "Shift+" + s
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

func TestLayouts(t *testing.T) {
	if got, want := Layouts(), []string{"de", "fr", "gb", "us"}; !slices.Equal(got, want) {
		t.Errorf("Layouts() = %v, want %v", got, want)
	}
}

func TestTypeTextUSPrintableASCII(t *testing.T) {
	var all strings.Builder
	for c := rune(0x20); c < 0x7f; c++ {
		all.WriteRune(c)
	}
	text := all.String()
	evs, err := TypeText("us", text)
	if err != nil {
		t.Fatalf("TypeText(us, printable ASCII): %v", err)
	}
	got, err := replay(evs)
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	if got != text {
		t.Errorf("replayed %q, want %q", got, text)
	}
}

// TestTypeTextRoundTripAllLayouts types every character each layout knows,
// plus printable ASCII where the layout has it, and replays it.
func TestTypeTextRoundTripAllLayouts(t *testing.T) {
	for _, name := range Layouts() {
		var b strings.Builder
		for r := range layouts[name].runes {
			b.WriteRune(r)
		}
		text := b.String()
		evs, err := TypeText(name, text)
		if err != nil {
			t.Errorf("TypeText(%s, its own characters): %v", name, err)
			continue
		}
		got, err := replay(evs)
		if err != nil {
			t.Errorf("%s: replay: %v", name, err)
			continue
		}
		if got != text {
			t.Errorf("%s: replayed %q, want %q", name, got, text)
		}
		for _, ev := range evs {
			if _, ok := XTScancode(ev.Code); !ok {
				t.Errorf("%s: event code %q has no scancode", name, ev.Code)
			}
			if _, ok := HIDUsage(ev.Code); !ok {
				t.Errorf("%s: event code %q has no HID usage", name, ev.Code)
			}
		}
	}
}

func TestTypeTextLayoutsTypeASCII(t *testing.T) {
	// Every layout reaches all of printable ASCII.
	for _, name := range Layouts() {
		for c := rune(0x20); c < 0x7f; c++ {
			if _, ok := layouts[name].runes[c]; !ok {
				t.Errorf("layout %s cannot type %q", name, c)
			}
		}
	}
}

// TestTypeTextStrokes checks key positions against the xkeyboard-config
// layouts.
func TestTypeTextStrokes(t *testing.T) {
	tests := []struct {
		layout, text, want string
	}{
		{"us", "a", "KeyA"},
		{"us", "A", "Shift+KeyA"},
		{"us", "@", "Shift+Digit2"},
		{"us", "\\|", "Backslash Shift+Backslash"},
		{"us", " ", "Space"},
		{"gb", "@", "Shift+Quote"},
		{"gb", "\"", "Shift+Digit2"},
		{"gb", "£", "Shift+Digit3"},
		{"gb", "€", "AltGr+Digit4"},
		{"gb", "#~", "Backslash Shift+Backslash"},
		{"gb", "\\|", "IntlBackslash Shift+IntlBackslash"},
		{"gb", "¬", "Shift+Backquote"},
		{"de", "zy", "KeyY KeyZ"},
		{"de", "ZY", "Shift+KeyY Shift+KeyZ"},
		{"de", "@", "AltGr+KeyQ"},
		{"de", "€", "AltGr+KeyE"},
		{"de", "{[]}", "AltGr+Digit7 AltGr+Digit8 AltGr+Digit9 AltGr+Digit0"},
		{"de", "\\", "AltGr+Minus"},
		{"de", "|", "AltGr+IntlBackslash"},
		{"de", "~", "AltGr+BracketRight"},
		{"de", "ßüÜöä", "Minus BracketLeft Shift+BracketLeft Semicolon Quote"},
		{"de", "/", "Shift+Digit7"},
		{"de", "-_", "Slash Shift+Slash"},
		{"de", "'#", "Shift+Backslash Backslash"},
		{"de", "^", "Backquote Space"},
		{"de", "`", "Shift+Equal Space"},
		{"de", "´", "Equal Space"},
		{"de", "é", "Equal KeyE"},
		{"de", "è", "Shift+Equal KeyE"},
		{"de", "Ê", "Backquote Shift+KeyE"},
		{"de", "°", "Shift+Backquote"},
		{"de", "µ", "AltGr+KeyM"},
		{"fr", "aq", "KeyQ KeyA"},
		{"fr", "zw", "KeyW KeyZ"},
		{"fr", "m", "Semicolon"},
		{"fr", "1", "Shift+Digit1"},
		{"fr", "&é\"'(-è_çà", "Digit1 Digit2 Digit3 Digit4 Digit5 Digit6 Digit7 Digit8 Digit9 Digit0"},
		{"fr", "@", "AltGr+Digit0"},
		{"fr", "^", "AltGr+Digit9"},
		{"fr", "~", "AltGr+Digit2"},
		{"fr", "ê", "BracketLeft KeyE"},
		{"fr", "ï", "Shift+BracketLeft KeyI"},
		{"fr", "Ô", "BracketLeft Shift+KeyO"},
		{"fr", "¨", "Shift+BracketLeft Space"},
		{"fr", ",;:!", "KeyM Comma Period Slash"},
		{"fr", "?./§", "Shift+KeyM Shift+Comma Shift+Period Shift+Slash"},
		{"fr", "ù%*µ", "Quote Shift+Quote Backslash Shift+Backslash"},
		{"fr", "$£¤", "BracketRight Shift+BracketRight AltGr+BracketRight"},
		{"fr", "<>", "IntlBackslash Shift+IntlBackslash"},
	}
	for _, tt := range tests {
		evs, err := TypeText(tt.layout, tt.text)
		if err != nil {
			t.Errorf("TypeText(%s, %q): %v", tt.layout, tt.text, err)
			continue
		}
		if got := describe(evs); got != tt.want {
			t.Errorf("TypeText(%s, %q) strokes %q, want %q", tt.layout, tt.text, got, tt.want)
		}
	}
}

func TestTypeTextEvents(t *testing.T) {
	evs, err := TypeText("de", "Aê")
	if err != nil {
		t.Fatal(err)
	}
	want := []KeyEvent{
		{Code: "ShiftLeft", Key: "Shift", Down: true},
		{Code: "KeyA", Key: "A", Down: true},
		{Code: "KeyA", Key: "A"},
		{Code: "ShiftLeft", Key: "Shift"},
		{Code: "Backquote", Key: "Dead", Down: true},
		{Code: "Backquote", Key: "Dead"},
		{Code: "KeyE", Key: "ê", Down: true},
		{Code: "KeyE", Key: "ê"},
	}
	if !slices.Equal(evs, want) {
		t.Errorf("TypeText(de, Aê) =\n%+v\nwant\n%+v", evs, want)
	}
	// A keysym backend skips the dead key and sends ê itself.
	var syms []uint32
	for _, ev := range evs {
		if ks, ok := Keysym(ev); ok && ev.Down {
			syms = append(syms, ks)
		}
	}
	if want := []uint32{0xffe1, 0x41, 0xea}; !slices.Equal(syms, want) {
		t.Errorf("keysyms of the presses = %#x, want %#x", syms, want)
	}
}

func TestTypeTextWhitespace(t *testing.T) {
	evs, err := TypeText("us", "a\r\nb\rc\nd\te")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := describe(evs), "KeyA Enter KeyB Enter KeyC Enter KeyD Tab KeyE"; got != want {
		t.Errorf("strokes %q, want %q", got, want)
	}
	evs, err = TypeText("fr", "")
	if err != nil || len(evs) != 0 {
		t.Errorf("TypeText(fr, \"\") = %v, %v; want no events", evs, err)
	}
}

func TestTypeTextErrors(t *testing.T) {
	tests := []struct {
		layout, text string
		r            rune
		offset       int
	}{
		{"us", "é", 'é', 0},
		{"us", "abc中d", '中', 3},
		{"gb", "ok €ok ñ", 'ñ', 9},
		{"de", "x\x01", 0x01, 1},
		{"fr", "ab\xffc", utf8.RuneError, 2},
		{"fr", "É", 'É', 0},
	}
	for _, tt := range tests {
		evs, err := TypeText(tt.layout, tt.text)
		var ue *UntypableError
		if !errors.As(err, &ue) {
			t.Errorf("TypeText(%s, %q) = %d events, %v; want *UntypableError", tt.layout, tt.text, len(evs), err)
			continue
		}
		if ue.Rune != tt.r || ue.Offset != tt.offset || ue.Layout != tt.layout {
			t.Errorf("TypeText(%s, %q) error %+v, want rune %U at %d", tt.layout, tt.text, ue, tt.r, tt.offset)
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("U+%04X", tt.r)) {
			t.Errorf("error %q does not name U+%04X", err, tt.r)
		}
		if evs != nil {
			t.Errorf("TypeText(%s, %q) returned events with an error", tt.layout, tt.text)
		}
	}

	_, err := TypeText("dvorak", "a")
	if !errors.Is(err, ErrUnknownLayout) {
		t.Errorf("TypeText(dvorak) error %v, want ErrUnknownLayout", err)
	}
	_, _, err = TypeTextLenient("", "a")
	if !errors.Is(err, ErrUnknownLayout) {
		t.Errorf("TypeTextLenient(\"\") error %v, want ErrUnknownLayout", err)
	}
}

func TestTypeTextLenient(t *testing.T) {
	tests := []struct {
		layout, text, typed string
		skipped             int
	}{
		{"us", "a中b€", "ab", 2},
		{"gb", "a中b€", "ab€", 1},
		{"de", "Grüße, ☃!", "Grüße, !", 1},
		{"fr", "Ça va ?", "a va ?", 1},
		{"us", "plain", "plain", 0},
	}
	for _, tt := range tests {
		evs, skipped, err := TypeTextLenient(tt.layout, tt.text)
		if err != nil {
			t.Errorf("TypeTextLenient(%s, %q): %v", tt.layout, tt.text, err)
			continue
		}
		got, err := replay(evs)
		if err != nil {
			t.Errorf("TypeTextLenient(%s, %q): replay: %v", tt.layout, tt.text, err)
			continue
		}
		if got != tt.typed || skipped != tt.skipped {
			t.Errorf("TypeTextLenient(%s, %q) typed %q skipping %d, want %q skipping %d",
				tt.layout, tt.text, got, skipped, tt.typed, tt.skipped)
		}
	}
}

// normalizeNewlines turns "\r\n" and "\r" into "\n", as TypeText does.
func normalizeNewlines(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}

func FuzzTypeText(f *testing.F) {
	f.Add("us", "Hello, world!\n")
	f.Add("de", "Grüße ^ ` ´ ê\r\n")
	f.Add("fr", "Ça coûte 5 € ?\t")
	f.Add("gb", "£5 #~ \\|")
	f.Add("xx", "a")
	f.Fuzz(func(t *testing.T, layout, text string) {
		evs, err := TypeText(layout, text)
		levs, skipped, lerr := TypeTextLenient(layout, text)
		if !slices.Contains(Layouts(), layout) {
			if !errors.Is(err, ErrUnknownLayout) || !errors.Is(lerr, ErrUnknownLayout) {
				t.Fatalf("unknown layout %q: errors %v, %v", layout, err, lerr)
			}
			return
		}
		if lerr != nil {
			t.Fatalf("TypeTextLenient(%s, %q): %v", layout, text, lerr)
		}
		// What the lenient form should type: the text without what the
		// layout lacks.
		var want strings.Builder
		wantSkipped := 0
		for _, r := range normalizeNewlines(text) {
			if _, ok := layouts[layout].runes[r]; ok || r == '\n' || r == '\t' {
				want.WriteRune(r)
			} else {
				wantSkipped++
			}
		}
		// Invalid bytes decode to U+FFFD, one per byte, and are skipped.
		got, rerr := replay(levs)
		if rerr != nil {
			t.Fatalf("TypeTextLenient(%s, %q): replay: %v", layout, text, rerr)
		}
		if got != want.String() || skipped != wantSkipped {
			t.Fatalf("TypeTextLenient(%s, %q) typed %q skipping %d, want %q skipping %d",
				layout, text, got, skipped, want.String(), wantSkipped)
		}
		if (err == nil) != (skipped == 0) {
			t.Fatalf("TypeText(%s, %q) error %v but lenient skipped %d", layout, text, err, skipped)
		}
		if err == nil && !slices.Equal(evs, levs) {
			t.Fatalf("TypeText and TypeTextLenient disagree on %q", text)
		}
	})
}
