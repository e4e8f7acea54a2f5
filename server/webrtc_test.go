package server_test

import (
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"

	"kvmgate/encoders/video"
	"kvmgate/framebuffer"
	"kvmgate/input"
	"kvmgate/server"
)

// playoutDelayURI names the RTP header extension that lets the server ask
// the browser to render frames without a playout delay.
const playoutDelayURI = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay"

// rtcKeyframe reports whether an RTP packet starts a keyframe.
func rtcKeyframe(codec string, pkt *rtp.Packet) bool {
	p := pkt.Payload
	switch codec {
	case video.VP8:
		var d codecs.VP8Packet
		payload, err := d.Unmarshal(p)
		return err == nil && d.S == 1 && d.PID == 0 && len(payload) > 0 && payload[0]&1 == 0
	case video.H264:
		if len(p) < 2 {
			return false
		}
		switch p[0] & 0x1f {
		case 5, 7: // IDR slice, SPS
			return true
		case 24: // STAP-A
			for i := 1; i+2 < len(p); {
				n := int(p[i])<<8 | int(p[i+1])
				if t := p[i+2] & 0x1f; t == 5 || t == 7 {
					return true
				}
				i += 2 + n
			}
		case 28: // FU-A
			return p[1]&0x80 != 0 && p[1]&0x1f == 5
		}
	}
	return false
}

// TestWebRTCSignalling plays the browser with a pion peer: the server
// offers a video track and the "input" DataChannel over the console
// WebSocket, media flows, a PLI gets a keyframe on a still screen, and a
// key sent on the DataChannel reaches the console.
func TestWebRTCSignalling(t *testing.T) {
	for _, codec := range video.Codecs {
		t.Run(codec, func(t *testing.T) {
			if err := video.Available(codec); err != nil {
				t.Skip(err)
			}
			e := newEnv(t, server.Options{Target: "vnc://fake:1", WebRTC: server.WebRTCOptions{Interfaces: []string{"lo"}}}, 320, 200)
			c := e.connect("transport=webrtc&codec=" + codec)
			e.paint(c, func(cv *framebuffer.Canvas, b *framebuffer.Batch) {
				desktopNoise(cv, 3)
				b.Damage(cv.Bounds())
			})
			if m := c.waitJSON("transport"); m["transport"] != "webrtc" || m["codec"] != codec {
				t.Fatalf("transport message %v, want webrtc/%s", m, codec)
			}
			offer := c.waitJSON("rtc-offer")
			sdp, _ := offer["sdp"].(string)
			for _, want := range []string{"m=video", "m=application", "transport-cc", "nack pli", playoutDelayURI} {
				if !strings.Contains(sdp, want) {
					t.Errorf("offer lacks %q:\n%s", want, sdp)
				}
			}

			// The answering side accepts the playout-delay extension, as
			// Chromium does.
			m := &webrtc.MediaEngine{}
			if err := m.RegisterDefaultCodecs(); err != nil {
				t.Fatal(err)
			}
			if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: playoutDelayURI}, webrtc.RTPCodecTypeVideo); err != nil {
				t.Fatal(err)
			}
			reg := &interceptor.Registry{}
			if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
				t.Fatal(err)
			}
			pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg)).NewPeerConnection(webrtc.Configuration{})
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			var packets, keyframes, zeroDelay atomic.Int64
			ssrc := make(chan uint32, 1)
			pc.OnTrack(func(tr *webrtc.TrackRemote, rr *webrtc.RTPReceiver) {
				if !strings.EqualFold(tr.Codec().MimeType, "video/"+codec) {
					t.Errorf("track codec %s, want %s", tr.Codec().MimeType, codec)
				}
				var extID uint8
				for _, e := range rr.GetParameters().HeaderExtensions {
					if e.URI == playoutDelayURI {
						extID = uint8(e.ID)
					}
				}
				ssrc <- uint32(tr.SSRC())
				for {
					pkt, _, err := tr.ReadRTP()
					if err != nil {
						return
					}
					packets.Add(1)
					if ext := pkt.GetExtension(extID); extID != 0 && string(ext) == "\x00\x00\x00" {
						zeroDelay.Add(1)
					}
					if rtcKeyframe(codec, pkt) {
						keyframes.Add(1)
					}
				}
			})
			dcOpen := make(chan *webrtc.DataChannel, 1)
			pc.OnDataChannel(func(dc *webrtc.DataChannel) {
				if dc.Label() != "input" {
					t.Errorf("data channel %q, want input", dc.Label())
				}
				dc.OnOpen(func() { dcOpen <- dc })
			})
			if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
				t.Fatal(err)
			}
			answer, err := pc.CreateAnswer(nil)
			if err != nil {
				t.Fatal(err)
			}
			gathered := webrtc.GatheringCompletePromise(pc)
			if err := pc.SetLocalDescription(answer); err != nil {
				t.Fatal(err)
			}
			<-gathered // no trickle from this side: the answer carries the candidates
			c.send(map[string]any{"t": "rtc-answer", "sdp": pc.LocalDescription().SDP})

			// Read the socket (server candidates, records, stats) until
			// cond holds.
			until := func(what string, cond func() bool) {
				t.Helper()
				deadline := time.Now().Add(wait)
				for !cond() {
					if time.Now().After(deadline) {
						t.Fatalf("timed out waiting for %s", what)
					}
					if _, err := c.step(); err != nil {
						t.Fatalf("waiting for %s: %v", what, err)
					}
					for len(c.msgs) > 0 {
						m := c.msgs[0]
						c.msgs = c.msgs[1:]
						if m["t"] != "rtc-candidate" {
							continue
						}
						b, _ := json.Marshal(m["candidate"])
						var init webrtc.ICECandidateInit
						if err := json.Unmarshal(b, &init); err != nil {
							t.Fatalf("candidate %s: %v", b, err)
						}
						if err := pc.AddICECandidate(init); err != nil {
							t.Fatalf("add candidate %s: %v", b, err)
						}
					}
				}
			}
			until("media", func() bool { return packets.Load() > 0 && keyframes.Load() > 0 })
			if z, n := zeroDelay.Load(), packets.Load(); z == 0 {
				t.Errorf("none of %d packets carries playout delay 0/0", n)
			}

			// A still screen: wait for the stream to go quiet (after the
			// refinement), then ask for a keyframe.
			lastN, lastAt := int64(-1), time.Now()
			until("a still stream", func() bool {
				if n := packets.Load(); n != lastN {
					lastN, lastAt = n, time.Now()
					return false
				}
				return time.Since(lastAt) > time.Second
			})
			before := keyframes.Load()
			if err := pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: <-ssrc}}); err != nil {
				t.Fatal(err)
			}
			until("a keyframe after PLI", func() bool { return keyframes.Load() > before })

			// Keys over the DataChannel reach the console.
			var dc *webrtc.DataChannel
			until("the input channel", func() bool {
				select {
				case dc = <-dcOpen:
					return true
				default:
					return false
				}
			})
			for _, down := range []bool{true, false} {
				msg, _ := json.Marshal(map[string]any{"t": "key", "code": "KeyQ", "key": "q", "down": down})
				if err := dc.SendText(string(msg)); err != nil {
					t.Fatal(err)
				}
			}
			con := e.backend.Last()
			until("the key", func() bool { return len(con.Keys()) == 2 })
			if k := con.Keys(); k[0] != (input.KeyEvent{Code: "KeyQ", Key: "q", Down: true}) {
				t.Errorf("key %+v, want KeyQ down", k[0])
			}
			st := c.waitJSON("stats")
			if st["transport"] != "webrtc" || st["codec"] != codec {
				t.Errorf("stats %v, want transport webrtc, codec %s", st, codec)
			}
		})
	}
}
