package e2e

import (
	"bytes"
	"testing"
	"time"

	"kvmgate/backend"
	"kvmgate/framebuffer"
	"kvmgate/internal/browsertest"
	"kvmgate/ipmi/bmcsim"
	_ "kvmgate/ipmi/supermicro" // registers ipmi:// targets
	"kvmgate/server"
)

// TestBMCConsole serves a simulated Supermicro BMC (web login, 22-argument
// JNLP, ATEN iKVM with HERMON frames) through the real server and client in
// headless Chromium: the page shows the simulator's screen and what is
// typed reaches the BMC as USB HID key events.
func TestBMCConsole(t *testing.T) {
	screen, err := framebuffer.NewCanvas(320, 200)
	if err != nil {
		t.Fatal(err)
	}
	screen.Fill(framebuffer.Rect{W: 160, H: 200}, 0xff0000f8)
	screen.Fill(framebuffer.Rect{X: 160, W: 160, H: 100}, 0xff00f800)
	screen.Fill(framebuffer.Rect{X: 40, Y: 120, W: 64, H: 32}, 0xfff8f8f8)
	kvm := bmcsim.NewKVM(bmcsim.KVMOptions{}, screen)
	web, err := bmcsim.NewWeb(bmcsim.WebOptions{Username: "ADMIN", Password: "pw", JNLPArgs: 22}, kvm)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(web.Close)
	target := "ipmi://ADMIN@" + web.Host() + "?vendor=supermicro&insecure=1"
	_, hs := startServer(t, server.Options{
		Target:  target,
		Secrets: func(string) (backend.Secrets, error) { return backend.Secrets{Password: "pw"}, nil },
	})

	b := browsertest.Launch(t)
	p := b.NewPage(t, hs.URL+"/")
	waitConnected(t, p)
	waitShown(t, p, kvm)

	p.MustEval(t, el+`.focus()`)
	p.Type(t, "ab")
	p.KeyPress(t, "Enter")
	want := [][]byte{
		{4, 0, 1, 0, 0, 0, 0, 0, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0}, // a down
		{4, 0, 0, 0, 0, 0, 0, 0, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0}, // a up
		{4, 0, 1, 0, 0, 0, 0, 0, 0x05, 0, 0, 0, 0, 0, 0, 0, 0, 0}, // b down
		{4, 0, 0, 0, 0, 0, 0, 0, 0x05, 0, 0, 0, 0, 0, 0, 0, 0, 0}, // b up
		{4, 0, 1, 0, 0, 0, 0, 0, 0x28, 0, 0, 0, 0, 0, 0, 0, 0, 0}, // Enter down
		{4, 0, 0, 0, 0, 0, 0, 0, 0x28, 0, 0, 0, 0, 0, 0, 0, 0, 0}, // Enter up
	}
	deadline := time.Now().Add(wait)
	var keys [][]byte
	for {
		keys = keys[:0]
		for _, r := range kvm.Records() {
			if r.Type == 4 {
				keys = append(keys, r.Bytes)
			}
		}
		if len(keys) >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(keys) != len(want) {
		t.Fatalf("BMC recorded %d key events, want %d: % x", len(keys), len(want), keys)
	}
	for i := range want {
		if !bytes.Equal(keys[i], want[i]) {
			t.Errorf("key event %d: % x, want % x", i, keys[i], want[i])
		}
	}

	// A new picture on the BMC reaches the page.
	screen.Fill(framebuffer.Rect{X: 200, Y: 150, W: 100, H: 40}, 0xff00f8f8)
	kvm.SetScreen(screen)
	waitShown(t, p, kvm)
	noErrors(t, p)
}

// waitShown waits until the page's canvas equals what the simulator sent.
func waitShown(t *testing.T, p *browsertest.Page, kvm *bmcsim.KVM) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		want := kvm.Shown()
		got, err := p.CanvasPixels("kvm-console")
		if err != nil {
			t.Fatal(err)
		}
		diff := "no frame yet"
		if want != nil {
			diff = compare(got, want)
		}
		if diff == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the browser's canvas differs from the BMC's screen after %v: %s", wait, diff)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
