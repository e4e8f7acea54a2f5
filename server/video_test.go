package server_test

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"kvmgate/encoders/video"
	"kvmgate/framebuffer"
	"kvmgate/server"
)

// videoClient plays a WebCodecs browser: it splits binary messages into
// records, decodes video frames with the codec's decoder and acks frames.
type videoClient struct {
	*client
	dec     video.Decoder
	codec   string // from the last video config
	w, h    int    // from the last video config
	canvas  framebuffer.Canvas
	pics    int // pictures decoded
	keys    int // keyframes received
	records map[byte]int
}

func (c *videoClient) close() {
	if c.dec != nil {
		c.dec.Close()
	}
}

// stepVideo reads one message; it returns whether a frame ended.
func (c *videoClient) stepVideo() (bool, error) {
	typ, data, err := c.read()
	if err != nil {
		return false, err
	}
	if typ == websocket.TextMessage {
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			return false, err
		}
		c.msgs = append(c.msgs, m)
		return false, nil
	}
	ended := false
	for len(data) > 0 {
		typ := data[0]
		c.records[typ]++
		n := 0
		switch typ {
		case 0x10: // resize
			n = 5
		case 0x16: // cursor
			if len(data) < 9 {
				return false, errors.New("truncated cursor")
			}
			w, h := int(binary.LittleEndian.Uint16(data[1:])), int(binary.LittleEndian.Uint16(data[3:]))
			n = 9 + w*h*4
		case 0x17: // frame end
			n = 9
			c.frames++
			ended = true
			c.send(map[string]any{"t": "ack", "f": binary.LittleEndian.Uint32(data[1:])})
		case 0x19: // short frame end: the frame number as a varint
			f, k := binary.Uvarint(data[1:])
			if k <= 0 {
				return false, errors.New("bad frame end")
			}
			n = 1 + k
			c.frames++
			ended = true
			c.send(map[string]any{"t": "ack", "f": f})
		case video.RecordConfig, video.RecordFrame:
			r, k, err := video.ParseRecord(data)
			if err != nil {
				return false, err
			}
			n = k
			if err := c.video(r); err != nil {
				return false, err
			}
		default:
			return false, errors.New("unexpected record type in a video stream")
		}
		if n > len(data) {
			return false, errors.New("truncated record")
		}
		data = data[n:]
	}
	return ended, nil
}

func (c *videoClient) video(r video.Record) error {
	if r.Type == video.RecordConfig {
		c.close()
		c.codec, c.w, c.h = r.Codec, r.W, r.H
		name := video.VP8
		if r.Codec != "vp8" {
			name = video.H264
		}
		d, err := video.NewDecoder(name)
		c.dec = d
		return err
	}
	if c.dec == nil {
		return errors.New("video frame before a config")
	}
	if r.Frame.Keyframe {
		c.keys++
	}
	pic, err := c.dec.Decode(r.Frame.Data)
	if err != nil || pic == nil {
		return errors.Join(err, errors.New("no picture"))
	}
	pic.ToRGBA(&c.canvas)
	c.canvas.Resize(c.w, c.h)
	c.pics++
	return nil
}

// settle reads until the decoded picture is within 30 dB of want.
func (c *videoClient) settle(want *framebuffer.Canvas) {
	c.t.Helper()
	deadline := time.Now().Add(wait)
	for c.canvas.W != want.W || c.canvas.H != want.H || video.PSNR(&c.canvas, want) < 30 {
		if time.Now().After(deadline) {
			c.t.Fatalf("picture did not settle: %dx%d vs %dx%d, PSNR %.1f dB after %d pictures", c.canvas.W, c.canvas.H, want.W, want.H, video.PSNR(&c.canvas, want), c.pics)
		}
		if _, err := c.stepVideo(); err != nil {
			c.t.Fatalf("read: %v", err)
		}
	}
}

func (c *videoClient) waitTransport() map[string]any {
	c.t.Helper()
	return c.waitVideoJSON("transport")
}

// waitVideoJSON reads until a JSON message of type typ arrived, and
// returns it.
func (c *videoClient) waitVideoJSON(typ string) map[string]any {
	c.t.Helper()
	for {
		for i, m := range c.msgs {
			if m["t"] == typ {
				c.msgs = append(c.msgs[:i], c.msgs[i+1:]...)
				return m
			}
		}
		if _, err := c.stepVideo(); err != nil {
			c.t.Fatalf("waiting for %q: %v", typ, err)
		}
	}
}

func desktopNoise(cv *framebuffer.Canvas, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 9))
	cv.Fill(cv.Bounds(), 0xff303030)
	for range 40 {
		r := rc(rng.IntN(cv.W-40), rng.IntN(cv.H-20), 8+rng.IntN(32), 8+rng.IntN(12))
		cv.Fill(r, 0xff000000|rng.Uint32()&0xffffff)
	}
}

func TestWebSocketVideo(t *testing.T) {
	for _, codec := range video.Codecs {
		t.Run(codec, func(t *testing.T) {
			if err := video.Available(codec); err != nil {
				t.Skip(err)
			}
			e := newEnv(t, server.Options{Target: "vnc://fake:1"}, 640, 400)
			c := &videoClient{client: e.connect("transport=wsvideo&codec=" + codec), records: map[byte]int{}}
			defer c.close()
			if m := c.waitTransport(); m["transport"] != "wsvideo" || m["codec"] != codec {
				t.Fatalf("transport message %v, want wsvideo/%s", m, codec)
			}
			want := e.paint(c.client, func(cv *framebuffer.Canvas, b *framebuffer.Batch) {
				desktopNoise(cv, 1)
				b.Damage(cv.Bounds())
			})
			c.settle(want)
			if c.records[0x10] == 0 || c.records[video.RecordConfig] == 0 || c.keys == 0 {
				t.Errorf("records %v, keyframes %d: want a resize, a video config and a keyframe", c.records, c.keys)
			}
			if codec == video.H264 && len(c.codec) != len("avc1.42e01f") {
				t.Errorf("config codec %q, want avc1.PPCCLL", c.codec)
			}

			// Motion: a moving box; each change arrives as a picture.
			for i := range 5 {
				want = e.paint(c.client, func(cv *framebuffer.Canvas, b *framebuffer.Batch) {
					r := rc(100+i*20, 100, 60, 40)
					cv.Fill(r, 0xff2080f0)
					b.Damage(r)
				})
			}
			c.settle(want)

			// Stats report the transport.
			st := c.waitVideoJSON("stats")
			if st["transport"] != "wsvideo" || st["codec"] != codec || st["bitrate"] == nil {
				t.Errorf("stats %v: want transport wsvideo, codec %s and a bitrate", st, codec)
			}

			// A still screen: after at most a refinement, nothing is sent.
			pics := c.pics
			deadline := time.Now().Add(1500 * time.Millisecond)
			_ = c.conn.SetReadDeadline(deadline)
			for {
				typ, _, err := c.conn.ReadMessage()
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if typ == websocket.BinaryMessage {
					pics++
				}
			}
			if pics > c.pics+1 {
				t.Errorf("a still screen got %d more frames, want at most one refinement", pics-c.pics)
			}
		})
	}
}

// TestTransportSwitch switches a viewer from video to tiles and back in
// one session, and checks the error paths of the transport message.
func TestTransportSwitch(t *testing.T) {
	if err := video.Available(video.VP8); err != nil {
		t.Skip(err)
	}
	e := newEnv(t, server.Options{Target: "vnc://fake:1", WebRTC: server.WebRTCOptions{Disabled: true}}, 320, 200)
	c := &videoClient{client: e.connect("transport=webrtc"), records: map[byte]int{}}
	defer c.close()
	// WebRTC is disabled: the server says so and uses WebSocket video.
	if m := c.waitTransport(); m["transport"] != "wsvideo" || m["codec"] != "vp8" {
		t.Fatalf("transport message %v, want wsvideo/vp8", m)
	}
	if m := c.waitVideoJSON("error"); m["fatal"] != false {
		t.Errorf("error %v, want a non-fatal note about webrtc", m)
	}
	want := e.paint(c.client, func(cv *framebuffer.Canvas, b *framebuffer.Batch) {
		desktopNoise(cv, 2)
		b.Damage(cv.Bounds())
	})
	c.settle(want)

	c.send(map[string]any{"t": "transport", "transport": "tiles"})
	if m := c.waitTransport(); m["transport"] != "tiles" {
		t.Fatalf("transport message %v, want tiles", m)
	}
	// From here on the stream is tiles: a full frame that decodes exactly.
	c.converge(want)

	c.send(map[string]any{"t": "transport", "transport": "carrier-pigeon"})
	if m := c.waitJSON("error"); m["fatal"] != false {
		t.Errorf("error %v, want a non-fatal note", m)
	}
	c.send(map[string]any{"t": "transport", "transport": "wsvideo", "codec": "vp8"})
	// The tiles decoder cannot read video; switch the reader back.
	vc := &videoClient{client: c.client, records: map[byte]int{}}
	defer vc.close()
	if m := vc.waitTransport(); m["transport"] != "wsvideo" {
		t.Fatalf("transport message %v, want wsvideo", m)
	}
	vc.settle(want)
}

func TestVideoUnavailableFallsBackToTiles(t *testing.T) {
	if video.Available(video.VP8) == nil || video.Available(video.H264) == nil {
		t.Skip("this build has a video codec")
	}
	e := newEnv(t, server.Options{Target: "vnc://fake:1"}, 320, 200)
	c := e.connect("transport=wsvideo")
	if m := c.waitJSON("transport"); m["transport"] != "tiles" {
		t.Fatalf("transport message %v, want tiles", m)
	}
	c.converge(e.snapshot())
}

// TestAutoTransportStart: transport=auto starts on tiles with auto set in
// the transport message, and a transport the viewer names ends auto mode.
// (Switching by activity is tested end to end in e2e/video_auto_test.go.)
func TestAutoTransportStart(t *testing.T) {
	if err := video.Available(video.VP8); err != nil {
		t.Skip(err)
	}
	e := newEnv(t, server.Options{Target: "vnc://fake:1"}, 320, 200)
	c := e.connect("transport=auto")
	if m := c.waitJSON("transport"); m["transport"] != "tiles" || m["auto"] != true {
		t.Fatalf("transport message %v, want tiles, auto", m)
	}
	c.converge(e.snapshot())
	c.send(map[string]any{"t": "transport", "transport": "tiles"})
	if m := c.waitJSON("transport"); m["transport"] != "tiles" || m["auto"] != nil {
		t.Fatalf("transport message %v, want tiles without auto", m)
	}
}

// TestAutoWithoutVideo: without a codec, auto says why and stays on tiles.
func TestAutoWithoutVideo(t *testing.T) {
	if video.Available(video.VP8) == nil || video.Available(video.H264) == nil {
		t.Skip("this build has a video codec")
	}
	e := newEnv(t, server.Options{Target: "vnc://fake:1"}, 320, 200)
	c := e.connect("transport=auto")
	if m := c.waitJSON("error"); m["fatal"] != false {
		t.Errorf("error %v, want a non-fatal note", m)
	}
	if m := c.waitJSON("transport"); m["transport"] != "tiles" || m["auto"] != nil {
		t.Fatalf("transport message %v, want tiles without auto", m)
	}
	c.converge(e.snapshot())
}
