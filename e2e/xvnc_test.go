package e2e

import (
	"path/filepath"
	"testing"

	"kvmgate/internal/browsertest"
	"kvmgate/internal/testserver"
	"kvmgate/server"
)

// TestXvnc runs the real server against TigerVNC's Xvnc with an xterm, and
// the console page in headless Chromium. What the canvas shows is compared
// with xwd's screenshot of the root window; what is typed in the page must
// land in the xterm, whose shell writes it to a file.
func TestXvnc(t *testing.T) {
	t.Parallel()
	x := testserver.StartXvnc(t, testserver.XvncOptions{Width: 800, Height: 600})
	x.Run(t, "xsetroot", "-solid", "#204060")
	out := filepath.Join(t.TempDir(), "typed.txt")
	// No window manager runs, so keyboard focus follows the pointer: the
	// test moves it onto the xterm from the page.
	x.Start(t, "xterm", "-geometry", "80x30+100+100", "-title", "kvmgate-e2e",
		"-e", "sh", "-c", `echo "type below"; exec cat > "$0"`, out)
	x.WaitWindow(t, "kvmgate-e2e", wait)

	_, hs := startServer(t, server.Options{Target: "vnc://" + x.Addr()})
	b := browsertest.Launch(t)
	p := b.NewPage(t, hs.URL+"/")
	waitConnected(t, p)

	t.Run("pointer and cursor shape", func(t *testing.T) {
		// Xvnc draws the pointer into the framebuffer while it sits where
		// this client did not put it; once the page moves it, the shape
		// comes as a cursor record and the browser draws it as the CSS
		// cursor, never into the canvas.
		px, py := canvasPoint(t, p, 300, 300)
		p.MouseMove(t, px, py)
		p.WaitFor(t, el+`.canvas.style.cursor.startsWith('url(')`, wait)
	})

	t.Run("canvas equals xwd", func(t *testing.T) {
		waitScreen(t, p, x)
	})

	t.Run("typed keys land in the xterm", func(t *testing.T) {
		const line = "Hello from Chromium: a-z A-Z 0-9 ~!@#$%^&*()_+{}|:\"<>?"
		p.MustEval(t, el+`.focus()`)
		p.Type(t, line)
		p.KeyPress(t, "Enter")
		waitFileText(t, out, line+"\n")
		waitScreen(t, p, x)
		noErrors(t, p)
	})
}
