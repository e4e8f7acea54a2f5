package aten

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"testing"
	"time"

	"kvmgate/framebuffer"
)

func TestParseRectHeader(t *testing.T) {
	hdr := func(w, h int16, enc uint32, n uint32) []byte {
		b := make([]byte, 20)
		binary.BigEndian.PutUint16(b[4:6], uint16(w))
		binary.BigEndian.PutUint16(b[6:8], uint16(h))
		binary.BigEndian.PutUint32(b[8:12], enc)
		binary.BigEndian.PutUint32(b[16:20], n)
		return b
	}
	for _, tc := range []struct {
		name     string
		b        []byte
		noSignal bool
		err      bool
	}{
		{"ast2100", hdr(1024, 768, 0x57, 100), false, false},
		{"hermon legacy 0x00", hdr(640, 480, 0, 10), false, false},
		{"no signal", hdr(-640, -480, 0x59, 10), true, false},
		{"other negative", hdr(-1, 480, 0x59, 0), false, true},
		{"zrle", hdr(640, 480, 16, 0), false, true},
		{"huge payload", hdr(640, 480, 0x57, MaxVideoBody+1), false, true},
		{"huge screen", hdr(32000, 32000, 0x57, 0), false, true},
		{"short", make([]byte, 19), false, true},
	} {
		h, err := ParseRectHeader(tc.b)
		if (err != nil) != tc.err {
			t.Errorf("%s: err = %v", tc.name, err)
			continue
		}
		if err == nil && h.NoSignal() != tc.noSignal {
			t.Errorf("%s: NoSignal = %v", tc.name, h.NoSignal())
		}
	}
}

func TestSessionMessageViewOnly(t *testing.T) {
	body := make([]byte, 264)
	copy(body[8:], "Session is view only")
	m, err := ParseSessionMessage(body)
	if err != nil {
		t.Fatal(err)
	}
	if vo, ok := m.ViewOnly(); !vo || !ok || m.Text != "Session is view only" {
		t.Errorf("%+v: view only %v %v", m, vo, ok)
	}
	if _, ok := (SessionMessage{Text: "BMC will reset"}).ViewOnly(); ok {
		t.Error("unrelated text changed the view-only state")
	}
}

func TestSessionEvent(t *testing.T) {
	for _, tc := range []struct {
		arg  uint32
		want SessionEvent
		ends bool
	}{
		{0x00000000, EventUserJoined, false},
		{0x00000001, EventUserJoined, false},
		{0x00000002, EventUserLeft, false},
		{0x00000003, EventLoggedOut, true},
		{0x00000004, EventTooManyUsers, true},
		{0x00000008, EventBIOSUpdate, true},
		{0x00000009, EventFirmwareUpdate, true},
		{0x00000100, SessionEvent(10), false},
		{0x0000000a, EventUnknown, false},
		{0x31323334, EventUnknown, false}, // ASCII digits are not the encoding
	} {
		got := SessionMessage{Arg: tc.arg}.Event()
		if got != tc.want || got.EndsSession() != tc.ends {
			t.Errorf("Arg %#08x: event %v (ends %v), want %v (ends %v)", tc.arg, got, got.EndsSession(), tc.want, tc.ends)
		}
	}
}

func TestProfiles(t *testing.T) {
	p, err := ParseProfile("x9", "0x33:40, 60:9")
	if err != nil {
		t.Fatal(err)
	}
	if p.ServerMessages[0x33] != 40 || p.ServerMessages[0x3c] != 9 || p.ServerMessages[0x37] != 2 {
		t.Errorf("profile %+v", p)
	}
	if ProfileX9.ServerMessages[0x33] != 4 {
		t.Error("ParseProfile changed the built-in profile")
	}
	for _, bad := range [][2]string{{"x7", ""}, {"", "0x33"}, {"", "0x00:4"}, {"", "0x33:-1"}, {"", "zz:1"}} {
		if _, err := ParseProfile(bad[0], bad[1]); err == nil {
			t.Errorf("ParseProfile(%q, %q) succeeded", bad[0], bad[1])
		}
	}
}

func TestCredentialsTooLong(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	_, err := NewClient(context.Background(), a, Options{Username: "u", Password: string(bytes.Repeat([]byte("p"), 25))})
	if err == nil {
		t.Fatal("a 25-byte password was accepted")
	}
}

// TestHandshakeRejected checks that a failed SecurityResult is ErrAuth.
func TestHandshakeRejected(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	go func() {
		defer b.Close()
		b.Write([]byte("RFB 003.008\n"))
		buf := make([]byte, 64)
		b.Read(buf[:12])
		b.Write([]byte{1, 16})
		b.Read(buf[:1])
		b.Write(make([]byte, 24))
		n := 0
		for n < 48 {
			m, err := b.Read(buf[n:48])
			if err != nil {
				return
			}
			n += m
		}
		b.Write([]byte{0, 0, 0, 1})
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := NewClient(ctx, a, Options{Username: "u", Password: "p"})
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("err = %v, want ErrAuth", err)
	}
}

// FuzzServerStream feeds arbitrary bytes after a valid handshake to the
// message loop: it must return an error or run out of input, never panic.
func FuzzServerStream(f *testing.F) {
	f.Add([]byte{0x16, 0, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 0, 0xfd, 0x80, 0xfe, 0x20, 0, 0, 0, 0x59, 0, 0, 0, 0, 0, 0, 0, 0})
	hermon := []byte{0, 0, 0, 1, 0, 0, 0, 0, 0, 16, 0, 16, 0, 0, 0, 0x59, 0, 0, 0, 0, 0, 0, 0x02, 0x0a}
	body := make([]byte, 10+512)
	body[0] = 1
	binary.BigEndian.PutUint32(body[6:10], uint32(len(body)))
	f.Add(append(hermon, body...))
	ast := []byte{0, 0, 0, 1, 0, 0, 0, 0, 0, 16, 0, 16, 0, 0, 0, 0x57, 0, 0, 0, 0, 0, 0, 0, 12, 4, 4, 1, 0xbc, 0, 0, 0, 0x90, 0, 0, 0, 0}
	f.Add(ast)
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &Client{profile: ProfileAST2400, encoding: -1, firstRect: make(chan struct{}),
			stats: Stats{Extra: map[byte]uint64{}}, conn: nopConn{}, initW: 800, initH: 600}
		c.log = discard
		c.br = newBufReader(data)
		fb := framebuffer.New()
		if err := c.loop(fb); err == nil {
			t.Fatal("loop returned nil at the end of input")
		}
	})
}
