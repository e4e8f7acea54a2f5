package testserver

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// GuestProgramName is the name of the guest helper program in the Linux
// guest's /bin (see QEMUOptions.GuestProgram and package guestprog):
// "kvmgate-guest evdump" reports input events on the serial port,
// "kvmgate-guest cursor" sets the hardware cursor of package guestcursor.
const GuestProgramName = "kvmgate-guest"

var guestProg struct {
	once sync.Once
	data []byte
	err  error
	out  []byte
}

// guestProgram builds the guest helper program (static, no cgo) once per
// test binary and returns it. The build is reproducible (no VCS stamp, no
// paths), so the initramfs and snapshot caches keyed on it stay valid.
func guestProgram(t testing.TB) []byte {
	t.Helper()
	guestProg.once.Do(func() {
		// go test puts its own go first on PATH.
		goBin, err := exec.LookPath("go")
		if err != nil {
			guestProg.err = fmt.Errorf("the go command is not on PATH: %w", err)
			return
		}
		dir, err := os.MkdirTemp("", "kvmgate-guestprog-")
		if err != nil {
			guestProg.err = err
			return
		}
		defer os.RemoveAll(dir)
		bin := filepath.Join(dir, GuestProgramName)
		cmd := exec.Command(goBin, "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", bin,
			"kvmgate/internal/testserver/guestprog")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOFLAGS=")
		if guestProg.out, guestProg.err = cmd.CombinedOutput(); guestProg.err != nil {
			return
		}
		guestProg.data, guestProg.err = os.ReadFile(bin)
	})
	if guestProg.err != nil {
		t.Fatalf("testserver: build the guest program: %v\n%s", guestProg.err, guestProg.out)
	}
	return guestProg.data
}

// InputGuest is the Linux guest on the qxl KMS console with a PS/2 mouse, a
// USB controller (-usb, for a tablet hot-plugged later) and the guest
// program dumping every input event to the serial port. The SPICE mouse
// and cursor tests (spice, e2e) all start it with these options, so they
// share one cached snapshot of the booted guest; callers add VGA and SPICE
// settings as they need.
func InputGuest() QEMUOptions {
	return QEMUOptions{
		Guest:        GuestLinux,
		Modules:      []string{"qxl", "evdev", "psmouse", "uhci_hcd", "usbhid", "hid_generic"},
		GuestProgram: true,
		InitCommands: GuestProgramName + " evdump &",
		ExtraArgs:    []string{"-usb"},
	}
}
