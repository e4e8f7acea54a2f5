package browsertest_test

import (
	"bytes"
	"encoding/json"
	"image/png"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"kvmgate/internal/browsertest"
)

const testPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>bt</title><link rel="icon" href="data:,"></head>
<body style="margin:0">
<canvas id="c" width="4" height="2" style="width:40px;height:20px"></canvas>
<button id="b" style="position:absolute;left:100px;top:100px;width:50px;height:30px"
  onclick="window.clicked = (window.clicked || 0) + 1">x</button>
<script>
window.keys = [];
for (const type of ['keydown', 'keyup']) {
  addEventListener(type, (e) => {
    keys.push({type: e.type, code: e.code, key: e.key, repeat: e.repeat,
      shift: e.shiftKey, ctrl: e.ctrlKey, keyCode: e.keyCode});
    e.preventDefault();
  });
}
const ctx = document.getElementById('c').getContext('2d');
const img = ctx.createImageData(4, 2);
for (let i = 0; i < 8; i++) img.data.set([i * 30, 255 - i * 30, i, 255], i * 4);
ctx.putImageData(img, 0, 0);
</script></body></html>`

type keyEvent struct {
	Type, Code, Key string
	Repeat, Shift   bool
	Ctrl            bool
	KeyCode         int
}

func TestBrowser(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if r.URL.Path == "/error" {
			w.Write([]byte(`<!doctype html><link rel="icon" href="data:,"><script>console.error("boom"); Promise.reject(new Error("unhandled"));</script>`))
			return
		}
		w.Write([]byte(testPage))
	}))
	defer srv.Close()

	b := browsertest.Launch(t)
	p := b.NewPage(t, srv.URL+"/")

	t.Run("eval", func(t *testing.T) {
		var v struct {
			Sum   int
			Title string
		}
		if err := p.EvalInto(`Promise.resolve({sum: 1 + 2, title: document.title})`, &v); err != nil {
			t.Fatal(err)
		}
		if v.Sum != 3 || v.Title != "bt" {
			t.Errorf("eval = %+v, want {3 bt}", v)
		}
		if raw, err := p.Eval(`undefined`); err != nil || string(raw) != "null" {
			t.Errorf("eval undefined = %s, %v; want null", raw, err)
		}
		if _, err := p.Eval(`(() => { throw new Error("nope") })()`); err == nil || !strings.Contains(err.Error(), "nope") {
			t.Errorf("eval of a throw: err = %v, want one mentioning nope", err)
		}
		if _, err := p.Eval(`Promise.reject(new Error("rejected"))`); err == nil || !strings.Contains(err.Error(), "rejected") {
			t.Errorf("eval of a rejection: err = %v, want one mentioning rejected", err)
		}
	})

	t.Run("keys", func(t *testing.T) {
		p.MustEval(t, `keys.length = 0`)
		p.Type(t, "aB1")
		p.KeyDown(t, "ControlLeft")
		p.KeyPress(t, "KeyC")
		p.KeyUp(t, "ControlLeft")
		p.KeyDown(t, "KeyX")
		p.KeyRepeat(t, "KeyX")
		p.KeyUp(t, "KeyX")
		p.KeyPress(t, "Enter")
		var got []keyEvent
		if err := p.EvalInto(`keys`, &got); err != nil {
			t.Fatal(err)
		}
		want := []keyEvent{
			{Type: "keydown", Code: "KeyA", Key: "a", KeyCode: 65},
			{Type: "keyup", Code: "KeyA", Key: "a", KeyCode: 65},
			{Type: "keydown", Code: "ShiftLeft", Key: "Shift", Shift: true, KeyCode: 16},
			{Type: "keydown", Code: "KeyB", Key: "B", Shift: true, KeyCode: 66},
			{Type: "keyup", Code: "KeyB", Key: "B", Shift: true, KeyCode: 66},
			{Type: "keyup", Code: "ShiftLeft", Key: "Shift", KeyCode: 16},
			{Type: "keydown", Code: "Digit1", Key: "1", KeyCode: 49},
			{Type: "keyup", Code: "Digit1", Key: "1", KeyCode: 49},
			{Type: "keydown", Code: "ControlLeft", Key: "Control", Ctrl: true, KeyCode: 17},
			{Type: "keydown", Code: "KeyC", Key: "c", Ctrl: true, KeyCode: 67},
			{Type: "keyup", Code: "KeyC", Key: "c", Ctrl: true, KeyCode: 67},
			{Type: "keyup", Code: "ControlLeft", Key: "Control", KeyCode: 17},
			{Type: "keydown", Code: "KeyX", Key: "x", KeyCode: 88},
			{Type: "keydown", Code: "KeyX", Key: "x", Repeat: true, KeyCode: 88},
			{Type: "keyup", Code: "KeyX", Key: "x", KeyCode: 88},
			{Type: "keydown", Code: "Enter", Key: "Enter", KeyCode: 13},
			{Type: "keyup", Code: "Enter", Key: "Enter", KeyCode: 13},
		}
		if len(got) != len(want) {
			t.Fatalf("got %d key events, want %d:\n%+v", len(got), len(want), got)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("event %d = %+v, want %+v", i, got[i], want[i])
			}
		}
	})

	t.Run("click", func(t *testing.T) {
		p.ClickElement(t, "#b")
		p.Click(t, 5, 5) // the canvas, not the button
		p.WaitFor(t, `window.clicked === 1`, 5*time.Second)
	})

	t.Run("canvas", func(t *testing.T) {
		c, err := p.CanvasPixels("#c")
		if err != nil {
			t.Fatal(err)
		}
		if c.W != 4 || c.H != 2 {
			t.Fatalf("canvas %dx%d, want 4x2", c.W, c.H)
		}
		for i := 0; i < 8; i++ {
			want := []byte{byte(i * 30), byte(255 - i*30), byte(i), 255}
			if got := c.Pix[i*4 : i*4+4]; !bytes.Equal(got, want) {
				t.Errorf("pixel %d = %v, want %v", i, got, want)
			}
		}
		if _, err := p.CanvasPixels("#nothing"); err == nil {
			t.Error("CanvasPixels of a missing element: no error")
		}
	})

	t.Run("screenshot", func(t *testing.T) {
		data, err := p.Screenshot()
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if img.Bounds().Dx() < 100 || img.Bounds().Dy() < 100 {
			t.Errorf("screenshot is %v, want a window-sized image", img.Bounds())
		}
	})

	if errs := p.Errors(); len(errs) != 0 {
		t.Errorf("page errors: %q", errs)
	}

	t.Run("errors", func(t *testing.T) {
		q := b.NewPage(t, srv.URL+"/error")
		q.WaitFor(t, `true`, time.Second)
		deadline := time.Now().Add(5 * time.Second)
		for len(q.Errors()) < 2 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		errs, _ := json.Marshal(q.Errors())
		if !strings.Contains(string(errs), "boom") || !strings.Contains(string(errs), "unhandled") {
			t.Errorf("Errors() = %s, want the console error and the unhandled rejection", errs)
		}
		q.Close(t)
	})
}
