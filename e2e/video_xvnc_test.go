package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"kvmgate/encoders/video"
	"kvmgate/internal/browsertest"
	"kvmgate/internal/testserver"
	"kvmgate/server"
)

// TestXvncVideo runs the real server against TigerVNC's Xvnc showing ico's
// spinning polyhedron next to an xterm, and the console page in headless
// Chromium on each video transport: WebRTC (VP8) and WebSocket video with
// WebCodecs (H.264). While ico spins, frames keep being decoded; once it is
// frozen (SIGSTOP) the picture settles to within 30 dB PSNR of xwd's
// screenshot of the root window; a command typed in the page reaches the
// xterm's shell, which appends it to a file, and the echo reaches the
// picture. On WebRTC every key goes over the DataChannel.
func TestXvncVideo(t *testing.T) {
	x := testserver.StartXvnc(t, testserver.XvncOptions{Width: 640, Height: 480})
	x.Run(t, "xsetroot", "-solid", "#204060")
	out := filepath.Join(t.TempDir(), "typed.txt")
	// No window manager runs, so keyboard focus follows the pointer: each
	// subtest moves it onto the xterm from the page.
	x.Start(t, "xterm", "-geometry", "50x10+10+10", "-title", "kvmgate-video",
		"-e", "sh", "-c", `echo "type below"; exec cat >> "$0"`, out)
	ico := x.Start(t, "ico", "-faces", "-noedges", "-sleep", "0.02", "-geometry", "300x260+330+210")
	// A stopped ico ignores the SIGTERM of its cleanup for two seconds;
	// this cleanup runs first and lets it go.
	t.Cleanup(func() { _ = syscall.Kill(ico.Pid(), syscall.SIGCONT) })
	x.WaitWindow(t, "kvmgate-video", wait)
	x.WaitWindow(t, "Ico: thread 1", wait)

	_, hs := startServer(t, server.Options{Target: "vnc://" + x.Addr(), WebRTC: loopbackRTC})
	b := browsertest.Launch(t)

	for _, tc := range []struct{ transport, codec string }{
		{"webrtc", video.VP8},
		{"wsvideo", video.H264},
	} {
		t.Run(tc.transport+"-"+tc.codec, func(t *testing.T) {
			if err := video.Available(tc.codec); err != nil {
				t.Skip(err)
			}
			rtc := tc.transport == "webrtc"
			if err := syscall.Kill(ico.Pid(), syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
			p := b.NewPage(t, hs.URL+"/?transport="+tc.transport+"&codec="+tc.codec)
			defer p.Close(t)
			waitConnected(t, p)
			p.WaitFor(t, el+`.stats().transport === '`+tc.transport+`' && `+el+`.stats().codec === '`+tc.codec+`'`, wait)

			// ico spins: pictures keep being decoded and shown.
			if rtc {
				p.WaitFor(t, el+`.rtc && `+el+`.rtc.frames > 0`, wait)
			}
			before := framesDrawn(t, p)
			p.WaitFor(t, el+`.stats().framesDrawn >= `+strconv.Itoa(before+15)+` && `+el+`.stats().fps > 0`, wait)
			if rtc {
				p.WaitFor(t, el+`.video.currentTime > 0 && `+el+`.rtcBytes > 0`, wait)
			}

			// Frozen: the picture settles to the X server's screen.
			if err := syscall.Kill(ico.Pid(), syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			waitPicturePSNR(t, p, rtc, x, 30)

			// Keys reach the xterm's shell; on WebRTC over the DataChannel.
			if rtc {
				countKeyRoutes(t, p)
			}
			px, py := canvasPoint(t, p, 100, 50)
			p.MouseMove(t, px, py)
			if err := os.Truncate(out, 0); err != nil {
				t.Fatal(err)
			}
			line := "echo " + tc.transport + " " + tc.codec + " ~!@#$%^&*()_+{}|:<>?"
			p.MustEval(t, el+`.focus()`)
			p.Type(t, line)
			p.KeyPress(t, "Enter")
			waitFileText(t, out, line+"\n")
			if rtc {
				ws, dc := keyRoutes(t, p)
				if ws != 0 || dc < 2*(len(line)+1) {
					t.Errorf("key messages: %d over the WebSocket, %d over the DataChannel; want 0 and all of them (>= %d)", ws, dc, 2*(len(line)+1))
				}
			}
			// The echo in the xterm reaches the picture, and sharpens once
			// the screen is still.
			waitPicturePSNR(t, p, rtc, x, 30)
			waitPicturePSNR(t, p, rtc, x, 35)

			var st struct{ Transport, Codec string }
			if err := p.EvalInto(el+`.stats()`, &st); err != nil {
				t.Fatal(err)
			}
			if st.Transport != tc.transport || st.Codec != tc.codec {
				t.Errorf("stats: transport %q codec %q, want %s %s", st.Transport, st.Codec, tc.transport, tc.codec)
			}
			noErrors(t, p)
		})
	}
}

// waitFileText waits until the file holds exactly want, and fails with
// what it holds otherwise.
func waitFileText(t *testing.T, name, want string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		got, _ := os.ReadFile(name)
		if string(got) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s holds %q, want %q", name, got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
