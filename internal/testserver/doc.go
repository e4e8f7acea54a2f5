// Package testserver starts real console servers for integration tests:
// TigerVNC's Xvnc, Xvfb with x11vnc, and QEMU (a SeaBIOS screen or a small
// Linux guest with a busybox shell on the VGA text console).
//
// Every server listens on 127.0.0.1 only, on ports and X displays picked at
// run time, so several servers (and several test binaries) can run at once.
// Each Start function ties the server's life to the test: t.Cleanup kills its
// whole process group, and when the test fails the server's output is copied
// into the test log.
//
// A missing server binary fails the test with t.Fatalf, naming the Debian
// package to install (scripts/install-deps.sh installs them all). Tests never
// skip because a server is missing: a green run means the servers really ran.
//
// Screenshots come from the server side, independent of any VNC client:
// xwd for X servers (parsed by ParseXWD) and the QEMU monitor's screendump
// (parsed by ParsePPM). Both return a *framebuffer.Canvas that tests compare
// with what kvmgate decoded.
//
// QEMU is driven through QMP on a unix socket; Monitor runs human monitor
// commands through it. The Linux guest's initramfs is built at test time from
// the host's busybox-static (no cpio tool needed) and cached, together with
// snapshots of the booted guest (about 80 MB each), in kvmgate-test under the
// user cache directory (~/.cache/kvmgate-test). Deleting that directory is
// always safe: it is rebuilt on demand.
package testserver

import (
	"kvmgate/framebuffer"
)

// Screen is what every started server offers: the address of its RFB (VNC)
// listener and a server-side screenshot.
type Screen interface {
	// Addr returns the host:port of the VNC listener, always on 127.0.0.1.
	Addr() string
	// Password returns the VNC password, or "" when no authentication is set.
	Password() string
	// Screenshot returns the server's current screen as an opaque RGBA
	// canvas.
	Screenshot() (*framebuffer.Canvas, error)
}

var (
	_ Screen = (*X)(nil)
	_ Screen = (*QEMU)(nil)
)
