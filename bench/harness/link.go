package harness

import (
	"math/rand/v2"
	"time"
)

// Link is a network path between the server and the browser, as the
// in-process emulator models it.
type Link struct {
	// Name identifies the profile in reports.
	Name string
	// Bitrate is the bottleneck rate in bits per second.
	Bitrate float64
	// RTT is the round-trip time; data takes RTT/2 to arrive after it has
	// been put on the wire.
	RTT time.Duration
	// Loss is the probability that a TCP segment is lost.
	Loss float64
}

// Profiles are the link profiles of issue 6. RTTs are round trips.
var Profiles = []Link{
	{Name: "lan", Bitrate: 1e9, RTT: 200 * time.Microsecond},
	{Name: "10mbit-40ms", Bitrate: 10e6, RTT: 40 * time.Millisecond},
	{Name: "1mbit-150ms", Bitrate: 1e6, RTT: 150 * time.Millisecond},
	{Name: "256k-300ms-2%", Bitrate: 256e3, RTT: 300 * time.Millisecond, Loss: 0.02},
}

// segment is the TCP payload size the emulator counts losses in.
const segment = 1448

// emulator is the in-process link emulator: a token bucket of one segment
// at Bitrate (the bottleneck queue), a fixed one-way delay of RTT/2, and
// loss modelled as TCP would repair it: every lost segment is sent again
// (it occupies the bottleneck a second time) and a message with a loss
// arrives one RTT later than it would have (fast retransmit), holding back
// everything after it. The random losses come from a fixed seed, so a run
// is reproducible. It decides when each message arrives; the sender asks it
// whether the previous message has left the queue.
type emulator struct {
	link Link
	free time.Duration // when the bottleneck has sent everything queued
	last time.Duration // arrival of the latest message (TCP keeps order)
	rng  *rand.Rand
	lost int // segments lost so far
}

func newEmulator(l Link) *emulator {
	return &emulator{link: l, rng: rand.New(rand.NewPCG(6, uint64(len(l.Name))))}
}

// send queues n bytes at time t and returns when the last of them arrives.
func (e *emulator) send(t time.Duration, n int) time.Duration {
	start := max(t, e.free)
	segs := (n + segment - 1) / segment
	lost := 0
	if e.link.Loss > 0 {
		for range segs {
			if e.rng.Float64() < e.link.Loss {
				lost++
			}
		}
	}
	e.lost += lost
	wire := time.Duration(float64((n+lost*segment)*8) / e.link.Bitrate * float64(time.Second))
	e.free = start + wire
	arrive := e.free + e.link.RTT/2
	if lost > 0 {
		arrive += e.link.RTT
	}
	arrive = max(arrive, e.last)
	e.last = arrive
	return arrive
}

// drained returns when everything queued so far has left the sender.
func (e *emulator) drained() time.Duration { return e.free }
