package spice

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"kvmgate/framebuffer"
	"kvmgate/input"
	"kvmgate/internal/testserver"
)

// keyCodes returns the KeyboardEvent.code values (and whether Shift is
// needed) that type r on a US keyboard, for the characters tests type.
func keyCodes(r rune) (string, bool, error) {
	switch {
	case r >= 'a' && r <= 'z':
		return "Key" + strings.ToUpper(string(r)), false, nil
	case r >= 'A' && r <= 'Z':
		return "Key" + string(r), true, nil
	case r >= '0' && r <= '9':
		return "Digit" + string(r), false, nil
	}
	switch r {
	case ' ':
		return "Space", false, nil
	case '\n':
		return "Enter", false, nil
	case '/':
		return "Slash", false, nil
	case '.':
		return "Period", false, nil
	case ';':
		return "Semicolon", false, nil
	case '-':
		return "Minus", false, nil
	case '>':
		return "Period", true, nil
	}
	return "", false, fmt.Errorf("no key for %q", r)
}

// typeText types text through the client's inputs channel as fast as it
// takes the keys (the client spaces them for QEMU's short PS/2 queue).
func typeText(t *testing.T, c *Client, text string) {
	t.Helper()
	for _, r := range text {
		code, shift, err := keyCodes(r)
		if err != nil {
			t.Fatal(err)
		}
		var evs []input.KeyEvent
		if shift {
			evs = append(evs, input.KeyEvent{Code: "ShiftLeft", Down: true})
		}
		evs = append(evs, input.KeyEvent{Code: code, Down: true}, input.KeyEvent{Code: code})
		if shift {
			evs = append(evs, input.KeyEvent{Code: "ShiftLeft"})
		}
		for _, ev := range evs {
			if err := c.Key(ev); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestLinuxQXL boots the Linux guest with the qxl DRM driver, so its
// console is a KMS framebuffer drawn through QXL commands (native mode),
// types a command that scrolls the console and compares the decoded screen
// with QEMU's screendump once it settles.
func TestLinuxQXL(t *testing.T) {
	q, addr := spiceQEMUWith(t, testserver.QEMUOptions{
		Guest: testserver.GuestLinux, Modules: []string{"qxl"},
	}, "disable-ticketing=on")
	q.WaitSettled(t, testserver.LinuxBootTimeout)
	fb := framebuffer.New()
	c := runClient(t, addr, Options{}, fb)
	before := waitFrame(t, fb, screendump(t, q), 30*time.Second)
	if before.W == 720 && before.H == 400 {
		t.Fatalf("the guest's console is still in VGA text mode (720x400), not on the qxl framebuffer")
	}
	t.Logf("QXL console: %dx%d", before.W, before.H)
	decoded := func() uint64 {
		var n uint64
		for i := range c.images {
			n += c.images[i].Load()
		}
		return n
	}
	images := decoded()

	deadline := time.Now().Add(30 * time.Second)
	for c.inputs() == nil {
		if time.Now().After(deadline) {
			t.Fatal("inputs channel never linked")
		}
		time.Sleep(50 * time.Millisecond)
	}
	typeText(t, c, "seq 1 300; echo spice-typed-done > /dev/ttyS0\n")
	q.WaitSerial(t, "spice-typed-done", time.Minute)
	q.WaitSettled(t, time.Minute)
	after := waitFrame(t, fb, screendump(t, q), 30*time.Second)
	if d := diff(before, after); d.H < after.H/2 {
		t.Errorf("the console changed only in %v after seq scrolled it", d)
	}
	if decoded() == images {
		t.Errorf("no image decoded for the console's activity")
	}
	var counts []string
	for typ := range c.images {
		if n := c.images[typ].Load(); n > 0 {
			counts = append(counts, fmt.Sprintf("type %d: %d", typ, n))
		}
	}
	t.Logf("images decoded: %v", counts)
}
