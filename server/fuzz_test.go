package server

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"kvmgate/input"
	"kvmgate/session"
	"kvmgate/session/sessiontest"
)

func FuzzParseTokens(f *testing.F) {
	f.Add("vm1: 10.0.0.1:5900\n# c\n\nvm2: vnc://h:1\n")
	f.Add("a:b:c\n")
	f.Add(": :\n")
	f.Fuzz(func(t *testing.T, s string) {
		toks, err := ParseTokens(strings.NewReader(s))
		if err != nil {
			return
		}
		for k, v := range toks {
			if k == "" || v == "" {
				t.Fatalf("empty token or target: %q=%q", k, v)
			}
		}
	})
}

func FuzzVerifyTicket(f *testing.F) {
	tk := NewTickets([]byte("fuzz key fuzz key fuzz key"), time.Minute)
	good, _ := tk.Issue("vnc://h:1")
	f.Add(good)
	f.Add("abc.def")
	f.Add(".")
	f.Fuzz(func(t *testing.T, s string) {
		target, err := tk.Verify(s)
		if err == nil && s != good && target == "" {
			t.Fatalf("accepted %q with no target", s)
		}
	})
}

// FuzzHandle feeds arbitrary browser messages to a viewer's message
// handler: it may refuse them, never panic.
func FuzzHandle(f *testing.F) {
	for _, s := range []string{
		`{"t":"ack","f":3}`, `{"t":"key","code":"KeyA","key":"a","down":true}`,
		`{"t":"ptr","x":1e300,"y":-5,"b":255}`, `{"t":"wheel","x":1,"y":1,"dx":"NaN"}`,
		`{"t":"type","text":"héllo\n","layout":"de"}`, `{"t":"combo","name":"ctrl-alt-del"}`,
		`{"t":"quality","mode":"low"}`, `{"t":"action","name":"reboot"}`, `[]`, `null`, `{"t":1}`,
		`{"t":"resize","w":800.5,"h":600}`, `{"t":"resize","w":-1,"h":1e308}`,
	} {
		f.Add([]byte(s))
	}
	b := &sessiontest.Backend{}
	hub := session.NewHub(session.Options{Open: b.Open, Logger: slog.New(slog.DiscardHandler)})
	f.Cleanup(hub.Close)
	v, err := hub.Join("fuzz")
	if err != nil {
		f.Fatal(err)
	}
	vc := &viewerConn{
		v: v, ackCh: make(chan struct{}, 1), fatal: make(chan closeReason, 1),
		notes: make(chan string, 8), modes: make(chan string, 4),
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var buttons input.Buttons
		_ = vc.handle(data, &buttons)
		// Drain so that notes and modes never fill up.
		for {
			select {
			case <-vc.notes:
			case <-vc.modes:
			case <-vc.ackCh:
			case <-v.Errors():
			default:
				return
			}
		}
	})
}
