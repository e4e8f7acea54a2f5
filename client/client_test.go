package client_test

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"kvmgate/client"
	"kvmgate/encoders/tiles"
	"kvmgate/framebuffer"
	"kvmgate/internal/browsertest"
)

const wait = 10 * time.Second

// testConn is the server side of one browser connection, written by hand
// from docs/protocol.md.
type testConn struct {
	t     *testing.T
	ws    *websocket.Conn
	query string
	msgs  chan map[string]any // JSON messages from the browser
	zbuf  bytes.Buffer        // the connection's deflate stream output
	zw    *flate.Writer
}

// protoServer serves the real client page and a hand-written protocol
// server at /ws.
type protoServer struct {
	*httptest.Server
	conns chan *testConn
}

func newProtoServer(t *testing.T) *protoServer {
	t.Helper()
	s := &protoServer{conns: make(chan *testConn, 4)}
	up := websocket.Upgrader{Subprotocols: []string{"kvmgate.v1"}}
	mux := http.NewServeMux()
	mux.Handle("/client/", http.StripPrefix("/client/", http.FileServerFS(client.FS)))
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			t.Errorf("upgrade: %v", err)
			return
		}
		if ws.Subprotocol() != "kvmgate.v1" {
			t.Errorf("subprotocol %q, want kvmgate.v1", ws.Subprotocol())
		}
		c := &testConn{t: t, ws: ws, query: r.URL.RawQuery, msgs: make(chan map[string]any, 1000)}
		c.zw, _ = flate.NewWriter(&c.zbuf, flate.BestSpeed)
		go func() {
			defer close(c.msgs)
			for {
				typ, data, err := ws.ReadMessage()
				if err != nil {
					return
				}
				if typ != websocket.TextMessage {
					t.Errorf("browser sent a binary message")
					continue
				}
				var m map[string]any
				if err := json.Unmarshal(data, &m); err != nil {
					t.Errorf("browser sent bad JSON %q: %v", data, err)
					continue
				}
				c.msgs <- m
			}
		}()
		s.conns <- c
	})
	mux.HandleFunc("/parent", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(parentPage))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(client.Page("signed-ticket"))
	})
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func (s *protoServer) accept(t *testing.T) *testConn {
	t.Helper()
	select {
	case c := <-s.conns:
		t.Cleanup(func() { c.ws.Close() })
		return c
	case <-time.After(wait):
		t.Fatal("the page did not open a WebSocket")
		return nil
	}
}

func (c *testConn) sendJSON(v any) {
	c.t.Helper()
	if err := c.ws.WriteJSON(v); err != nil {
		c.t.Fatalf("send JSON: %v", err)
	}
}

func (c *testConn) sendBinary(b []byte) {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.BinaryMessage, b); err != nil {
		c.t.Fatalf("send binary: %v", err)
	}
}

// next returns the next message from the browser whose "t" is one of types,
// skipping others.
func (c *testConn) next(types ...string) map[string]any {
	c.t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case m, ok := <-c.msgs:
			if !ok {
				c.t.Fatalf("connection closed while waiting for %v", types)
			}
			for _, typ := range types {
				if m["t"] == typ {
					return m
				}
			}
		case <-deadline:
			c.t.Fatalf("no %v message from the browser", types)
		}
	}
}

// drain discards messages already received.
func (c *testConn) drain() {
	for {
		select {
		case <-c.msgs:
		default:
			return
		}
	}
}

// msg builds one binary message of records.
type msg struct{ bytes.Buffer }

func (m *msg) u8(v ...byte) { m.Write(v) }
func (m *msg) u16(v ...int) {
	for _, x := range v {
		m.Write(binary.LittleEndian.AppendUint16(nil, uint16(x)))
	}
}
func (m *msg) u32(v uint32) { m.Write(binary.LittleEndian.AppendUint32(nil, v)) }

// frame applies records both to the message and to the expected canvas.
type frame struct {
	m    msg
	c    *testConn
	want *framebuffer.Canvas
	// batch, while non-nil, collects fill, copy and deflate records in
	// their batch form (see beginBatch).
	batch *msg
}

// w is where the next fill, copy or deflate record goes.
func (f *frame) w() *msg {
	if f.batch != nil {
		return f.batch
	}
	return &f.m
}

// beginBatch starts a batch record: the fill, copy and deflate records up
// to endBatch go into it.
func (f *frame) beginBatch() { f.batch = &msg{} }

// endBatch compresses the batch on the connection's deflate stream and
// appends it to the message as one batch record (0x18).
func (f *frame) endBatch() {
	plain := f.batch.Bytes()
	f.batch = nil
	f.c.zw.Write(plain)
	f.c.zw.Flush()
	z, ok := bytes.CutSuffix(bytes.Clone(f.c.zbuf.Bytes()), []byte{0, 0, 0xff, 0xff})
	if !ok {
		f.c.t.Fatal("sync flush without its marker")
	}
	f.c.zbuf.Reset()
	f.m.u8(0x18)
	f.m.Write(binary.AppendUvarint(nil, uint64(len(plain))))
	f.m.Write(binary.AppendUvarint(nil, uint64(len(z))))
	f.m.Write(z)
}

func (f *frame) resize(w, h int) {
	f.m.u8(0x10)
	f.m.u16(w, h)
	f.want.Resize(w, h)
	f.want.Fill(f.want.Bounds(), 0xff000000)
}

func (f *frame) fill(r framebuffer.Rect, red, g, b byte) {
	m := f.w()
	m.u8(0x11)
	m.u16(r.X, r.Y, r.W, r.H)
	m.u8(red, g, b)
	f.want.Fill(r, uint32(red)|uint32(g)<<8|uint32(b)<<16|0xff000000)
}

// deflate sends rgb (3 bytes per pixel) or, with a palette, indices.
func (f *frame) deflate(r framebuffer.Rect, palette [][3]byte, data []byte) {
	f.deflateFormat(r, palette, data, 1)
}

// deflateColumns sends indices (one byte each in data, as for deflate) in
// format 3: packed, column by column.
func (f *frame) deflateColumns(r framebuffer.Rect, palette [][3]byte, data []byte) {
	f.deflateFormat(r, palette, data, 3)
}

func (f *frame) deflateFormat(r framebuffer.Rect, palette [][3]byte, data []byte, format byte) {
	m := f.w()
	m.u8(0x14)
	m.u16(r.X, r.Y, r.W, r.H)
	var plain []byte
	if palette == nil {
		m.u8(0)
	} else {
		m.u8(format, byte(len(palette)-1))
		for _, p := range palette { // the palette leads the inflated bytes
			plain = append(plain, p[:]...)
		}
	}
	if format == 3 {
		bits := tiles.PackedBits(len(palette))
		for x := 0; x < r.W; x++ {
			acc, n := byte(0), 0
			for y := 0; y < r.H; y++ {
				acc = acc<<bits | data[y*r.W+x]
				if n += bits; n == 8 {
					plain, acc, n = append(plain, acc), 0, 0
				}
			}
			if n > 0 {
				plain = append(plain, acc<<(8-n))
			}
		}
	} else {
		plain = append(plain, data...)
	}
	if f.batch != nil { // inline: the batch is compressed as a whole
		m.Write(plain)
	} else {
		f.c.zw.Write(plain)
		f.c.zw.Flush()
		z := bytes.Clone(f.c.zbuf.Bytes())
		f.c.zbuf.Reset()
		m.u32(uint32(len(z)))
		m.Write(z)
	}
	for y := 0; y < r.H; y++ {
		row := f.want.Row(r.X, r.Y+y, r.W)
		for x := 0; x < r.W; x++ {
			var p []byte
			if palette == nil {
				p = data[(y*r.W+x)*3:][:3]
			} else {
				p = palette[data[y*r.W+x]][:]
			}
			copy(row[x*4:], p)
			row[x*4+3] = 255
		}
	}
}

func (f *frame) png(x, y int, img *image.NRGBA) {
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		f.c.t.Fatal(err)
	}
	f.image(0x12, x, y, img.Rect.Dx(), img.Rect.Dy(), b.Bytes())
	for j := 0; j < img.Rect.Dy(); j++ {
		copy(f.want.Row(x, y+j, img.Rect.Dx()), img.Pix[j*img.Stride:][:img.Rect.Dx()*4])
	}
}

func (f *frame) jpeg(x, y, w, h int, c color.NRGBA) {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(img.Pix); i += 4 {
		copy(img.Pix[i:], []byte{c.R, c.G, c.B, 255})
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 95}); err != nil {
		f.c.t.Fatal(err)
	}
	f.image(0x13, x, y, w, h, b.Bytes())
	f.want.Fill(framebuffer.Rect{X: x, Y: y, W: w, H: h}, uint32(c.R)|uint32(c.G)<<8|uint32(c.B)<<16|0xff000000)
}

func (f *frame) image(typ byte, x, y, w, h int, data []byte) {
	f.m.u8(typ)
	f.m.u16(x, y, w, h)
	f.m.u32(uint32(len(data)))
	f.m.Write(data)
}

func (f *frame) copyRect(src framebuffer.Rect, dx, dy int) {
	m := f.w()
	m.u8(0x15)
	m.u16(src.X, src.Y, src.W, src.H, dx, dy)
	f.want.Move(src, dx, dy)
}

func (f *frame) cursor(w, h, hx, hy int) {
	f.m.u8(0x16)
	f.m.u16(w, h, hx, hy)
	for i := 0; i < w*h; i++ {
		f.m.u8(byte(i*40), 0, 255, byte(255*(i%2)))
	}
}

// endShort ends the frame with the short frame end record (0x19).
func (f *frame) endShort(n uint32) {
	f.m.u8(0x19)
	f.m.Write(binary.AppendUvarint(nil, uint64(n)))
}

func (f *frame) end(n uint32) {
	f.m.u8(0x17)
	f.m.u32(n)
	f.m.u32(uint32(time.Now().UnixMilli()))
}

// flush sends the records so far as one binary message.
func (f *frame) flush() {
	f.c.t.Helper()
	f.c.sendBinary(bytes.Clone(f.m.Bytes()))
	f.m.Reset()
}

func gradient(w, h int) []byte {
	b := make([]byte, w*h*3)
	for i := range w * h {
		b[i*3], b[i*3+1], b[i*3+2] = byte(i*7), byte(i/w*13), byte(i%w*17)
	}
	return b
}

func indices(w, h, n int) []byte {
	b := make([]byte, w*h)
	for i := range b {
		b[i] = byte((i/3 + i/w) % n)
	}
	return b
}

// compare checks the browser's canvas against want, allowing a small
// difference inside the lossy rectangles.
func compare(t *testing.T, p *browsertest.Page, want *framebuffer.Canvas, lossy ...framebuffer.Rect) {
	t.Helper()
	got, err := p.CanvasPixels("kvm-console")
	if err != nil {
		t.Fatal(err)
	}
	if got.W != want.W || got.H != want.H {
		t.Fatalf("canvas is %dx%d, want %dx%d", got.W, got.H, want.W, want.H)
	}
	bad := 0
	for y := 0; y < want.H; y++ {
		for x := 0; x < want.W; x++ {
			g, w := got.At(x, y), want.At(x, y)
			if g == w {
				continue
			}
			tol := 0
			for _, r := range lossy {
				if (framebuffer.Rect{X: x, Y: y, W: 1, H: 1}).In(r) {
					tol = 8
				}
			}
			if within(g, w, tol) {
				continue
			}
			if bad++; bad <= 5 {
				t.Errorf("pixel %d,%d = %08x, want %08x", x, y, g, w)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d pixels differ", bad)
	}
}

func within(a, b uint32, tol int) bool {
	for s := 0; s < 32; s += 8 {
		d := int(a>>s&0xff) - int(b>>s&0xff)
		if d < -tol || d > tol {
			return false
		}
	}
	return true
}

func hello(w, h int) map[string]any {
	return map[string]any{
		"t": "hello", "v": 1, "width": w, "height": h, "name": "test console", "protocol": "rfb",
		"actions": []string{"reboot"},
		"combos": []map[string]string{
			{"name": "ctrl-alt-del", "label": "Ctrl+Alt+Del"},
			{"name": "alt-tab", "label": "Alt+Tab"},
		},
		"layouts": []string{"us", "de"},
		"viewer":  "v1",
	}
}

const el = `document.querySelector('kvm-console')`

func TestClientProtocol(t *testing.T) {
	srv := newProtoServer(t)
	b := browsertest.Launch(t)
	p := b.NewPage(t, srv.URL+"/?token=abc")
	c := srv.accept(t)
	if c.query != "token=abc&ticket=signed-ticket" {
		t.Errorf("WebSocket query %q, want the page's query plus the meta ticket", c.query)
	}

	const W, H = 97, 61
	c.sendJSON(hello(W, H))
	want, _ := framebuffer.NewCanvas(0, 0)
	f := &frame{c: c, want: want}

	// Frame 1, over two messages: every record type, two deflate records
	// in one message and a third in the next, on one deflate stream.
	f.resize(W, H)
	f.fill(want.Bounds(), 20, 30, 40)
	f.fill(framebuffer.Rect{X: 5, Y: 5, W: 30, H: 20}, 200, 10, 10)
	f.deflate(framebuffer.Rect{X: 40, Y: 3, W: 31, H: 17}, nil, gradient(31, 17))
	pal := [][3]byte{{0, 0, 0}, {255, 255, 255}, {10, 200, 30}, {90, 60, 250}, {1, 2, 3}}
	f.deflate(framebuffer.Rect{X: 2, Y: 30, W: 25, H: 19}, pal, indices(25, 19, len(pal)))
	f.flush()
	f.deflate(framebuffer.Rect{X: 60, Y: 35, W: 20, H: 20}, nil, gradient(20, 20))
	img := image.NewNRGBA(image.Rect(0, 0, 16, 12))
	for i := 0; i < len(img.Pix); i += 4 {
		copy(img.Pix[i:], []byte{byte(i), byte(i * 3), byte(255 - i), 255})
	}
	f.png(72, 2, img)
	jpegRect := framebuffer.Rect{X: 0, Y: 48, W: 16, H: 8}
	f.jpeg(jpegRect.X, jpegRect.Y, jpegRect.W, jpegRect.H, color.NRGBA{R: 200, G: 120, B: 40, A: 255})
	f.copyRect(framebuffer.Rect{X: 40, Y: 3, W: 31, H: 17}, 43, 5) // overlapping, down-right
	f.cursor(8, 8, 1, 2)
	f.end(1)
	f.flush()
	if ack := c.next("ack"); ack["f"] != 1.0 {
		t.Fatalf("first ack %v, want f=1", ack)
	}
	compare(t, p, want, jpegRect)

	// Frame 2: more deflate on the same stream, an overlapping copy up-left,
	// and a fill over the JPEG so the whole picture is exact.
	f.deflate(framebuffer.Rect{X: 10, Y: 10, W: 40, H: 30}, pal[:3], indices(40, 30, 3))
	f.copyRect(framebuffer.Rect{X: 12, Y: 12, W: 50, H: 30}, 8, 9)
	f.fill(jpegRect, 1, 2, 3)
	f.end(2)
	f.flush()
	if ack := c.next("ack"); ack["f"] != 2.0 {
		t.Fatalf("second ack %v, want f=2", ack)
	}
	compare(t, p, want)

	// Frame 3: batch records on the same stream, between plain deflate
	// records: a batch of a copy, fills and RGB and indexed pixels inline,
	// a deflate record outside, then a second batch in the same message.
	f.beginBatch()
	f.copyRect(framebuffer.Rect{X: 0, Y: 10, W: W, H: 40}, 0, 4)
	f.fill(framebuffer.Rect{X: 3, Y: 50, W: 20, H: 5}, 9, 99, 199)
	f.deflate(framebuffer.Rect{X: 30, Y: 20, W: 21, H: 13}, nil, gradient(21, 13))
	f.deflate(framebuffer.Rect{X: 50, Y: 40, W: 33, H: 9}, pal, indices(33, 9, len(pal)))
	f.endBatch()
	f.deflate(framebuffer.Rect{X: 70, Y: 2, W: 9, H: 9}, pal[:2], indices(9, 9, 2))
	f.beginBatch()
	f.fill(framebuffer.Rect{X: 0, Y: 0, W: 4, H: 4}, 250, 250, 0)
	f.deflate(framebuffer.Rect{X: 5, Y: 52, W: 11, H: 7}, pal[:4], indices(11, 7, 4))
	// Column-major packed indices at 1, 2 and 4 bits, heights that leave
	// columns padded.
	f.deflateColumns(framebuffer.Rect{X: 20, Y: 40, W: 13, H: 11}, pal[:2], indices(13, 11, 2))
	f.deflateColumns(framebuffer.Rect{X: 40, Y: 45, W: 7, H: 9}, pal[:4], indices(7, 9, 4))
	f.deflateColumns(framebuffer.Rect{X: 60, Y: 50, W: 10, H: 3}, pal, indices(10, 3, len(pal)))
	f.endBatch()
	f.deflateColumns(framebuffer.Rect{X: 85, Y: 30, W: 9, H: 17}, pal[:3], indices(9, 17, 3))
	f.endShort(3)
	f.flush()
	if ack := c.next("ack"); ack["f"] != 3.0 {
		t.Fatalf("third ack %v, want f=3", ack)
	}
	compare(t, p, want)

	var cursor string
	if err := p.EvalInto(el+`.canvas.style.cursor`, &cursor); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(cursor, `url("data:image/png;base64,`) || !strings.HasSuffix(cursor, `1 2, default`) {
		t.Errorf("cursor = %.60s…, want a data-URL PNG with hotspot 1 2", cursor)
	}

	var stats struct {
		FramesDrawn, Width, Height int
		Transport                  string
	}
	if err := p.EvalInto(el+`.stats()`, &stats); err != nil {
		t.Fatal(err)
	}
	if stats.FramesDrawn != 3 || stats.Width != W || stats.Height != H || stats.Transport != "tiles" {
		t.Errorf("stats() = %+v", stats)
	}

	t.Run("keys", func(t *testing.T) {
		p.MustEval(t, el+`.focus()`)
		c.drain()
		p.KeyPress(t, "KeyA")
		p.Type(t, "B")
		p.KeyDown(t, "ControlLeft")
		p.KeyPress(t, "KeyC")
		p.KeyUp(t, "ControlLeft")
		p.KeyDown(t, "KeyX")
		p.KeyRepeat(t, "KeyX")
		p.KeyUp(t, "KeyX")
		p.KeyPress(t, "F5")
		p.KeyDown(t, "KeyQ")
		p.MustEval(t, el+`.view.blur()`) // must release the held Q
		want := []string{
			"KeyA a true", "KeyA a false",
			"ShiftLeft Shift true", "KeyB B true", "KeyB B false", "ShiftLeft Shift false",
			"ControlLeft Control true", "KeyC c true", "KeyC c false", "ControlLeft Control false",
			"KeyX x true", "KeyX x true", "KeyX x false",
			"F5 F5 true", "F5 F5 false",
			"KeyQ q true", "KeyQ q false",
		}
		for i, w := range want {
			m := c.next("key")
			if got := fmt.Sprintf("%v %v %v", m["code"], m["key"], m["down"]); got != w {
				t.Fatalf("key message %d = %q, want %q", i, got, w)
			}
		}
	})

	t.Run("pointer", func(t *testing.T) {
		for _, tc := range []struct {
			scale string
			dpr   float64
		}{{"fit", 1}, {"1:1", 1}, {"1:1", 2}, {"fit", 2}} {
			scale := tc.scale
			p.SetDeviceScale(t, tc.dpr)
			p.MustEval(t, el+`.scale = "fit"; `+el+`.scale = `+fmt.Sprintf("%q", scale))
			var r struct{ Left, Top, Width, Height float64 }
			if err := p.EvalInto(`(() => { const r = `+el+`.canvas.getBoundingClientRect(); return {left: r.left, top: r.top, width: r.width, height: r.height}; })()`, &r); err != nil {
				t.Fatal(err)
			}
			if scale == "fit" && r.Width < 5*W {
				t.Errorf("fit: canvas shown %vx%v, want it scaled up to the window", r.Width, r.Height)
			}
			if scale == "1:1" && (r.Width != W/tc.dpr || r.Height != H/tc.dpr) {
				t.Errorf("1:1 at %vx: canvas shown %vx%v CSS pixels, want one device pixel per pixel", tc.dpr, r.Width, r.Height)
			}
			c.drain()
			p.MouseMove(t, r.Left+0.25*r.Width/W, r.Top+0.25*r.Height/H)
			if m := c.next("ptr"); m["x"] != 0.0 || m["y"] != 0.0 || m["b"] != 0.0 {
				t.Errorf("%s: pointer at the top left corner = %v, want 0,0", scale, m)
			}
			fx, fy := 50, 20
			x, y := r.Left+(float64(fx)+0.5)*r.Width/W, r.Top+(float64(fy)+0.5)*r.Height/H
			p.MouseMove(t, x, y)
			p.MouseDown(t, x, y, browsertest.Left)
			p.MouseUp(t, x, y, browsertest.Left)
			p.MouseDown(t, x, y, browsertest.Right)
			p.MouseUp(t, x, y, browsertest.Right)
			p.Wheel(t, x, y, 0, 100)
			for i, wantB := range []float64{0, 1, 0, 4, 0} {
				m := c.next("ptr")
				if m["x"] != float64(fx) || m["y"] != float64(fy) || m["b"] != wantB {
					t.Errorf("%s: pointer message %d = %v, want x=%d y=%d b=%v", scale, i, m, fx, fy, wantB)
				}
			}
			if m := c.next("wheel"); m["dy"] != 1.0 || m["dx"] != 0.0 || m["x"] != float64(fx) || m["y"] != float64(fy) {
				t.Errorf("%s: wheel message %v, want dy=1 at %d,%d", scale, m, fx, fy)
			}
		}
		// Touchpad deltas accumulate into notches; a direction change
		// starts over.
		c.drain()
		cx, cy, err := p.ElementCenter("kvm-console >>> canvas")
		if err != nil {
			t.Fatal(err)
		}
		// Chromium may scale wheel deltas (Linux: about half); measure it
		// with a small horizontal probe, which is no notch by itself.
		p.MustEval(t, `window.wheelDX = 0; `+el+`.canvas.addEventListener('wheel', (e) => { wheelDX += e.deltaX; })`)
		p.Wheel(t, cx, cy, 10, 0)
		var k float64
		if err := p.EvalInto(`wheelDX / 10`, &k); err != nil || k <= 0 {
			t.Fatalf("wheel delta scale %v, %v", k, err)
		}
		for _, dy := range []float64{25, 25, 25, 25, 25, -100} {
			p.Wheel(t, cx, cy, 0, dy/k)
		}
		for _, want := range []float64{1, -1} {
			if m := c.next("wheel"); m["dy"] != want {
				t.Errorf("accumulated wheel: %v, want dy=%v", m, want)
			}
		}
		var menu bool
		if err := p.EvalInto(`!`+el+`.canvas.dispatchEvent(new MouseEvent('contextmenu', {bubbles: true, cancelable: true}))`, &menu); err != nil {
			t.Fatal(err)
		}
		if !menu {
			t.Error("the context menu is not suppressed over the canvas")
		}
		p.SetDeviceScale(t, 0)
		p.MustEval(t, el+`.scale = "1:1"; `+el+`.scale = "fit"`)
	})

	t.Run("toolbar", func(t *testing.T) {
		p.WaitFor(t, el+`.shadowRoot.querySelector('#keys-menu button[data-name="alt-tab"]')`, wait)
		c.drain()
		p.ClickElement(t, "kvm-console >>> button.keys")
		p.ClickElement(t, `kvm-console >>> #keys-menu button[data-name="ctrl-alt-del"]`)
		if m := c.next("combo"); m["name"] != "ctrl-alt-del" {
			t.Errorf("combo message %v, want ctrl-alt-del", m)
		}

		p.ClickElement(t, "kvm-console >>> button.paste")
		p.WaitFor(t, el+`.shadowRoot.querySelector('.paste-dlg').open`, wait)
		p.Type(t, "echo hi!")
		p.MustEval(t, el+`.shadowRoot.querySelector('.layout').value = 'de'`)
		p.ClickElement(t, "kvm-console >>> .paste-dlg button.type")
		if m := c.next("type", "key"); m["t"] != "type" || m["text"] != "echo hi!" || m["layout"] != "de" {
			t.Errorf("paste sent %v, want type \"echo hi!\" layout de", m)
		}

		p.ClickElement(t, "kvm-console >>> button.power")
		p.ClickElement(t, `kvm-console >>> #power-menu button[data-name="reboot"]`)
		p.ClickElement(t, "kvm-console >>> .confirm-dlg button.ok")
		if m := c.next("action"); m["name"] != "reboot" {
			t.Errorf("power action %v, want reboot", m)
		}

		c.sendJSON(map[string]any{"t": "clipboard", "text": "from the console"})
		p.WaitFor(t, el+`.clipboardText === 'from the console'`, wait)
		p.ClickElement(t, "kvm-console >>> button.clip")
		p.MustEval(t, el+`.shadowRoot.querySelector('.clip-dlg textarea').value = 'to the console'`)
		p.ClickElement(t, "kvm-console >>> .clip-dlg button.send")
		if m := c.next("clipboard"); m["text"] != "to the console" {
			t.Errorf("clipboard message %v", m)
		}
		p.WaitFor(t, el+`.shadowRoot.querySelector('.status').textContent.includes('97×61')`, wait)
	})

	t.Run("reconnect", func(t *testing.T) {
		c.sendJSON(map[string]any{"t": "ticket", "ticket": "renewed"})
		p.WaitFor(t, el+`.url.includes('ticket=renewed')`, wait)
		c.ws.Close()
		c2 := srv.accept(t)
		if c2.query != "token=abc&ticket=renewed" {
			t.Errorf("reconnect query %q, want the renewed ticket", c2.query)
		}
		c2.sendJSON(hello(8, 4))
		f := &frame{c: c2, want: want}
		f.resize(8, 4)
		f.deflate(framebuffer.Rect{W: 8, H: 4}, nil, gradient(8, 4))
		f.end(1)
		f.flush()
		if ack := c2.next("ack"); ack["f"] != 1.0 {
			t.Fatalf("ack after reconnect %v, want f=1", ack)
		}
		compare(t, p, want)

		// A record type the client does not know is a protocol error:
		// it closes and reconnects.
		c2.sendBinary([]byte{0x7f, 1, 2, 3})
		c3 := srv.accept(t)
		c3.sendJSON(hello(8, 4))
		p.WaitFor(t, el+`.state === 'connected'`, wait)

		// So is a batch that holds a record other than fill, copy or
		// deflate (here a frame end): found once inflated, it fails the
		// frame, and the client reconnects.
		f3 := &frame{c: c3, want: want}
		f3.resize(8, 4)
		f3.beginBatch()
		f3.batch.u8(0x17)
		f3.batch.u32(1)
		f3.batch.u32(0)
		f3.endBatch()
		f3.end(1)
		f3.flush()
		c4 := srv.accept(t)
		c4.sendJSON(hello(8, 4))
		p.WaitFor(t, el+`.state === 'connected'`, wait)
	})

	if errs := p.Errors(); len(errs) != 0 {
		t.Errorf("page errors: %q", errs)
	}
}

// parentPage embeds the console in an iframe and drives it through the
// postMessage bridge.
const parentPage = `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">
<iframe id="f" src="/?embed=1&amp;token=abc" style="width:400px;height:300px"></iframe>
<script>
window.events = [];
addEventListener('message', (e) => {
  if (!e.data || e.data.type !== 'kvmgate') return;
  events.push(e.data);
  if (e.data.event === 'connect') {
    document.getElementById('f').contentWindow.postMessage({type: 'kvmgate', cmd: 'combo', name: 'ctrl-alt-del'}, '*');
    document.getElementById('f').contentWindow.postMessage({type: 'kvmgate', cmd: 'type', text: 'hello', layout: 'us'}, '*');
  }
});
</script>`

func TestEmbedBridge(t *testing.T) {
	srv := newProtoServer(t)
	b := browsertest.Launch(t)
	p := b.NewPage(t, srv.URL+"/parent")
	c := srv.accept(t)
	if c.query != "embed=1&token=abc&ticket=signed-ticket" {
		t.Errorf("WebSocket query %q", c.query)
	}
	c.sendJSON(hello(4, 4))
	if m := c.next("combo"); m["name"] != "ctrl-alt-del" {
		t.Errorf("combo from the parent: %v", m)
	}
	if m := c.next("type"); m["text"] != "hello" || m["layout"] != "us" {
		t.Errorf("type from the parent: %v", m)
	}
	c.sendJSON(map[string]any{"t": "clipboard", "text": "copied"})
	p.WaitFor(t, `events.some((e) => e.event === 'clipboard' && e.detail.text === 'copied')`, wait)
	var hidden bool
	if err := p.EvalInto(`document.getElementById('f').contentDocument.querySelector('kvm-console').shadowRoot.querySelector('.bar').hidden`, &hidden); err != nil {
		t.Fatal(err)
	}
	if !hidden {
		t.Error("embed mode shows the toolbar")
	}
	if errs := p.Errors(); len(errs) != 0 {
		t.Errorf("page errors: %q", errs)
	}
}
