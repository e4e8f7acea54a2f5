package input

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"
)

// This file types text as key presses for a declared guest keyboard layout
// ("paste as keystrokes"), so that a guest that knows nothing of the clipboard
// still receives the text.
//
// The layouts follow the "basic" variants of xkeyboard-config (what Linux
// uses for "us", "gb", "de" and "fr"), restricted where Windows agrees, with
// one exception noted on "fr". Characters the layout reaches through a dead
// key are typed as the dead key followed by the base key, or by Space for the
// accent alone.

// mods is a set of modifier keys held while a key is pressed.
type mods uint8

// Modifiers a layout may need.
const (
	modShift mods = 1 << iota
	modAltGr
)

// stroke is one key pressed with modifiers held.
type stroke struct {
	code string
	mods mods
	dead bool // the stroke is a dead key: it produces nothing by itself
}

// keyDef is one key of a layout: the characters it types unshifted, with
// Shift and with AltGr. Zero means nothing; a combining diacritical mark
// (U+0300-U+036F) means a dead key for that accent.
type keyDef struct {
	code               string
	plain, shift, altg rune
}

// layout is a compiled keyboard layout: for each character it can type, the
// strokes that type it.
type layout struct {
	runes map[rune][]stroke
}

// Combining marks used for dead keys, and the spacing accents they give when
// followed by Space.
const (
	deadGrave      = '\u0300'
	deadAcute      = '\u0301'
	deadCircumflex = '\u0302'
	deadDiaeresis  = '\u0308'
)

// spacingAccents maps a dead key's combining mark to what it types before
// Space.
var spacingAccents = map[rune]rune{
	deadGrave:      '`',
	deadAcute:      '´',
	deadCircumflex: '^',
	deadDiaeresis:  '¨',
}

// composed lists, for each dead key accent, the base letters it combines
// with and the precomposed results, in the same order.
var composed = map[rune][2]string{
	deadGrave:      {"aeiouAEIOU", "àèìòùÀÈÌÒÙ"},
	deadAcute:      {"aeiouyAEIOUY", "áéíóúýÁÉÍÓÚÝ"},
	deadCircumflex: {"aeiouAEIOU", "âêîôûÂÊÎÔÛ"},
	deadDiaeresis:  {"aeiouyAEIOU", "äëïöüÿÄËÏÖÜ"},
}

// usKeyDefs is the US layout's punctuation and digit row; letters and Space
// are added by compile.
var usKeyDefs = []keyDef{
	{"Backquote", '`', '~', 0},
	{"Digit1", '1', '!', 0},
	{"Digit2", '2', '@', 0},
	{"Digit3", '3', '#', 0},
	{"Digit4", '4', '$', 0},
	{"Digit5", '5', '%', 0},
	{"Digit6", '6', '^', 0},
	{"Digit7", '7', '&', 0},
	{"Digit8", '8', '*', 0},
	{"Digit9", '9', '(', 0},
	{"Digit0", '0', ')', 0},
	{"Minus", '-', '_', 0},
	{"Equal", '=', '+', 0},
	{"BracketLeft", '[', '{', 0},
	{"BracketRight", ']', '}', 0},
	{"Backslash", '\\', '|', 0},
	{"Semicolon", ';', ':', 0},
	{"Quote", '\'', '"', 0},
	{"Comma", ',', '<', 0},
	{"Period", '.', '>', 0},
	{"Slash", '/', '?', 0},
}

// gbKeyDefs is the UK layout: US with its differences.
var gbKeyDefs = withKeys(usKeyDefs,
	keyDef{"Backquote", '`', '¬', 0},
	keyDef{"Digit2", '2', '"', 0},
	keyDef{"Digit3", '3', '£', 0},
	keyDef{"Digit4", '4', '$', '€'},
	keyDef{"Quote", '\'', '@', 0},
	keyDef{"Backslash", '#', '~', 0},
	keyDef{"IntlBackslash", '\\', '|', 0},
)

// deKeyDefs is the German QWERTZ layout (with dead keys).
var deKeyDefs = []keyDef{
	{"Backquote", deadCircumflex, '°', 0},
	{"Digit1", '1', '!', 0},
	{"Digit2", '2', '"', '²'},
	{"Digit3", '3', '§', '³'},
	{"Digit4", '4', '$', 0},
	{"Digit5", '5', '%', 0},
	{"Digit6", '6', '&', 0},
	{"Digit7", '7', '/', '{'},
	{"Digit8", '8', '(', '['},
	{"Digit9", '9', ')', ']'},
	{"Digit0", '0', '=', '}'},
	{"Minus", 'ß', '?', '\\'},
	{"Equal", deadAcute, deadGrave, 0},
	{"KeyQ", 'q', 'Q', '@'},
	{"KeyE", 'e', 'E', '€'},
	{"KeyY", 'z', 'Z', 0},
	{"KeyZ", 'y', 'Y', 0},
	{"KeyM", 'm', 'M', 'µ'},
	{"BracketLeft", 'ü', 'Ü', 0},
	{"BracketRight", '+', '*', '~'},
	{"Semicolon", 'ö', 'Ö', 0},
	{"Quote", 'ä', 'Ä', 0},
	{"Backslash", '#', '\'', 0},
	{"IntlBackslash", '<', '>', '|'},
	{"Comma", ',', ';', 0},
	{"Period", '.', ':', 0},
	{"Slash", '-', '_', 0},
}

// frKeyDefs is the French AZERTY layout. AltGr+2 (~) and AltGr+7 (`) are
// plain keys in xkeyboard-config but dead keys on Windows, where typing them
// leaves the accent pending until the next key.
var frKeyDefs = []keyDef{
	{"Backquote", '²', 0, 0},
	{"Digit1", '&', '1', 0},
	{"Digit2", 'é', '2', '~'},
	{"Digit3", '"', '3', '#'},
	{"Digit4", '\'', '4', '{'},
	{"Digit5", '(', '5', '['},
	{"Digit6", '-', '6', '|'},
	{"Digit7", 'è', '7', '`'},
	{"Digit8", '_', '8', '\\'},
	{"Digit9", 'ç', '9', '^'},
	{"Digit0", 'à', '0', '@'},
	{"Minus", ')', '°', ']'},
	{"Equal", '=', '+', '}'},
	{"KeyQ", 'a', 'A', 0},
	{"KeyW", 'z', 'Z', 0},
	{"KeyE", 'e', 'E', '€'},
	{"KeyA", 'q', 'Q', 0},
	{"KeyZ", 'w', 'W', 0},
	{"Semicolon", 'm', 'M', 0},
	{"KeyM", ',', '?', 0},
	{"Comma", ';', '.', 0},
	{"Period", ':', '/', 0},
	{"Slash", '!', '§', 0},
	{"Quote", 'ù', '%', 0},
	{"Backslash", '*', 'µ', 0},
	{"BracketLeft", deadCircumflex, deadDiaeresis, 0},
	{"BracketRight", '$', '£', '¤'},
	{"IntlBackslash", '<', '>', 0},
}

// withKeys returns base with the keys in over replacing those with the same
// code, and the others appended.
func withKeys(base []keyDef, over ...keyDef) []keyDef {
	out := slices.Clone(base)
	for _, k := range over {
		i := slices.IndexFunc(out, func(b keyDef) bool { return b.code == k.code })
		if i >= 0 {
			out[i] = k
		} else {
			out = append(out, k)
		}
	}
	return out
}

// layouts holds the compiled layouts by name.
var layouts = map[string]*layout{
	"us": compile(usKeyDefs),
	"gb": compile(gbKeyDefs),
	"de": compile(deKeyDefs),
	"fr": compile(frKeyDefs),
}

// isDead reports whether r stands for a dead key in a keyDef.
func isDead(r rune) bool { return r >= 0x300 && r <= 0x36f }

// compile builds a layout from its key definitions. Letters a-z on their own
// codes and Space are added unless defs places them elsewhere. A character
// reachable in several ways keeps the first: one stroke before a dead key
// sequence, plain before Shift before AltGr.
func compile(defs []keyDef) *layout {
	l := &layout{runes: make(map[rune][]stroke)}
	all := slices.Clone(defs)
	placed := make(map[string]bool, len(defs))
	for _, d := range defs {
		placed[d.code] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		code := "Key" + string(c-'a'+'A')
		if !placed[code] {
			all = append(all, keyDef{code, c, c - 'a' + 'A', 0})
		}
	}
	all = append(all, keyDef{"Space", ' ', 0, 0})

	add := func(r rune, s []stroke) {
		if _, ok := l.runes[r]; !ok && r != 0 {
			l.runes[r] = s
		}
	}
	type deadKey struct {
		accent rune
		s      stroke
	}
	var deads []deadKey
	for _, level := range []mods{0, modShift, modAltGr} {
		for _, d := range all {
			r := d.plain
			switch level {
			case modShift:
				r = d.shift
			case modAltGr:
				r = d.altg
			}
			if isDead(r) {
				deads = append(deads, deadKey{r, stroke{d.code, level, true}})
				continue
			}
			add(r, []stroke{{code: d.code, mods: level}})
		}
	}
	// Dead key sequences, after every single stroke is placed.
	for _, dk := range deads {
		if acc, ok := spacingAccents[dk.accent]; ok {
			add(acc, []stroke{dk.s, {code: "Space"}})
		}
		pair, ok := composed[dk.accent]
		if !ok {
			continue
		}
		results := []rune(pair[1])
		for i, base := range []rune(pair[0]) {
			bs, ok := l.runes[base]
			if !ok || len(bs) != 1 {
				continue
			}
			add(results[i], []stroke{dk.s, bs[0]})
		}
	}
	return l
}

// Layouts returns the names of the keyboard layouts TypeText knows, sorted.
func Layouts() []string {
	names := make([]string, 0, len(layouts))
	for name := range layouts {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// ErrUnknownLayout is returned, wrapped, by TypeText and TypeTextLenient for
// a layout name Layouts does not list.
var ErrUnknownLayout = errors.New("unknown keyboard layout")

// UntypableError reports a character a keyboard layout cannot type.
type UntypableError struct {
	Layout string // the layout name
	Rune   rune   // the first character the layout cannot type
	Offset int    // its byte offset in the text
}

// Error describes the character and where it is.
func (e *UntypableError) Error() string {
	return fmt.Sprintf("input: layout %q cannot type %q (U+%04X) at byte %d",
		e.Layout, e.Rune, e.Rune, e.Offset)
}

// TypeText returns the key presses and releases that type text on a guest
// whose keyboard layout is layout (one of Layouts). Shift and AltGr
// (AltRight) are pressed around the keys that need them; "\n", "\r" and
// "\r\n" become Enter and "\t" Tab. Every event carries both Code and Key:
// Key is the character the stroke types ("Dead" for a dead key, which keysym
// backends skip), so keysym backends type the same text. If the layout
// cannot type a character, the result is an *UntypableError naming the first
// one. The caller should bound the length of text; each character costs up
// to eight events.
func TypeText(layoutName, text string) ([]KeyEvent, error) {
	evs, _, err := typeText(layoutName, text, true)
	return evs, err
}

// TypeTextLenient is TypeText that skips the characters the layout cannot
// type and returns how many it skipped. Its only error is an unknown layout.
func TypeTextLenient(layoutName, text string) ([]KeyEvent, int, error) {
	return typeText(layoutName, text, false)
}

// typeText implements TypeText and TypeTextLenient.
func typeText(layoutName, text string, strict bool) ([]KeyEvent, int, error) {
	l, ok := layouts[layoutName]
	if !ok {
		return nil, 0, fmt.Errorf("input: %w %q (known: %s)", ErrUnknownLayout,
			layoutName, strings.Join(Layouts(), ", "))
	}
	evs := make([]KeyEvent, 0, 2*len(text))
	skipped := 0
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRuneInString(text[i:])
		switch {
		case r == '\r' || r == '\n':
			evs = appendTap(evs, "Enter", "Enter")
			if r == '\r' && i+1 < len(text) && text[i+1] == '\n' {
				size++
			}
		case r == '\t':
			evs = appendTap(evs, "Tab", "Tab")
		default:
			strokes, ok := l.runes[r]
			if !ok {
				if strict {
					return nil, 0, &UntypableError{Layout: layoutName, Rune: r, Offset: i}
				}
				skipped++
				break
			}
			for _, s := range strokes {
				key := string(r)
				if s.dead {
					key = "Dead"
				}
				evs = appendStroke(evs, s, key)
			}
		}
		i += size
	}
	return evs, skipped, nil
}

// appendTap appends a press and release of one key with no modifiers.
func appendTap(evs []KeyEvent, code, key string) []KeyEvent {
	return append(evs, KeyEvent{Code: code, Key: key, Down: true},
		KeyEvent{Code: code, Key: key})
}

// appendStroke appends the events of one stroke: modifiers down, the key
// down and up, modifiers up in reverse order.
func appendStroke(evs []KeyEvent, s stroke, key string) []KeyEvent {
	if s.mods&modShift != 0 {
		evs = append(evs, KeyEvent{Code: "ShiftLeft", Key: "Shift", Down: true})
	}
	if s.mods&modAltGr != 0 {
		evs = append(evs, KeyEvent{Code: "AltRight", Key: "AltGraph", Down: true})
	}
	evs = appendTap(evs, s.code, key)
	if s.mods&modAltGr != 0 {
		evs = append(evs, KeyEvent{Code: "AltRight", Key: "AltGraph"})
	}
	if s.mods&modShift != 0 {
		evs = append(evs, KeyEvent{Code: "ShiftLeft", Key: "Shift"})
	}
	return evs
}
