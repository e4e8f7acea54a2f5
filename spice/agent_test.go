package spice

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"kvmgate/backend"
	"kvmgate/framebuffer"
	"kvmgate/internal/testserver"
)

// guestClipboard is the text the guest's test agent offers.
const guestClipboard = "guest clipboard: héllo ✓"

// agentGuest is the Linux guest on the qxl KMS console with a VD agent
// port (virtio-serial com.redhat.spice.0 backed by QEMU's spicevmc) and
// the guest program's test agent serving it from boot.
func agentGuest() testserver.QEMUOptions {
	return testserver.QEMUOptions{
		Guest:        testserver.GuestLinux,
		Modules:      []string{"qxl", "virtio_pci", "virtio_console"},
		GuestProgram: true,
		InitCommands: testserver.GuestProgramName + " agent '" + guestClipboard + "' &",
		ExtraArgs: []string{
			"-device", "virtio-serial-pci",
			"-chardev", "spicevmc,id=vdagent,name=vdagent",
			"-device", "virtserialport,chardev=vdagent,name=com.redhat.spice.0",
		},
	}
}

// serialLine waits for a complete serial line starting with prefix
// written after byte mark and returns the rest of it.
func serialLine(t *testing.T, q *testserver.QEMU, mark int, prefix string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := q.Serial()
		if mark <= len(s) {
			lines := strings.Split(s[mark:], "\n")
			for _, line := range lines[:len(lines)-1] { // the last one is not complete
				if rest, ok := strings.CutPrefix(strings.TrimRight(line, "\r"), prefix); ok {
					return rest
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the guest never wrote %q; serial log:\n%s", prefix, s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestAgent runs the VD agent protocol through QEMU's SPICE server and its
// virtio-serial agent port to the Linux guest. The guest side is the guest
// program's minimal agent (written for tests from vd_agent.h, not
// spice-vdagent, which needs an X session): clipboard text goes both ways,
// and a monitor configuration reaches the guest's qxl KMS driver, which
// makes the requested size its connector's preferred mode.
func TestAgent(t *testing.T) {
	q, addr := spiceQEMUWith(t, agentGuest(), "disable-ticketing=on")
	serialLine(t, q, 0, "KVMAGENT-OPEN ")
	fb := framebuffer.New()
	v := fb.Subscribe()
	dst, _ := framebuffer.NewCanvas(1, 1)
	mark := len(q.Serial())
	c := runClient(t, addr, Options{}, fb)

	// The agent offers its clipboard once it knows the client's
	// capabilities; the client asks for the text and publishes it.
	deadline := time.After(30 * time.Second)
	for got := ""; got != guestClipboard; {
		select {
		case <-v.Changed():
		case <-deadline:
			t.Fatalf("the guest's clipboard never reached the framebuffer (last %q); serial log:\n%s", got, q.Serial())
		}
		if u := v.Take(dst); u.ClipboardChanged {
			got = u.Clipboard
		}
	}
	if a := c.Info().Details["agent"]; a != "connected" {
		t.Errorf("Info agent %q, want connected", a)
	}
	if caps := serialLine(t, q, mark, "KVMAGENT-CAPS "); caps != "0x26" {
		t.Errorf("the agent got client capabilities %s, want 0x26 (monitors config, reply, clipboard by demand)", caps)
	}

	text := "from kvmgate: ✓ ünïcode\nsecond line"
	mark = len(q.Serial())
	if err := c.Clipboard(text); err != nil {
		t.Fatal(err)
	}
	got := serialLine(t, q, mark, "KVMAGENT-CLIPBOARD ")
	if want := fmt.Sprintf("1 %x", text); got != want {
		b, _ := hex.DecodeString(strings.TrimPrefix(got, "1 "))
		t.Errorf("the guest got clipboard %q (%s), want %q", b, got, text)
	}

	if !fb.Caps().Resizable {
		t.Errorf("framebuffer caps %+v with the agent connected, want resizable", fb.Caps())
	}
	mark = len(q.Serial())
	// Resize (backend.Resizer) is SetMonitors with one monitor.
	var r backend.Resizer = c
	if err := r.Resize(context.Background(), 800, 600); err != nil {
		t.Fatal(err)
	}
	if mode := serialLine(t, q, mark, "KVMGATE-MODE "); mode != "800x600" {
		t.Errorf("the guest's preferred mode became %s after asking for 800x600", mode)
	}
	// The guest's console follows its preferred mode: the display becomes
	// 800x600, as QEMU shows it.
	got800 := waitFrame(t, fb, screendump(t, q), 30*time.Second)
	if got800.W != 800 || got800.H != 600 {
		t.Errorf("display %dx%d after the monitor configuration, want 800x600", got800.W, got800.H)
	}
	// Drawing and scrolling (COPY_BITS) within the shown part stay right.
	q.TypeText(t, "seq 1 80\n")
	q.WaitSettled(t, time.Minute)
	waitFrame(t, fb, screendump(t, q), 30*time.Second)
}
