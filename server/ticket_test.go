package server_test

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"kvmgate/server"
)

func writeFile(t *testing.T, name, data string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// expired returns a ticket from s that has already expired.
func expired(t *testing.T, s *server.Tickets) string {
	t.Helper()
	server.SetTicketClock(s, func() time.Time { return time.Now().Add(-time.Hour) })
	tk, _ := s.Issue("vnc://fake:1")
	server.SetTicketClock(s, time.Now)
	return tk
}

func TestTickets(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	s := server.NewTickets(key, time.Minute)
	good, exp := s.Issue("vnc://10.0.0.1:5900")
	if d := time.Until(exp); d <= 0 || d > time.Minute {
		t.Fatalf("expiry in %v", d)
	}
	other, _ := server.NewTickets([]byte("another key"), time.Minute).Issue("vnc://10.0.0.1:5900")
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	dot := strings.IndexByte(good, '.')
	cases := []struct {
		name   string
		ticket string
		target string
		err    error
	}{
		{"valid", good, "vnc://10.0.0.1:5900", nil},
		{"same key new signer", good, "vnc://10.0.0.1:5900", nil},
		{"other key", other, "", server.ErrTicketSignature},
		{"payload bit flipped", flip(good, dot-2), "", server.ErrTicketSignature},
		{"signature bit flipped", flip(good, dot+3), "", server.ErrTicketSignature},
		{"signature swapped", good[:dot] + other[strings.IndexByte(other, '.'):], "", server.ErrTicketSignature},
		{"expired", expired(t, server.NewTickets(key, time.Minute)), "", server.ErrTicketExpired},
		{"empty", "", "", server.ErrTicketMalformed},
		{"no dot", "abc", "", server.ErrTicketMalformed},
		{"bad base64", "!!!.???", "", server.ErrTicketMalformed},
		{"short signature", good[:dot] + ".AAAA", "", server.ErrTicketMalformed},
		{"huge", strings.Repeat("A", 10000) + ".x", "", server.ErrTicketMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := s
			if tc.name == "same key new signer" {
				v = server.NewTickets(key, time.Minute)
			}
			target, err := v.Verify(tc.ticket)
			if !errors.Is(err, tc.err) || target != tc.target {
				t.Fatalf("Verify = %q, %v; want %q, %v", target, err, tc.target, tc.err)
			}
		})
	}
	a, _ := s.Issue("x:1")
	b, _ := s.Issue("x:1")
	if a == b {
		t.Fatal("two tickets for one target are equal (no nonce)")
	}
}

func TestTicketRevoke(t *testing.T) {
	s := server.NewTickets(nil, time.Minute)
	now := time.Now()
	server.SetTicketClock(s, func() time.Time { return now })
	old, _ := s.Issue("vnc://a:1")
	other, _ := s.Issue("vnc://b:1")
	s.Revoke("vnc://a:1")
	// Same millisecond as the revocation: still a new, valid ticket.
	fresh, _ := s.Issue("vnc://a:1")
	if _, err := s.Verify(old); !errors.Is(err, server.ErrTicketRevoked) {
		t.Errorf("ticket issued before Revoke: %v, want ErrTicketRevoked", err)
	}
	if target, err := s.Verify(other); err != nil || target != "vnc://b:1" {
		t.Errorf("other target's ticket: %q, %v", target, err)
	}
	if target, err := s.Verify(fresh); err != nil || target != "vnc://a:1" {
		t.Errorf("ticket issued after Revoke: %q, %v", target, err)
	}
	// Revocations are forgotten once every ticket they cover has expired.
	now = now.Add(2 * time.Minute)
	s.Revoke("vnc://c:1")
	if n := server.RevokedTargets(s); n != 1 {
		t.Errorf("%d revocations kept, want 1", n)
	}
}
