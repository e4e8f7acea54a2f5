package server

import (
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"kvmgate/server/websockify"
	"kvmgate/session/sessiontest"
)

// TestNoVNCEndpointMounted checks that Options.NoVNC mounts the
// websockify endpoint (re-encoding the single target, with its VNC
// greeting) and starts the RFB listener.
func TestNoVNCEndpointMounted(t *testing.T) {
	be := &sessiontest.Backend{}
	srv, err := New(Options{
		Target: "vnc://console.test:5900",
		Open:   be.Open,
		Logger: slog.New(slog.DiscardHandler),
		NoVNC:  &NoVNCOptions{Mode: websockify.ModeReencode},
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer func() {
		hs.CloseClientConnections()
		srv.Close()
		hs.Close()
	}()
	for _, path := range []string{"/websockify", "/websockify?token=", "/websockify/"} {
		ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http")+path, nil)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, msg, err := ws.ReadMessage()
		ws.Close()
		if err != nil || string(msg) != "RFB 003.008\n" {
			t.Fatalf("%s: first message %q, %v; want the RFB greeting", path, msg, err)
		}
	}
}

func TestNoVNCRFBListenNeedsTarget(t *testing.T) {
	_, err := New(Options{
		APIKey: "k",
		Logger: slog.New(slog.DiscardHandler),
		NoVNC:  &NoVNCOptions{RFBListen: "127.0.0.1:0"},
	})
	if err == nil {
		t.Fatal("an RFB listener without a target was accepted")
	}
}
