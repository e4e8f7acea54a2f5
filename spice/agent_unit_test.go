package spice

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"kvmgate/backend"
	"kvmgate/framebuffer"
)

// agentRecorder collects what an agent sends on the main channel.
type agentRecorder struct {
	msgs []message
}

func (r *agentRecorder) send(typ uint16, body []byte) error {
	r.msgs = append(r.msgs, message{typ: typ, body: bytes.Clone(body)})
	return nil
}

// stream returns the VD agent stream the client sent (its AGENT_DATA
// bodies joined) and how many AGENT_DATA messages carried it.
func (r *agentRecorder) stream() ([]byte, int) {
	var b []byte
	n := 0
	for _, m := range r.msgs {
		if m.typ == msgcMainAgentData {
			if len(m.body) > maxAgentData {
				panic("AGENT_DATA message too long")
			}
			b = append(b, m.body...)
			n++
		}
	}
	return b, n
}

// vdMessage encodes one VDAgentMessage as vd_agent.h lays it out.
func vdMessage(typ uint32, body []byte) []byte {
	b := le.AppendUint32(nil, vdAgentProtocol)
	b = le.AppendUint32(b, typ)
	b = le.AppendUint64(b, 0)
	b = le.AppendUint32(b, uint32(len(body)))
	return append(b, body...)
}

func testAgent() (*agent, *agentRecorder, *framebuffer.Framebuffer) {
	rec := &agentRecorder{}
	fb := framebuffer.New()
	return newAgent(rec.send, fb, slog.New(slog.NewTextHandler(io.Discard, nil))), rec, fb
}

// TestAgentStream checks the bytes the client sends the agent, message by
// message, the AGENT_DATA split at 2048 bytes and the token accounting.
func TestAgentStream(t *testing.T) {
	a, rec, fb := testAgent()
	if err := a.onConnected(4); err != nil {
		t.Fatal(err)
	}
	if m := rec.msgs[0]; m.typ != msgcMainAgentStart || !bytes.Equal(m.body, []byte{0xff, 0xff, 0xff, 0xff}) {
		t.Fatalf("first message %d %x, want AGENT_START with unlimited tokens", m.typ, m.body)
	}
	announce := vdMessage(vdAgentAnnounceCapabilities, []byte{1, 0, 0, 0, 0x26, 0, 0, 0})
	if got, _ := rec.stream(); !bytes.Equal(got, announce) {
		t.Fatalf("announce %x, want %x", got, announce)
	}
	rec.msgs = nil

	// The guest announces itself with CRLF line ends and grabs its clipboard
	// with two types; the client asks for the text, in one AGENT_DATA
	// message split over two server messages.
	in := vdMessage(vdAgentAnnounceCapabilities, []byte{0, 0, 0, 0, 0x20, 2, 0, 0})
	in = append(in, vdMessage(vdAgentClipboardGrab, []byte{9, 0, 0, 0, 1, 0, 0, 0})...)
	a.onData(in[:7])
	a.onData(in[7:])
	if got, want := func() []byte { b, _ := rec.stream(); return b }(), vdMessage(vdAgentClipboardRequest, []byte{1, 0, 0, 0}); !bytes.Equal(got, want) {
		t.Fatalf("after the guest's grab the client sent %x, want the request %x", got, want)
	}
	rec.msgs = nil
	v := fb.Subscribe()
	dst, _ := framebuffer.NewCanvas(1, 1)
	v.Take(dst)
	a.onData(vdMessage(vdAgentClipboard, append([]byte{1, 0, 0, 0}, "one\r\ntwo \xff"...)))
	if u := v.Take(dst); !u.ClipboardChanged || u.Clipboard != "one\ntwo \uFFFD" {
		t.Fatalf("guest clipboard %q (changed %v), want LF line ends and invalid UTF-8 replaced", u.Clipboard, u.ClipboardChanged)
	}

	// The client's own text: a grab, then on request the text with CRLF
	// line ends, 5000 bytes in AGENT_DATA pieces of at most 2048 bytes,
	// as far as the one token left allows; more tokens send the rest.
	text := strings.Repeat("abcd\n", 1000)
	if err := a.clipboard(text); err != nil {
		t.Fatal(err)
	}
	if got, n := rec.stream(); n != 1 || !bytes.Equal(got, vdMessage(vdAgentClipboardGrab, []byte{1, 0, 0, 0})) {
		t.Fatalf("clipboard grab %x in %d messages", got, n)
	}
	rec.msgs = nil
	a.onData(vdMessage(vdAgentClipboardRequest, []byte{1, 0, 0, 0}))
	want := vdMessage(vdAgentClipboard, append([]byte{1, 0, 0, 0}, strings.ReplaceAll(text, "\n", "\r\n")...))
	if _, n := rec.stream(); n != 1 {
		t.Fatalf("%d AGENT_DATA messages sent with 1 token left", n)
	}
	if err := a.onTokens(10); err != nil {
		t.Fatal(err)
	}
	got, n := rec.stream()
	if n != (len(want)+maxAgentData-1)/maxAgentData || !bytes.Equal(got, want) {
		t.Fatalf("clipboard reply in %d messages, %d bytes; want %d bytes in %d", n, len(got), len(want), (len(want)+maxAgentData-1)/maxAgentData)
	}
	rec.msgs = nil

	if err := a.monitors([]Monitor{{X: 0, Y: 0, Width: 800, Height: 600}}); err != nil {
		t.Fatal(err)
	}
	mc := []byte{1, 0, 0, 0, 0, 0, 0, 0, 0x58, 2, 0, 0, 0x20, 3, 0, 0, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	if got, _ := rec.stream(); !bytes.Equal(got, vdMessage(vdAgentMonitorsConfig, mc)) {
		t.Fatalf("monitors config %x, want %x", got, vdMessage(vdAgentMonitorsConfig, mc))
	}

	a.onDisconnected()
	if err := a.clipboard("x"); err != ErrNoAgent {
		t.Fatalf("clipboard without an agent: %v, want ErrNoAgent", err)
	}
}

// FuzzAgentData feeds arbitrary agent streams, in two pieces, to the
// client: nothing panics and the buffered input stays bounded.
func FuzzAgentData(f *testing.F) {
	f.Add(vdMessage(vdAgentClipboardGrab, []byte{1, 0, 0, 0}), 3)
	f.Add(append(vdMessage(vdAgentAnnounceCapabilities, []byte{1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}), vdMessage(vdAgentClipboardRequest, []byte{1, 0, 0, 0})...), 30)
	f.Add(le.AppendUint32(le.AppendUint64(le.AppendUint32(le.AppendUint32(nil, 1), 4), 0), 1<<30), 20)
	f.Fuzz(func(t *testing.T, b []byte, cut int) {
		a, _, _ := testAgent()
		a.onConnected(1)
		a.clipboard("text")
		cut = min(max(cut, 0), len(b))
		a.onData(b[:cut])
		a.onData(b[cut:])
		if len(a.in) > vdAgentHeaderSize+maxAgentMessage {
			t.Fatalf("%d bytes buffered", len(a.in))
		}
	})
}

// TestResizeWithoutAgent: without a session (or agent) Resize says it
// cannot, in a way both the spice and the backend packages recognise.
func TestResizeWithoutAgent(t *testing.T) {
	c := &Client{}
	err := c.Resize(context.Background(), 800, 600)
	if !errors.Is(err, ErrNoAgent) || !errors.Is(err, backend.ErrUnsupported) {
		t.Errorf("Resize without an agent: %v, want ErrNoAgent and backend.ErrUnsupported", err)
	}
}
