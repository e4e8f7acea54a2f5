package e2e

import (
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"kvmgate/demo"
	"kvmgate/encoders/video"
	"kvmgate/framebuffer"
	"kvmgate/internal/browsertest"
	"kvmgate/server"
)

// TestWebRTC runs the demo console with its bouncing box through the real
// server to headless Chromium on `?transport=webrtc`: the peer connection
// comes up on loopback, the <video> plays the track while the box moves,
// its picture matches the framebuffer (PSNR >= 30 dB) once the box stops,
// and keys typed go over the DataChannel and reach the console.
func TestWebRTC(t *testing.T) {
	for _, codec := range video.Codecs {
		t.Run(codec, func(t *testing.T) {
			if err := video.Available(codec); err != nil {
				t.Skip(err)
			}
			addr, con := startDemo(t, demo.Options{
				Width: 640, Height: 400,
				Now:    func() time.Time { return time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC) },
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			})
			_, hs := startServer(t, server.Options{Target: "vnc://" + addr, WebRTC: loopbackRTC})
			fb := con.Framebuffer()

			b := browsertest.Launch(t)
			p := b.NewPage(t, hs.URL+"/?transport=webrtc&codec="+codec)
			waitConnected(t, p)
			p.WaitFor(t, el+`.stats().transport === 'webrtc' && `+el+`.stats().codec === '`+codec+`'`, wait)
			// The track plays: pictures are presented and playback advances.
			p.WaitFor(t, el+`.rtc && `+el+`.rtc.frames > 0`, wait)
			var before int
			if err := p.EvalInto(el+`.rtc.frames`, &before); err != nil {
				t.Fatal(err)
			}
			p.WaitFor(t, el+`.rtc.frames >= `+strconv.Itoa(before+15)+` && `+el+`.video.currentTime > 0`, wait)
			// Its bytes count in the statistics.
			p.WaitFor(t, el+`.rtcBytes > 0 && `+el+`.stats().bytesReceived >= `+el+`.rtcBytes`, wait)

			// Still screen: the picture settles to the framebuffer.
			con.SetAnimationPaused(true)
			waitVideoPSNR(t, p, fb, 30)

			// Keys go over the DataChannel (none over the WebSocket), reach
			// the demo, and their echo reaches the video.
			countKeyRoutes(t, p)
			p.MustEval(t, el+`.focus()`)
			p.Type(t, "echo rtc")
			p.KeyPress(t, "Enter")
			waitText(t, con, demo.Prompt+"echo rtc\nrtc")
			ws, dc := keyRoutes(t, p)
			if ws != 0 || dc < 16 {
				t.Errorf("key messages: %d over the WebSocket, %d over the DataChannel; want 0 and all of them", ws, dc)
			}
			waitVideoPSNR(t, p, fb, 30)
			waitVideoPSNR(t, p, fb, 35) // and sharper once it is still

			var st struct {
				Transport, Codec string
				Bitrate          int
			}
			if err := p.EvalInto(el+`.stats()`, &st); err != nil {
				t.Fatal(err)
			}
			if st.Transport != "webrtc" || st.Codec != codec {
				t.Errorf("stats: transport %q codec %q, want webrtc %s", st.Transport, st.Codec, codec)
			}
			t.Logf("stats: %+v", st)
			noErrors(t, p)
		})
	}
}

// waitVideoPSNR waits until the console's WebRTC <video>, drawn into a
// canvas in the page, is within min dB PSNR of the framebuffer.
func waitVideoPSNR(t *testing.T, p *browsertest.Page, fb *framebuffer.Framebuffer, min float64) {
	t.Helper()
	waitPicturePSNR(t, p, true, fbScreen{fb}, min)
}

// countKeyRoutes waits until the page's WebRTC DataChannel is open, then
// makes the page count the key messages its console sends over the
// WebSocket and over the DataChannel; keyRoutes reads the counts.
func countKeyRoutes(t *testing.T, p *browsertest.Page) {
	t.Helper()
	p.WaitFor(t, el+`.rtc && `+el+`.rtc.dc && `+el+`.rtc.dc.readyState === 'open'`, wait)
	p.MustEval(t, `(() => {
		const c = `+el+`, ws = c.conn, dc = c.rtc.dc;
		window.wsKeys = 0; window.dcKeys = 0;
		const wsSend = ws.send.bind(ws), dcSend = dc.send.bind(dc);
		ws.send = (m) => { if (m.t === 'key') window.wsKeys++; return wsSend(m); };
		dc.send = (s) => { if (JSON.parse(s).t === 'key') window.dcKeys++; return dcSend(s); };
	})()`)
}

// keyRoutes returns how many key messages the page sent over the WebSocket
// and over the DataChannel since countKeyRoutes.
func keyRoutes(t *testing.T, p *browsertest.Page) (ws, dc int) {
	t.Helper()
	var keys struct{ WS, DC int }
	if err := p.EvalInto(`({ws: window.wsKeys, dc: window.dcKeys})`, &keys); err != nil {
		t.Fatal(err)
	}
	return keys.WS, keys.DC
}

// loopbackRTC keeps ICE on the loopback interface: tests talk to nothing
// but this machine's loopback.
var loopbackRTC = server.WebRTCOptions{Interfaces: []string{"lo"}}

// TestWebRTCFallback makes WebRTC unusable: with no RTCPeerConnection in
// the page the client cannot answer the offer; with the server announcing
// an address nothing listens on (127.0.0.3; ICE itself stays on
// loopback) ICE never connects and no picture arrives. Either way the client tells the server by itself and the
// console continues on WebSocket video over the same connection, where
// typed keys reach the console.
func TestWebRTCFallback(t *testing.T) {
	if err := video.Available(video.VP8); err != nil {
		t.Skip(err)
	}
	for _, tc := range []struct {
		name  string
		rtc   server.WebRTCOptions
		setup string // run in the page before it reconnects
	}{
		{name: "ice-fails", rtc: server.WebRTCOptions{Interfaces: []string{"lo"}, PublicIPs: []string{"127.0.0.3"}}},
		{name: "no-rtcpeerconnection", rtc: loopbackRTC, setup: `delete window.RTCPeerConnection; window.RTCPeerConnection = undefined;`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, con := startDemo(t, demo.Options{
				Width: 640, Height: 400, PauseAnimation: true,
				Now:    func() time.Time { return time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC) },
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			})
			_, hs := startServer(t, server.Options{Target: "vnc://" + addr, WebRTC: tc.rtc})
			b := browsertest.Launch(t)
			p := b.NewPage(t, hs.URL+"/?transport=webrtc")
			p.WaitFor(t, el+` && `+el+`.state === 'connected'`, wait)
			p.MustEval(t, tc.setup+` window.rtcErrors = []; `+el+`.addEventListener('error', (e) => window.rtcErrors.push(e.detail.message)); `+el+`.connect()`)
			p.WaitFor(t, el+`.state === 'connected' && `+el+`.stats().transport === 'wsvideo'`, wait)
			waitPSNR(t, p, con.Framebuffer(), 30)
			var errs []string
			if err := p.EvalInto(`window.rtcErrors`, &errs); err != nil {
				t.Fatal(err)
			}
			t.Logf("errors shown: %q", errs)
			if len(errs) == 0 {
				t.Error("the console did not say why it left WebRTC")
			}
			p.MustEval(t, el+`.focus()`)
			p.Type(t, "echo ws")
			p.KeyPress(t, "Enter")
			waitText(t, con, "\nws")
			waitPSNR(t, p, con.Framebuffer(), 30)
		})
	}
}
