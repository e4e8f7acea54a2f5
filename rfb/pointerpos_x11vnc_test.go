package rfb

import (
	"strconv"
	"testing"
	"time"

	"kvmgate/internal/testserver"
)

// TestX11vncPointerPos warps the X pointer from an X client (xdotool, as a
// desktop program would) and checks that the VNC client, which asked for
// PointerPos, is told the new position by x11vnc (libvncserver). QEMU's VNC
// server does not implement PointerPos.
func TestX11vncPointerPos(t *testing.T) {
	if testing.Short() {
		t.Skip("real-server test; skipped with -short")
	}
	t.Parallel()
	x := testserver.StartX11vnc(t, testserver.X11vncOptions{Width: 320, Height: 240})
	watcher := connect(t, x.Addr(), NewOptions())
	for _, p := range [][2]int{{200, 150}, {17, 33}} {
		x.Run(t, "xdotool", "mousemove", strconv.Itoa(p[0]), strconv.Itoa(p[1]))
		waitFor(t, "PointerPos", 10*time.Second, func() bool {
			cx, cy, ok := watcher.fb.CursorPos()
			return ok && cx == p[0] && cy == p[1]
		})
	}
	watcher.checkRunning(t)
}
