package supermicro_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"kvmgate/backend"
	"kvmgate/framebuffer"
	"kvmgate/input"
	"kvmgate/ipmi"
	"kvmgate/ipmi/bmcsim"
	_ "kvmgate/ipmi/supermicro"
	"kvmgate/rfb/aten"
)

const wait = 10 * time.Second

// testScreen draws four coloured quadrants with a stripe, w×h.
func testScreen(t *testing.T, w, h int, shift uint32) *framebuffer.Canvas {
	t.Helper()
	c, err := framebuffer.NewCanvas(w, h)
	if err != nil {
		t.Fatal(err)
	}
	c.Fill(framebuffer.Rect{W: w / 2, H: h / 2}, 0xff0000f8^shift)
	c.Fill(framebuffer.Rect{X: w / 2, W: w - w/2, H: h / 2}, 0xff00f800)
	c.Fill(framebuffer.Rect{Y: h / 2, W: w / 2, H: h - h/2}, 0xfff80000)
	c.Fill(framebuffer.Rect{X: w / 2, Y: h / 2, W: w - w/2, H: h - h/2}, 0xfff8f8f8)
	c.Fill(framebuffer.Rect{X: 8, Y: 8, W: 16, H: 8}.Intersect(c.Bounds()), 0xff808080)
	return c
}

type rig struct {
	web    *bmcsim.Web
	kvm    *bmcsim.KVM
	con    backend.Console
	fb     *framebuffer.Framebuffer
	runErr chan error
	cancel context.CancelFunc
}

func newSim(t *testing.T, wo bmcsim.WebOptions, ko bmcsim.KVMOptions, screen *framebuffer.Canvas) *bmcsim.Web {
	t.Helper()
	if wo.Username == "" {
		wo.Username, wo.Password = "ADMIN", "s3cret"
	}
	kvm := bmcsim.NewKVM(ko, screen)
	web, err := bmcsim.NewWeb(wo, kvm)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(web.Close)
	return web
}

func start(t *testing.T, web *bmcsim.Web, query string) *rig {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	target := fmt.Sprintf("ipmi://ADMIN@%s?vendor=supermicro&insecure=1&%s", web.Host(), query)
	con, err := backend.Open(ctx, target, backend.Secrets{Password: "s3cret"})
	if err != nil {
		t.Fatalf("Open(%s): %v", target, err)
	}
	r := &rig{web: web, kvm: web.KVM, con: con, fb: framebuffer.New(), runErr: make(chan error, 1)}
	rctx, rcancel := context.WithCancel(context.Background())
	r.cancel = rcancel
	go func() { r.runErr <- con.Run(rctx, r.fb) }()
	t.Cleanup(func() {
		rcancel()
		select {
		case err := <-r.runErr:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(wait):
			t.Error("Run did not return after cancel")
		}
	})
	return r
}

// setScreen changes the simulator's picture and waits until it has sent it.
func (r *rig) setScreen(t *testing.T, c *framebuffer.Canvas) {
	t.Helper()
	n := r.kvm.Frames()
	r.kvm.SetScreen(c)
	deadline := time.Now().Add(wait)
	for r.kvm.Frames() == n && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	r.waitShown(t)
}

// waitShown waits until the framebuffer holds what the simulator sent.
func (r *rig) waitShown(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		want := r.kvm.Shown()
		if want != nil && r.fb.Snapshot().Equal(want) {
			return
		}
		select {
		case err := <-r.runErr:
			t.Fatalf("Run ended: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	got, want := r.fb.Snapshot(), r.kvm.Shown()
	if want == nil {
		t.Fatal("simulator sent no frame")
	}
	t.Fatalf("framebuffer %dx%d never matched the simulator's %dx%d frame", got.W, got.H, want.W, want.H)
}

// waitRecords waits until the simulator has recorded n messages of type typ.
func (r *rig) waitRecords(t *testing.T, typ byte, n int) []bmcsim.Record {
	t.Helper()
	deadline := time.After(wait)
	for {
		ch := r.kvm.Changed()
		var got []bmcsim.Record
		for _, rec := range r.kvm.Records() {
			if rec.Type == typ {
				got = append(got, rec)
			}
		}
		if len(got) >= n {
			return got
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("simulator recorded %d messages of type %#x, want %d", len(got), typ, n)
		}
	}
}

func TestOpenJNLP10HermonRaw(t *testing.T) {
	web := newSim(t, bmcsim.WebOptions{JNLPArgs: 10, URLName: "ikvm"}, bmcsim.KVMOptions{}, testScreen(t, 64, 48, 0))
	r := start(t, web, "")
	r.waitShown(t)
	if w, h := r.fb.Size(); w != 64 || h != 48 {
		t.Errorf("size %dx%d, want the first rectangle's 64x48 (not ServerInit's placeholder)", w, h)
	}
	info := r.con.Info()
	if info.Protocol != "ipmi/aten" || info.Details["console"] != "jnlp" || info.Details["jnlp_layout"] != "10" || info.Details["video"] != "hermon" {
		t.Errorf("Info = %+v", info)
	}
	if got := web.Referer("/cgi/url_redirect.cgi"); !strings.Contains(got, "url_redirect.cgi?url_name=ikvm") {
		t.Errorf("JNLP request Referer = %q", got)
	}
	// The handshake: banner echoed, type 16, 48 credential bytes, shared.
	hs := r.kvm.Handshakes()
	if len(hs) != 1 || len(hs[0]) != 12+1+48+1 || string(hs[0][:12]) != bmcsim.BannerJava || hs[0][12] != 16 || hs[0][61] != 1 {
		t.Fatalf("handshake bytes %q", hs)
	}
	for _, s := range []string{"s3cret", "ADMIN"} {
		if bytes.Contains(hs[0], []byte(s)) {
			t.Errorf("the KVM got the account's %q instead of the JNLP's per-launch credentials", s)
		}
	}

	// Keys travel as USB HID usages in 18-byte messages.
	for _, ev := range []input.KeyEvent{{Code: "KeyA", Down: true}, {Code: "KeyA"}, {Code: "Enter", Down: true}, {Code: "ShiftLeft", Down: true}} {
		if err := r.con.Key(ev); err != nil {
			t.Fatal(err)
		}
	}
	keys := r.waitRecords(t, aten.MsgKeyEvent, 4)
	want := [][]byte{
		{4, 0, 1, 0, 0, 0, 0, 0, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		{4, 0, 0, 0, 0, 0, 0, 0, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		{4, 0, 1, 0, 0, 0, 0, 0, 0x28, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		{4, 0, 1, 0, 0, 0, 0, 0, 0xe1, 0, 0, 0, 0, 0, 0, 0, 0, 0},
	}
	for i, w := range want {
		if !bytes.Equal(keys[i].Bytes, w) {
			t.Errorf("key %d: % x, want % x", i, keys[i].Bytes, w)
		}
	}
	// Absolute pointer, 18 bytes.
	if err := r.con.Pointer(input.PointerEvent{X: 300, Y: 20, Buttons: input.ButtonLeft}); err != nil {
		t.Fatal(err)
	}
	ptr := r.waitRecords(t, aten.MsgPointerEvent, 1)
	wantPtr := []byte{5, 0, 1, 0, 63, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0} // x clamped to 63
	if !bytes.Equal(ptr[0].Bytes, wantPtr) {
		t.Errorf("pointer % x, want % x", ptr[0].Bytes, wantPtr)
	}
	// Power control.
	if err := r.con.Action(input.ActionReset); err != nil {
		t.Fatal(err)
	}
	pw := r.waitRecords(t, aten.MsgSetPower, 1)
	if !bytes.Equal(pw[0].Bytes, []byte{0x1a, 3}) {
		t.Errorf("power reset % x", pw[0].Bytes)
	}
	if err := r.con.Clipboard("x"); !errors.Is(err, backend.ErrUnsupported) {
		t.Errorf("Clipboard: %v, want ErrUnsupported", err)
	}
	// The mouse mode was set to absolute, and an update request is always
	// outstanding once a frame has been answered.
	mm := r.waitRecords(t, aten.MsgMouseSetInfo, 1)
	if !bytes.Equal(mm[0].Bytes, []byte{0x36, 1, 0}) {
		t.Errorf("mouse mode % x", mm[0].Bytes)
	}
	deadline := time.Now().Add(wait)
	for r.kvm.Outstanding() < 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := r.kvm.Outstanding(); n < 1 {
		t.Errorf("%d update requests outstanding, want at least 1", n)
	}
}

func TestOpenJNLP22AST2100ResizeAndNoSignal(t *testing.T) {
	web := newSim(t, bmcsim.WebOptions{JNLPArgs: 22, Base64Login: true},
		bmcsim.KVMOptions{Video: bmcsim.VideoAST2100, Blob: bmcsim.BlobATEN1}, testScreen(t, 64, 32, 0))
	r := start(t, web, "")
	r.waitShown(t)
	if l := web.Logins(); len(l) != 1 || !l[0].OK {
		t.Errorf("logins %+v, want one good base64 login", l)
	}
	if d := r.con.Info().Details; d["video"] != "ast2100" || d["jnlp_layout"] != "22" || d["blob"] != "aten1" {
		t.Errorf("details %v", d)
	}
	// A resolution change.
	r.setScreen(t, testScreen(t, 96, 40, 0xff))
	if w, h := r.fb.Size(); w != 96 || h != 40 {
		t.Errorf("after resize %dx%d", w, h)
	}
	// No signal: the console shows its own picture and says so.
	web.KVM.SetNoSignal()
	deadline := time.Now().Add(wait)
	for r.con.Info().Details["signal"] != "none" && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if d := r.con.Info().Details; d["signal"] != "none" {
		t.Fatalf("signal = %q after a no-signal rectangle", d["signal"])
	}
	for r.fb.Snapshot().W != 640 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	snap := r.fb.Snapshot()
	if snap.W != 640 || snap.H != 480 || snap.At(0, 0) != aten.NoSignalBackground {
		t.Errorf("no-signal picture %dx%d with corner %#x", snap.W, snap.H, snap.At(0, 0))
	}
	// The signal comes back.
	r.setScreen(t, testScreen(t, 96, 40, 0))
	if d := r.con.Info().Details; d["signal"] != "ok" {
		t.Errorf("signal = %q after a video frame", d["signal"])
	}
}

func TestOpenHTML5WebSocket(t *testing.T) {
	web := newSim(t, bmcsim.WebOptions{HTML5: true}, bmcsim.KVMOptions{Banner: bmcsim.BannerHTML5, Video: bmcsim.VideoHermonTiles}, testScreen(t, 48, 48, 0))
	r := start(t, web, "keepalive=20ms")
	r.waitShown(t)
	if d := r.con.Info().Details; d["console"] != "html5" || r.con.Info().Server != "RFB 055.008" {
		t.Errorf("info %+v", r.con.Info())
	}
	hs := r.kvm.Handshakes()
	if len(hs) != 1 || string(hs[0][:12]) != bmcsim.BannerHTML5 {
		t.Errorf("banner not echoed verbatim: %q", hs)
	}
	// Extra server messages of the profile are absorbed; a session
	// message can make the session view-only.
	for typ, n := range aten.ProfileAST2400.ServerMessages {
		if typ == aten.MsgSessionMessage {
			continue
		}
		if err := web.KVM.SendExtra(typ, make([]byte, n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := web.KVM.SendExtra(aten.MsgSessionMessage, bmcsim.SessionMessageBody(3, 0, "Another user has control: view only")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(wait)
	for r.con.Info().Details["viewonly"] != "true" && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := r.con.Key(input.KeyEvent{Code: "KeyB", Down: true}); !errors.Is(err, aten.ErrViewOnly) {
		t.Errorf("Key in a view-only session: %v", err)
	}
	// The client sends keepalives (the server's were counted above).
	ka := r.waitRecords(t, aten.MsgClientKeepAlive, 1)
	if !bytes.Equal(ka[0].Bytes, []byte{0x16, 0}) {
		t.Errorf("keepalive % x", ka[0].Bytes)
	}
	if n := r.con.(interface{ Stats() aten.Stats }).Stats().KeepAlives; n != 1 {
		t.Errorf("%d server keepalives counted, want 1", n)
	}
	r.setScreen(t, testScreen(t, 48, 48, 0x3f))
}

func TestSessionMessageEndsSession(t *testing.T) {
	web := newSim(t, bmcsim.WebOptions{JNLPArgs: 22}, bmcsim.KVMOptions{}, testScreen(t, 32, 32, 0))
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	con, err := backend.Open(ctx, "ipmi://ADMIN@"+web.Host()+"?vendor=supermicro&insecure=1", backend.Secrets{Password: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- con.Run(context.Background(), framebuffer.New()) }()
	// Event codes are four decimal-digit bytes: "0000" (another user
	// joined) is news, "0004" (too many users) drops this viewer.
	if err := web.KVM.SendExtra(aten.MsgSessionMessage, bmcsim.SessionMessageBody(1, 0x00000000, "2 operator 192.0.2.7")); err != nil {
		t.Fatal(err)
	}
	if err := web.KVM.SendExtra(aten.MsgSessionMessage, bmcsim.SessionMessageBody(2, 0x00000004, "3 admin 192.0.2.8")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-runErr:
		if !errors.Is(err, aten.ErrSessionEnded) || !strings.Contains(err.Error(), "too many users") {
			t.Errorf("Run ended with %v, want ErrSessionEnded (too many users)", err)
		}
	case <-time.After(wait):
		t.Fatal("Run still running after a too-many-users session message")
	}
}

func TestWrongPasswordOneAttempt(t *testing.T) {
	web := newSim(t, bmcsim.WebOptions{JNLPArgs: 10}, bmcsim.KVMOptions{}, testScreen(t, 16, 16, 0))
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_, err := backend.Open(ctx, "ipmi://ADMIN@"+web.Host()+"?vendor=supermicro&insecure=1", backend.Secrets{Password: "wrong"})
	if !errors.Is(err, ipmi.ErrLogin) {
		t.Fatalf("Open with a wrong password: %v, want ErrLogin", err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Errorf("error reveals the password: %v", err)
	}
	if l := web.Logins(); len(l) != 1 {
		t.Errorf("%d login attempts, want exactly 1", len(l))
	}
	for _, req := range web.Requests() {
		if strings.Contains(req, "url_redirect") || strings.Contains(req, "redfish") {
			t.Errorf("request after a failed login: %s", req)
		}
	}
}

func TestKVMRejectsCredentials(t *testing.T) {
	// The JNLP names a KVM whose credential check fails: one attempt, ErrAuth.
	web := newSim(t, bmcsim.WebOptions{JNLPArgs: 10}, bmcsim.KVMOptions{}, testScreen(t, 16, 16, 0))
	other := bmcsim.NewKVM(bmcsim.KVMOptions{}, testScreen(t, 16, 16, 0))
	l, err := netListen()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go other.Serve(l)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_, port := splitPort(l.Addr().String())
	_, err = backend.Open(ctx, "ipmi://ADMIN@"+web.Host()+"?vendor=supermicro&insecure=1&kvmport="+port, backend.Secrets{Password: "s3cret"})
	if !errors.Is(err, aten.ErrAuth) {
		t.Fatalf("Open: %v, want aten.ErrAuth", err)
	}
	if tries, fails := other.AuthAttempts(); tries != 1 || fails != 1 {
		t.Errorf("KVM saw %d attempts, %d failed; want 1, 1", tries, fails)
	}
	if web.Logouts() != 1 {
		t.Errorf("%d logouts after the failure, want 1", web.Logouts())
	}
}

func TestLegacyTLSOnlyWhenAsked(t *testing.T) {
	web := newSim(t, bmcsim.WebOptions{JNLPArgs: 10, LegacyTLS: true}, bmcsim.KVMOptions{}, testScreen(t, 16, 16, 0))
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_, err := backend.Open(ctx, "ipmi://ADMIN@"+web.Host()+"?vendor=supermicro&insecure=1", backend.Secrets{Password: "s3cret"})
	if err == nil {
		t.Fatal("a TLS 1.0 web server was accepted without tls=legacy")
	}
	if len(web.Logins()) != 0 {
		t.Error("credentials were sent over a failed TLS connection")
	}
	r := start(t, web, "tls=legacy")
	r.waitShown(t)
}

func TestCertificateVerifiedByDefault(t *testing.T) {
	web := newSim(t, bmcsim.WebOptions{JNLPArgs: 10}, bmcsim.KVMOptions{}, testScreen(t, 16, 16, 0))
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_, err := backend.Open(ctx, "ipmi://ADMIN@"+web.Host()+"?vendor=supermicro", backend.Secrets{Password: "s3cret"})
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("Open against a self-signed BMC without insecure=1: %v, want a certificate error", err)
	}
	if len(web.Logins()) != 0 {
		t.Error("credentials were sent to an unverified server")
	}
}

func TestTargetErrors(t *testing.T) {
	ctx := context.Background()
	for _, target := range []string{
		"ipmi://ADMIN@127.0.0.1:1",                              // no vendor
		"ipmi://ADMIN@127.0.0.1:1?vendor=nope",                  // unknown vendor
		"ipmi://127.0.0.1:1?vendor=supermicro",                  // no user
		"ipmi://ADMIN@127.0.0.1:1?vendor=supermicro&tls=weak",   // bad tls
		"ipmi://ADMIN@127.0.0.1:1?vendor=supermicro&profile=x7", // unknown profile (checked after arming; the dial fails first)
	} {
		if _, err := backend.Open(ctx, target, backend.Secrets{Password: "p"}); err == nil {
			t.Errorf("Open(%q) succeeded", target)
		}
	}
}

func netListen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

func splitPort(addr string) (string, string) {
	h, p, _ := net.SplitHostPort(addr)
	return h, p
}
