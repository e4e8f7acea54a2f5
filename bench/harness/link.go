package harness

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Link is a network path between the server and the browser.
type Link struct {
	// Name identifies the profile in reports.
	Name string
	// Bitrate is the bottleneck rate in bits per second (the first step's
	// rate when Steps is set).
	Bitrate float64
	// RTT is the round-trip time; data takes RTT/2 to arrive after it has
	// been put on the wire.
	RTT time.Duration
	// Loss is the probability that a TCP segment is lost.
	Loss float64
	// Steps, when set, make the rate vary: each step holds its rate for its
	// duration, and the list repeats from the start.
	Steps []RateStep
}

// RateStep is one period of a variable link: Bitrate for Dur.
type RateStep struct {
	Dur     time.Duration
	Bitrate float64
}

// Variable reports whether the link's rate changes over time.
func (l Link) Variable() bool { return len(l.Steps) > 0 }

// rateAt returns the bottleneck rate at t and how long it holds from t.
func (l Link) rateAt(t time.Duration) (bps float64, left time.Duration) {
	if len(l.Steps) == 0 {
		return l.Bitrate, time.Duration(1<<62 - 1)
	}
	var cycle time.Duration
	for _, s := range l.Steps {
		cycle += s.Dur
	}
	off := t % cycle
	if off < 0 {
		off += cycle
	}
	for _, s := range l.Steps {
		if off < s.Dur {
			return s.Bitrate, s.Dur - off
		}
		off -= s.Dur
	}
	return l.Steps[0].Bitrate, l.Steps[0].Dur
}

// MeanBitrate is the link's average rate over one cycle of its steps.
func (l Link) MeanBitrate() float64 {
	if len(l.Steps) == 0 {
		return l.Bitrate
	}
	var bits, secs float64
	for _, s := range l.Steps {
		bits += s.Bitrate * s.Dur.Seconds()
		secs += s.Dur.Seconds()
	}
	return bits / secs
}

// wireEnd returns when n bytes put on the wire at start have all left the
// bottleneck, following the rate steps.
func (l Link) wireEnd(start time.Duration, n int) time.Duration {
	bits := float64(n * 8)
	t := start
	for {
		bps, left := l.rateAt(t)
		need := time.Duration(bits / bps * float64(time.Second))
		if need <= left {
			return t + need
		}
		bits -= bps * left.Seconds()
		t += left
	}
}

func (l Link) String() string {
	s := fmt.Sprintf("%s (%s, RTT %v", l.Name, bitrateString(l.Bitrate), l.RTT)
	if l.Variable() {
		s = fmt.Sprintf("%s (variable, mean %s, RTT %v", l.Name, bitrateString(l.MeanBitrate()), l.RTT)
	}
	if l.Loss > 0 {
		s += fmt.Sprintf(", %.0f%% loss", l.Loss*100)
	}
	return s + ")"
}

func bitrateString(bps float64) string {
	switch {
	case bps >= 1e9:
		return fmt.Sprintf("%.0f Gbit/s", bps/1e9)
	case bps >= 1e6:
		return fmt.Sprintf("%.4g Mbit/s", bps/1e6)
	default:
		return fmt.Sprintf("%.4g kbit/s", bps/1e3)
	}
}

// Profiles are the link profiles of issue 6. RTTs are round trips.
var Profiles = []Link{
	{Name: "lan", Bitrate: 1e9, RTT: 200 * time.Microsecond},
	{Name: "10mbit-40ms", Bitrate: 10e6, RTT: 40 * time.Millisecond},
	{Name: "1mbit-150ms", Bitrate: 1e6, RTT: 150 * time.Millisecond},
	{Name: "256k-300ms-2%", Bitrate: 256e3, RTT: 300 * time.Millisecond, Loss: 0.02},
	// 3G-like: the rate wanders between 200 kbit/s and 1.5 Mbit/s in
	// steps of 2-3 s, with a 200 ms round trip and 1% loss.
	{Name: "3g-variable", Bitrate: 1.5e6, RTT: 200 * time.Millisecond, Loss: 0.01, Steps: []RateStep{
		{3 * time.Second, 1.5e6}, {2 * time.Second, 384e3}, {3 * time.Second, 768e3}, {2 * time.Second, 200e3},
	}},
}

// PoorLink is the profile the poor-link goals of issue 6 are measured on.
const PoorLink = "256k-300ms-2%"

// ProfileByName returns the profile called name.
func ProfileByName(name string) (Link, bool) {
	for _, l := range Profiles {
		if l.Name == name {
			return l, true
		}
	}
	return Link{}, false
}

// segment is the TCP payload size the emulator counts losses in.
const segment = 1448

// Emulator names (Options.Emulator).
const (
	// EmulatorInProc is the in-process, virtual-time link emulator.
	EmulatorInProc = "inproc"
	// EmulatorTC carries every byte over a veth pair between two network
	// namespaces shaped by tc tbf, in real time, with delay and loss
	// layered on top by the in-process model.
	EmulatorTC = "tc"
)

// linkEmulator carries a viewer's messages over a link. Times are harness
// time (the recordings' clock).
type linkEmulator interface {
	// send queues n bytes at time t and returns the message's id.
	send(t time.Duration, n int) int
	// drained returns when everything queued so far had left the
	// bottleneck. A real-time emulator waits for that until harness time
	// by at the latest and reports false if the link is still busy then.
	drained(by time.Duration) (time.Duration, bool)
	// wait returns when a message due at t can go: t in virtual time; a
	// real-time emulator sleeps until t and returns the time it woke.
	wait(t time.Duration) time.Duration
	// rate returns the link's bottleneck rate at t in bits per second.
	rate(t time.Duration) float64
	// close ends the transfer; after it arrival answers for every message.
	close() error
	// arrival returns when the last byte of message id arrived.
	arrival(id int) time.Duration
	// lostSegments returns the segments lost so far.
	lostSegments() int
}

// lossModel decides which segments the link loses and what that costs, the
// same way in both emulators: every lost segment is sent again (it occupies
// the bottleneck a second time) and a message with a loss arrives one RTT
// later than it would have (fast retransmit), holding back everything
// after it. The random losses come from a fixed seed, so a run is
// reproducible.
type lossModel struct {
	link Link
	rng  *rand.Rand
	lost int
	last time.Duration // arrival of the latest message (TCP keeps order)
}

func newLossModel(l Link, seed uint64) lossModel {
	return lossModel{link: l, rng: rand.New(rand.NewPCG(6+seed, uint64(len(l.Name))))}
}

// segments returns how many of a message's n bytes' segments are lost.
func (m *lossModel) segments(n int) int {
	if m.link.Loss <= 0 {
		return 0
	}
	lost := 0
	for range (n + segment - 1) / segment {
		if m.rng.Float64() < m.link.Loss {
			lost++
		}
	}
	m.lost += lost
	return lost
}

// arrive returns the arrival of a message that left the bottleneck at
// wireEnd with lost segments lost.
func (m *lossModel) arrive(wireEnd time.Duration, lost int) time.Duration {
	a := wireEnd + m.link.RTT/2
	if lost > 0 {
		a += m.link.RTT
	}
	a = max(a, m.last)
	m.last = a
	return a
}

// emulator is the in-process link emulator: a bottleneck queue of
// unlimited depth at the link's rate (following its steps), a fixed
// one-way delay of RTT/2, and lossModel. It decides in virtual time when
// each message arrives.
type emulator struct {
	link     Link
	free     time.Duration // when the bottleneck has sent everything queued
	loss     lossModel
	arrivals []time.Duration
}

func newEmulator(l Link) *emulator {
	return &emulator{link: l, loss: newLossModel(l, 0)}
}

func (e *emulator) send(t time.Duration, n int) int {
	start := max(t, e.free)
	lost := e.loss.segments(n)
	e.free = e.link.wireEnd(start, n+lost*segment)
	e.arrivals = append(e.arrivals, e.loss.arrive(e.free, lost))
	return len(e.arrivals) - 1
}

func (e *emulator) drained(time.Duration) (time.Duration, bool) { return e.free, true }
func (e *emulator) wait(t time.Duration) time.Duration          { return t }
func (e *emulator) rate(t time.Duration) float64 {
	r, _ := e.link.rateAt(t)
	return r
}
func (e *emulator) close() error                 { return nil }
func (e *emulator) arrival(id int) time.Duration { return e.arrivals[id] }
func (e *emulator) lostSegments() int            { return e.loss.lost }
