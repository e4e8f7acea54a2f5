package browsertest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"kvmgate/framebuffer"
)

// Page is one browser tab, attached through the browser's DevTools
// connection.
type Page struct {
	b         *Browser
	targetID  string
	sessionID string

	mu      sync.Mutex    // guards the following
	errs    []string      // console errors, exceptions, error log entries
	console []string      // every console message, for failure logs
	loaded  chan struct{} // closed by the next Page.loadEventFired

	// Input state, used only by the test goroutine.
	modifiers int            // DevTools modifier bits held down
	buttons   int            // DevTools mouse button bits held down
	held      map[string]Key // keys held down by KeyDown, by code
}

// NewPage opens a new tab, navigates it to url and waits for its load event.
// The tab's console output is logged if the test fails.
func (b *Browser) NewPage(t testing.TB, url string) *Page {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	var created struct {
		TargetID string `json:"targetId"`
	}
	if err := b.conn.call(ctx, "", "Target.createTarget", map[string]any{"url": "about:blank"}, &created); err != nil {
		t.Fatalf("%v", err)
	}
	var attached struct {
		SessionID string `json:"sessionId"`
	}
	if err := b.conn.call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": created.TargetID, "flatten": true}, &attached); err != nil {
		t.Fatalf("%v", err)
	}
	p := &Page{b: b, targetID: created.TargetID, sessionID: attached.SessionID, loaded: make(chan struct{}), held: map[string]Key{}}
	b.conn.handle(p.sessionID, p.event)
	for _, m := range []string{"Runtime.enable", "Page.enable", "Log.enable"} {
		if err := b.conn.call(ctx, p.sessionID, m, nil, nil); err != nil {
			t.Fatalf("%v", err)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			p.mu.Lock()
			msgs := strings.Join(p.console, "\n  ")
			p.mu.Unlock()
			if msgs != "" {
				t.Logf("browsertest: page console:\n  %s", msgs)
			}
		}
	})
	p.Navigate(t, url)
	return p
}

// event receives the page session's DevTools events (on the reader
// goroutine).
func (p *Page) event(method string, params json.RawMessage) {
	switch method {
	case "Page.loadEventFired":
		p.mu.Lock()
		close(p.loaded)
		p.loaded = make(chan struct{})
		p.mu.Unlock()
	case "Runtime.consoleAPICalled":
		var ev struct {
			Type string         `json:"type"`
			Args []remoteObject `json:"args"`
		}
		if json.Unmarshal(params, &ev) != nil {
			return
		}
		parts := make([]string, len(ev.Args))
		for i, a := range ev.Args {
			parts[i] = a.String()
		}
		msg := "console." + ev.Type + ": " + strings.Join(parts, " ")
		p.mu.Lock()
		p.console = append(p.console, msg)
		if ev.Type == "error" || ev.Type == "assert" {
			p.errs = append(p.errs, msg)
		}
		p.mu.Unlock()
	case "Runtime.exceptionThrown":
		var ev struct {
			Details exceptionDetails `json:"exceptionDetails"`
		}
		if json.Unmarshal(params, &ev) != nil {
			return
		}
		msg := "exception: " + ev.Details.String()
		p.mu.Lock()
		p.console = append(p.console, msg)
		p.errs = append(p.errs, msg)
		p.mu.Unlock()
	case "Log.entryAdded":
		var ev struct {
			Entry struct {
				Level  string `json:"level"`
				Source string `json:"source"`
				Text   string `json:"text"`
				URL    string `json:"url"`
			} `json:"entry"`
		}
		if json.Unmarshal(params, &ev) != nil {
			return
		}
		msg := fmt.Sprintf("log.%s (%s): %s %s", ev.Entry.Level, ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
		p.mu.Lock()
		p.console = append(p.console, msg)
		if ev.Entry.Level == "error" {
			p.errs = append(p.errs, msg)
		}
		p.mu.Unlock()
	}
}

// Errors returns the console errors, uncaught exceptions (including
// unhandled promise rejections) and error log entries (such as failed
// loads) the page has produced so far.
func (p *Page) Errors() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.errs...)
}

// Console returns every console message and error the page has produced.
func (p *Page) Console() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.console...)
}

// call sends a command to the page's session with DefaultTimeout.
func (p *Page) call(method string, params, result any) error {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	return p.b.conn.call(ctx, p.sessionID, method, params, result)
}

// loadedChan returns the channel the next load event closes.
func (p *Page) loadedChan() chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.loaded
}

// Navigate loads url in the tab and waits for its load event.
func (p *Page) Navigate(t testing.TB, url string) {
	t.Helper()
	loaded := p.loadedChan()
	var r struct {
		ErrorText string `json:"errorText"`
	}
	if err := p.call("Page.navigate", map[string]any{"url": url}, &r); err != nil {
		t.Fatalf("browsertest: navigate to %s: %v", url, err)
	}
	if r.ErrorText != "" {
		t.Fatalf("browsertest: navigate to %s: %s", url, r.ErrorText)
	}
	p.waitLoad(t, loaded, url)
}

// Reload reloads the tab and waits for its load event.
func (p *Page) Reload(t testing.TB) {
	t.Helper()
	loaded := p.loadedChan()
	if err := p.call("Page.reload", map[string]any{"ignoreCache": true}, nil); err != nil {
		t.Fatalf("browsertest: reload: %v", err)
	}
	p.waitLoad(t, loaded, "reload")
}

func (p *Page) waitLoad(t testing.TB, loaded chan struct{}, what string) {
	t.Helper()
	select {
	case <-loaded:
	case <-time.After(DefaultTimeout):
		t.Fatalf("browsertest: %s: no load event after %v", what, DefaultTimeout)
	}
}

// Close closes the tab.
func (p *Page) Close(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	if err := p.b.conn.call(ctx, "", "Target.closeTarget", map[string]any{"targetId": p.targetID}, nil); err != nil {
		t.Fatalf("browsertest: close tab: %v", err)
	}
	p.b.conn.handle(p.sessionID, nil)
}

// Eval evaluates a JavaScript expression in the page, awaits it if it is a
// promise, and returns its value as JSON ("null" for undefined). A thrown
// exception or rejected promise is returned as an error.
func (p *Page) Eval(js string) (json.RawMessage, error) {
	var r struct {
		Result           remoteObject      `json:"result"`
		ExceptionDetails *exceptionDetails `json:"exceptionDetails"`
	}
	err := p.call("Runtime.evaluate", map[string]any{
		"expression":    js,
		"awaitPromise":  true,
		"returnByValue": true,
		"userGesture":   true,
	}, &r)
	if err != nil {
		return nil, err
	}
	if r.ExceptionDetails != nil {
		return nil, fmt.Errorf("browsertest: eval: %s", r.ExceptionDetails)
	}
	if len(r.Result.Value) == 0 {
		return json.RawMessage("null"), nil
	}
	return r.Result.Value, nil
}

// EvalInto evaluates js like Eval and decodes the result into v.
func (p *Page) EvalInto(js string, v any) error {
	raw, err := p.Eval(js)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("browsertest: eval result %.200s: %w", raw, err)
	}
	return nil
}

// MustEval evaluates js like Eval and fails the test on error.
func (p *Page) MustEval(t testing.TB, js string) json.RawMessage {
	t.Helper()
	raw, err := p.Eval(js)
	if err != nil {
		t.Fatalf("%v\n  in: %.300s", err, js)
	}
	return raw
}

// WaitFor evaluates jsExpr every 50 ms until it is truthy, failing the test
// (with the last value or error, and the page's errors) after timeout.
func (p *Page) WaitFor(t testing.TB, jsExpr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	expr := "(async () => !!(" + jsExpr + "))()"
	var last string
	for {
		raw, err := p.Eval(expr)
		switch {
		case err != nil:
			last = err.Error()
		case string(raw) == "true":
			return
		default:
			last = string(raw)
		}
		if time.Now().After(deadline) {
			t.Fatalf("browsertest: waited %v for %s; last result: %s; page errors: %q", timeout, jsExpr, last, p.Errors())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Screenshot captures the visible part of the tab as PNG.
func (p *Page) Screenshot() ([]byte, error) {
	var r struct {
		Data string `json:"data"`
	}
	if err := p.call("Page.captureScreenshot", map[string]any{"format": "png"}, &r); err != nil {
		return nil, err
	}
	png, err := base64.StdEncoding.DecodeString(r.Data)
	if err != nil {
		return nil, fmt.Errorf("browsertest: screenshot data: %w", err)
	}
	return png, nil
}

// queryJS defines __btQuery(sel): document.querySelector, where " >>> "
// steps into the shadow root of the element matched so far
// ("kvm-console >>> canvas").
const queryJS = `const __btQuery = (sel) => {
	let root = document, el = null;
	for (const part of sel.split('>>>')) {
		el = root.querySelector(part.trim());
		if (!el) throw new Error('no element matches ' + JSON.stringify(part.trim()) + ' (in ' + JSON.stringify(sel) + ')');
		root = el.shadowRoot || el;
	}
	return el;
};`

// CanvasPixels reads back the pixels of the canvas that selector matches
// (see ClickElement for the selector syntax; an element that is not a
// canvas but has a "canvas" property or a canvas in its shadow root is
// followed to it) through getImageData.
func (p *Page) CanvasPixels(selector string) (*framebuffer.Canvas, error) {
	sel, _ := json.Marshal(selector)
	js := `(() => {` + queryJS + `
	let c = __btQuery(` + string(sel) + `);
	if (!(c instanceof HTMLCanvasElement)) c = c.canvas || (c.shadowRoot && c.shadowRoot.querySelector('canvas'));
	if (!(c instanceof HTMLCanvasElement)) throw new Error('not a canvas');
	const w = c.width, h = c.height;
	if (w === 0 || h === 0) return {w, h, data: ''};
	const d = c.getContext('2d').getImageData(0, 0, w, h).data;
	let s = '';
	for (let i = 0; i < d.length; i += 0x8000) s += String.fromCharCode.apply(null, d.subarray(i, i + 0x8000));
	return {w, h, data: btoa(s)};
})()`
	var r struct {
		W, H int
		Data string
	}
	if err := p.EvalInto(js, &r); err != nil {
		return nil, fmt.Errorf("browsertest: canvas %s: %w", selector, err)
	}
	pix, err := base64.StdEncoding.DecodeString(r.Data)
	if err != nil {
		return nil, fmt.Errorf("browsertest: canvas %s data: %w", selector, err)
	}
	if err := framebuffer.CheckSize(r.W, r.H); err != nil {
		return nil, fmt.Errorf("browsertest: canvas %s: %w", selector, err)
	}
	if len(pix) != r.W*r.H*framebuffer.BytesPerPixel {
		return nil, fmt.Errorf("browsertest: canvas %s: %d bytes for %dx%d", selector, len(pix), r.W, r.H)
	}
	return &framebuffer.Canvas{W: r.W, H: r.H, Stride: r.W * framebuffer.BytesPerPixel, Pix: pix}, nil
}

// ElementCenter returns the viewport coordinates (CSS pixels) of the center
// of the element selector matches.
func (p *Page) ElementCenter(selector string) (x, y float64, err error) {
	sel, _ := json.Marshal(selector)
	var r struct{ X, Y float64 }
	err = p.EvalInto(`(() => {`+queryJS+`
	const el = __btQuery(`+string(sel)+`);
	el.scrollIntoView({block: 'nearest', inline: 'nearest'});
	const r = el.getBoundingClientRect();
	if (r.width === 0 || r.height === 0) throw new Error('element is not visible');
	return {x: r.left + r.width / 2, y: r.top + r.height / 2};
})()`, &r)
	if err != nil {
		return 0, 0, fmt.Errorf("browsertest: element %s: %w", selector, err)
	}
	return r.X, r.Y, nil
}

// remoteObject is the part of a DevTools Runtime.RemoteObject we use.
type remoteObject struct {
	Type        string          `json:"type"`
	Subtype     string          `json:"subtype"`
	Value       json.RawMessage `json:"value"`
	Description string          `json:"description"`
}

func (o remoteObject) String() string {
	if len(o.Value) > 0 {
		var s string
		if json.Unmarshal(o.Value, &s) == nil {
			return s
		}
		return string(o.Value)
	}
	if o.Description != "" {
		return o.Description
	}
	return o.Type
}

// exceptionDetails is the part of a DevTools Runtime.ExceptionDetails we
// use.
type exceptionDetails struct {
	Text       string        `json:"text"`
	URL        string        `json:"url"`
	LineNumber int           `json:"lineNumber"`
	Exception  *remoteObject `json:"exception"`
}

func (e *exceptionDetails) String() string {
	s := e.Text
	if e.Exception != nil {
		s += " " + e.Exception.String()
	}
	if e.URL != "" {
		s += fmt.Sprintf(" (%s:%d)", e.URL, e.LineNumber+1)
	}
	return s
}

// SetDeviceScale emulates a screen with dpr device pixels per CSS pixel
// (2 for a typical HiDPI laptop); 0 ends the emulation.
func (p *Page) SetDeviceScale(t testing.TB, dpr float64) {
	t.Helper()
	var err error
	if dpr == 0 {
		err = p.call("Emulation.clearDeviceMetricsOverride", nil, nil)
	} else {
		err = p.call("Emulation.setDeviceMetricsOverride", map[string]any{
			"width": 0, "height": 0, "deviceScaleFactor": dpr, "mobile": false,
		}, nil)
	}
	if err != nil {
		t.Fatalf("browsertest: device scale %v: %v", dpr, err)
	}
}

// SetViewport emulates a w×h CSS-pixel viewport with dpr device pixels per
// CSS pixel, as if the window had been resized; the page gets its resize
// events. SetDeviceScale(0) ends the emulation.
func (p *Page) SetViewport(t testing.TB, w, h int, dpr float64) {
	t.Helper()
	err := p.call("Emulation.setDeviceMetricsOverride", map[string]any{
		"width": w, "height": h, "deviceScaleFactor": dpr, "mobile": false,
	}, nil)
	if err != nil {
		t.Fatalf("browsertest: viewport %dx%d at %v: %v", w, h, dpr, err)
	}
}
