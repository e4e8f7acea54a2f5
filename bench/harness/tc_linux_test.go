package harness

import (
	"context"
	"math"
	"os"
	"strings"
	"testing"
	"time"
)

// TestTCLink sends 125 kB over a veth pair shaped to 1 Mbit/s by tc tbf:
// the transfer takes about a second (asserted loosely, 0.5-3 s, for a
// loaded machine), the delay and loss model lands on top, and the
// namespaces are gone afterwards.
func TestTCLink(t *testing.T) {
	l := Link{Name: "test-1mbit", Bitrate: 1e6, RTT: 100 * time.Millisecond}
	emu, err := newTCEmulator(l)
	if err != nil {
		t.Fatal(err)
	}
	e := emu.(*tcEmulator)
	ns := e.tc.ns
	t.Cleanup(func() { emu.close() })
	// Asking before anything is sent must not start the clock at the
	// deadline asked about.
	if d, ok := emu.drained(10 * time.Second); !ok || d != 0 {
		t.Fatalf("drained before any send = %v, %v; want 0, true", d, ok)
	}
	start := emu.wait(0)
	if start > 100*time.Millisecond {
		t.Fatalf("the clock starts at %v, want about 0", start)
	}
	var ids []int
	for range 25 {
		ids = append(ids, emu.send(emu.wait(0), 5000))
	}
	done, ok := emu.drained(maxTime)
	if !ok {
		t.Fatal("drained reported a busy link with no deadline")
	}
	took := done - start
	if took < 500*time.Millisecond || took > 3*time.Second {
		t.Errorf("125 kB over 1 Mbit/s took %v, want about 1 s", took)
	}
	if err := emu.close(); err != nil {
		t.Fatal(err)
	}
	last := emu.arrival(ids[len(ids)-1])
	if d := last - done; d < l.RTT/2 || d > l.RTT/2+time.Millisecond {
		t.Errorf("last arrival %v after draining, want RTT/2 = %v", d, l.RTT/2)
	}
	for i := 1; i < len(ids); i++ {
		if emu.arrival(ids[i]) < emu.arrival(ids[i-1]) {
			t.Errorf("message %d arrived before message %d", i, i-1)
		}
	}
	for _, n := range ns {
		if _, err := os.Stat("/run/netns/" + n); err == nil {
			t.Errorf("namespace %s left behind", n)
		}
	}
	t.Logf("125 kB in %v over tbf 1 Mbit/s", took)
}

// TestTCLinkFailureCleansUp makes the link setup fail after the
// namespaces exist (an invalid rate) and checks that none are left.
func TestTCLinkFailureCleansUp(t *testing.T) {
	before := benchNamespaces(t)
	if _, err := newTCLink(Link{Name: "bad", Bitrate: 0}); err == nil {
		t.Fatal("a link of 0 bit/s was set up")
	}
	if after := benchNamespaces(t); len(after) != len(before) {
		t.Errorf("namespaces before %v, after a failed setup %v", before, after)
	}
}

func benchNamespaces(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir("/run/netns")
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tcPrefix+"-") {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestRunTC replays the smallest workload (SeaBIOS, 10 s of real time)
// through one viewer over a tc link and checks it against the in-process
// run of the same viewer: the same picture at the end, about the same
// bytes (real time may merge frames on a loaded machine: asserted within
// half to one and a half times), and no namespace left.
func TestRunTC(t *testing.T) {
	w := smallest(t)
	l, _ := ProfileByName("1mbit-150ms")
	opts := Options{Encoders: []string{TilesPaced}, Links: []Link{l}, NoKeys: true}
	want, err := Run(context.Background(), w, opts)
	if err != nil {
		t.Fatal(err)
	}
	before := benchNamespaces(t)
	opts.Emulator = EmulatorTC
	got, err := Run(context.Background(), w, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(want) != 1 {
		t.Fatalf("%d tc results, %d in-process: want 1 each", len(got), len(want))
	}
	g, i := got[0], want[0]
	if g.Emulator != EmulatorTC || i.Emulator != EmulatorInProc {
		t.Errorf("emulators %q and %q", g.Emulator, i.Emulator)
	}
	if !math.IsInf(float64(g.FinalPSNR), 1) || g.LosslessAfterMs < 0 {
		t.Errorf("tc: final PSNR %v, lossless after %v: want the exact last picture", g.FinalPSNR, g.LosslessAfterMs)
	}
	if r := float64(g.WireBytes) / float64(i.WireBytes); r < 0.5 || r > 1.5 {
		t.Errorf("tc sent %d bytes, in-process %d", g.WireBytes, i.WireBytes)
	}
	if g.LastArrivalMs < float64(l.RTT/2/time.Millisecond) {
		t.Errorf("tc: last arrival at %v ms, before the one-way delay", g.LastArrivalMs)
	}
	if after := benchNamespaces(t); len(after) != len(before) {
		t.Errorf("namespaces before %v, after %v", before, after)
	}
}
