package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"kvmgate/internal/browsertest"
	"kvmgate/internal/testserver"
	"kvmgate/server"
)

// TestSPICEBrowserClipboard serves the Linux guest with a VD agent port
// (QEMU's spicevmc on virtio-serial com.redhat.spice.0) and the guest
// program's test agent (written from vd_agent.h; not spice-vdagent) to the
// console page in headless Chromium: the guest's clipboard text arrives as
// the page's clipboard event, and text the page sends reaches the guest.
func TestSPICEBrowserClipboard(t *testing.T) {
	t.Parallel()
	const guestText = "guest clipboard: héllo ✓"
	b := browsertest.Launch(t)
	q := testserver.StartQEMU(t, testserver.QEMUOptions{
		Guest:        testserver.GuestLinux,
		VGA:          "qxl",
		Modules:      []string{"qxl", "virtio_pci", "virtio_console"},
		GuestProgram: true,
		InitCommands: testserver.GuestProgramName + " agent '" + guestText + "' &",
		ExtraArgs: []string{
			"-device", "virtio-serial-pci",
			"-chardev", "spicevmc,id=vdagent,name=vdagent",
			"-device", "virtserialport,chardev=vdagent,name=com.redhat.spice.0",
		},
		SPICE: true, SPICEOptions: "disable-ticketing=on",
	})
	q.WaitSerial(t, "KVMAGENT-OPEN", wait)
	_, hs := startServer(t, server.Options{Target: "spice://" + q.SPICEAddr()})
	p := b.NewPage(t, hs.URL+"/")
	waitConnected(t, p)
	p.WaitFor(t, el+`.clipboardText === `+fmt.Sprintf("%q", guestText), wait)

	const pageText = "from the page: ✓ ünïcode"
	mark := len(q.Serial())
	p.MustEval(t, el+`.sendClipboard(`+fmt.Sprintf("%q", pageText)+`)`)
	want := fmt.Sprintf("KVMAGENT-CLIPBOARD 1 %x", pageText)
	deadline := time.Now().Add(wait)
	for !strings.Contains(q.Serial()[mark:], want) {
		if time.Now().After(deadline) {
			t.Fatalf("the guest agent never got the page's clipboard; serial log:\n%s", q.Serial())
		}
		time.Sleep(100 * time.Millisecond)
	}
	noErrors(t, p)
}
