package spice

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"kvmgate/framebuffer"
	"kvmgate/internal/testserver"
)

// vdagentInit starts, in the guest, an X server (Xvfb: spice-vdagent needs
// an X display to serve the clipboard from), Debian's spice-vdagentd on
// the agent port and spice-vdagent in the X session, and two helper
// scripts that read and set the X clipboard with xclip. The clipboard
// text the guest offers is UTF-8, written with printf's octal escapes.
const vdagentInit = `mkdir -p /tmp/.X11-unix /run/spice-vdagentd /var/lib/xkb /dev/virtio-ports
for p in /sys/class/virtio-ports/*; do ln -s /dev/${p##*/} /dev/virtio-ports/$(cat $p/name); done
export DISPLAY=:0 HOME=/root
Xvfb :0 -nolisten tcp -screen 0 640x480x24 > /tmp/xvfb.log 2>&1 &
touch /tmp/uinput
spice-vdagentd -X -x -d -f -u /tmp/uinput > /tmp/vdagentd.log 2>&1 &
(while [ ! -S /tmp/.X11-unix/X0 ] || [ ! -S /run/spice-vdagentd/spice-vdagent-sock ]; do sleep 0.2; done
 spice-vdagent -x -d > /tmp/vdagent.log 2>&1; echo KVMGATE-VDAGENT-EXIT > /dev/ttyS0) &
printf 'guest X clipboard: h\303\251llo \342\234\223' > /tmp/guest-clip.txt
cat > /bin/clip-in <<'EOF'
#!/bin/sh
DISPLAY=:0 /usr/bin/xclip -i -selection clipboard /tmp/guest-clip.txt
EOF
cat > /bin/clip-out <<'EOF'
#!/bin/sh
(echo -n "KVMGATE-XCLIP "; DISPLAY=:0 /usr/bin/xclip -o -selection clipboard 2>>/tmp/xclip.log | od -An -tx1 -v | tr -d ' \n'; echo) > /dev/ttyS0
EOF
cat > /bin/vdagent-logs <<'EOF'
#!/bin/sh
DISPLAY=:0 /usr/bin/xclip -o -selection clipboard -t TARGETS >> /tmp/xclip.log 2>&1
cat /tmp/xvfb.log /tmp/vdagentd.log /tmp/vdagent.log /tmp/xclip.log > /dev/ttyS0
EOF
chmod 755 /bin/clip-in /bin/clip-out /bin/vdagent-logs
`

// vdagentGuest is the Linux guest with a VD agent port and the real
// spice-vdagent (Debian's spice-vdagent package) running under Xvfb.
func vdagentGuest() testserver.QEMUOptions {
	return testserver.QEMUOptions{
		Guest:     testserver.GuestLinux,
		MemoryMiB: 512,
		Modules:   []string{"qxl", "virtio_pci", "virtio_console"},
		HostFiles: []string{"/usr/bin/Xvfb", "/usr/bin/xkbcomp", "/usr/share/X11/xkb",
			"/usr/bin/spice-vdagent", "/usr/sbin/spice-vdagentd", "/usr/bin/xclip"},
		InitCommands: vdagentInit,
		ExtraArgs: []string{
			"-device", "virtio-serial-pci",
			"-chardev", "spicevmc,id=vdagent,name=vdagent",
			"-device", "virtserialport,chardev=vdagent,name=com.redhat.spice.0",
		},
	}
}

// TestRealVDAgent exchanges clipboard text with Debian's spice-vdagent
// running in the guest's X session (Xvfb): text the client offers is what
// xclip reads from the guest's X clipboard, and text xclip puts there
// reaches the framebuffer's clipboard. A monitor configuration resizes the
// guest's qxl console meanwhile.
func TestRealVDAgent(t *testing.T) {
	q, addr := spiceQEMUWith(t, vdagentGuest(), "disable-ticketing=on,agent-mouse=off")
	fb := framebuffer.New()
	v := fb.Subscribe()
	dst, _ := framebuffer.NewCanvas(1, 1)
	c := runClient(t, addr, Options{}, fb)
	logs := func() string {
		q.TypeText(t, "vdagent-logs\n")
		time.Sleep(2 * time.Second)
		return q.Serial()
	}

	text := "from kvmgate: ✓ ünïcode"
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := c.Clipboard(text)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Clipboard: %v; guest logs:\n%s", err, logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	want := fmt.Sprintf("%x", text)
	for i := 0; ; i++ {
		mark := len(q.Serial())
		q.TypeText(t, "clip-out\n")
		got := serialLine(t, q, mark, "KVMGATE-XCLIP ")
		if got == want {
			break
		}
		if i == 20 {
			t.Fatalf("xclip read %q from the guest's clipboard, want %x; guest logs:\n%s", got, want, logs())
		}
		time.Sleep(500 * time.Millisecond)
	}

	q.TypeText(t, "clip-in\n")
	guestText := "guest X clipboard: héllo ✓"
	timeout := time.After(30 * time.Second)
	for got := ""; got != guestText; {
		select {
		case <-v.Changed():
		case <-timeout:
			t.Fatalf("the guest's X clipboard never reached the framebuffer (last %q); guest logs:\n%s", got, logs())
		}
		if u := v.Take(dst); u.ClipboardChanged {
			got = u.Clipboard
		}
	}
	// With the agent connected, a monitor configuration goes to the QXL
	// card (QEMU's SPICE server gives it to a QXL driver that takes such
	// requests rather than to the agent): the guest's console follows it.
	if err := c.SetMonitors(Monitor{Width: 800, Height: 600}); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(30 * time.Second)
	for s := fb.Snapshot(); s.W != 800 || s.H != 600; s = fb.Snapshot() {
		if time.Now().After(deadline) {
			t.Fatalf("display %dx%d after asking for 800x600", s.W, s.H)
		}
		time.Sleep(100 * time.Millisecond)
	}
	waitFrame(t, fb, screendump(t, q), 30*time.Second)
	if strings.Contains(q.Serial(), "KVMGATE-VDAGENT-EXIT") {
		t.Errorf("spice-vdagent exited; guest logs:\n%s", logs())
	}
}
