// Package console measures kvmgate's browser console end to end, on
// loopback: bytes on the wire and frames per second for scripted console
// workloads, and the key-to-screen latency a browser sees. The figures live
// in docs/benchmarks.md ("Browser console (tiles)"); the benchmarks that
// produce them are in this package's tests:
//
//	go test -run XXX -bench . -benchtime 1x -timeout 30m ./bench/console/
//
// Each benchmark runs a real backend (QEMU with a Linux guest on its VGA
// text console, or the built-in demo console), the real server (server.New)
// and the real client in headless Chromium, with a counting TCP relay
// (Relay) on each side of kvmgate: one between the VNC server and kvmgate,
// one between kvmgate and the browser.
package console

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Relay is a TCP relay on 127.0.0.1 that forwards every connection it
// accepts to one target address and counts the bytes in each direction.
// Its accept goroutine and two copy goroutines per connection end when
// Close is called.
type Relay struct {
	ln     net.Listener
	target string
	rate   float64      // bytes/s towards the accepted side; 0: unlimited
	down   atomic.Int64 // bytes from the target to the accepted side
	up     atomic.Int64 // bytes from the accepted side to the target
	conns  atomic.Int64 // connections accepted
	wg     sync.WaitGroup

	mu sync.Mutex
	// mu guards the following.
	open   map[net.Conn]struct{}
	closed bool
}

// NewRelay listens on a free port of 127.0.0.1 and relays every connection
// to target (host:port).
func NewRelay(target string) (*Relay, error) {
	return NewShapedRelay(target, 0)
}

// NewShapedRelay is NewRelay with the target-to-client direction limited to
// rate bytes per second by a token bucket (a slow downlink); 0 means no
// limit.
func NewShapedRelay(target string, rate float64) (*Relay, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("console: relay listen: %w", err)
	}
	r := &Relay{ln: ln, target: target, rate: rate, open: make(map[net.Conn]struct{})}
	r.wg.Add(1)
	go r.accept()
	return r, nil
}

// Addr returns the relay's host:port.
func (r *Relay) Addr() string { return r.ln.Addr().String() }

// Down returns the bytes relayed from the target to the connecting side so
// far (for a VNC relay: what the VNC server sent to kvmgate).
func (r *Relay) Down() int64 { return r.down.Load() }

// Up returns the bytes relayed from the connecting side to the target.
func (r *Relay) Up() int64 { return r.up.Load() }

// Conns returns how many connections the relay has accepted.
func (r *Relay) Conns() int64 { return r.conns.Load() }

// Close stops accepting, closes every relayed connection and waits for the
// relay's goroutines.
func (r *Relay) Close() error {
	r.mu.Lock()
	r.closed = true
	for c := range r.open {
		c.Close()
	}
	r.mu.Unlock()
	err := r.ln.Close()
	r.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// track registers c so that Close closes it; it reports false (and closes
// c) once the relay is closed.
func (r *Relay) track(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		c.Close()
		return false
	}
	r.open[c] = struct{}{}
	return true
}

func (r *Relay) untrack(c net.Conn) {
	r.mu.Lock()
	delete(r.open, c)
	r.mu.Unlock()
	c.Close()
}

func (r *Relay) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.conns.Add(1)
		r.wg.Add(1)
		go r.relay(c)
	}
}

// relay forwards one accepted connection until either side closes.
func (r *Relay) relay(c net.Conn) {
	defer r.wg.Done()
	if !r.track(c) {
		return
	}
	defer r.untrack(c)
	t, err := net.Dial("tcp", r.target)
	if err != nil {
		return
	}
	if !r.track(t) {
		return
	}
	defer r.untrack(t)
	done := make(chan struct{}, 2)
	pipe := func(dst io.Writer, src net.Conn, n *atomic.Int64) {
		_, _ = io.Copy(countingWriter{dst, n}, src)
		// One direction ended: end both, as a plain TCP proxy would once
		// either peer goes away.
		c.Close()
		t.Close()
		done <- struct{}{}
	}
	var toClient io.Writer = c
	if r.rate > 0 {
		toClient = &shapedWriter{w: c, rate: r.rate, tokens: shapeBurst, last: time.Now()}
	}
	go pipe(toClient, t, &r.down)
	go pipe(t, c, &r.up)
	<-done
	<-done
}

// countingWriter adds what it writes to n.
type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (cw countingWriter) Write(p []byte) (int, error) {
	k, err := cw.w.Write(p)
	cw.n.Add(int64(k))
	return k, err
}

// shapeBurst is a shaped relay's token-bucket depth: a little above one TCP
// segment burst, so that the link behaves like a slow line rather than a
// fast one that pauses.
const shapeBurst = 8 << 10

// shapedWriter writes to w at most rate bytes per second on average: each
// write waits until the token bucket holds its bytes. io.Copy hands it at
// most 32 KiB at a time, so it splits writes into bucket-sized pieces.
type shapedWriter struct {
	w      io.Writer
	rate   float64 // bytes/s
	tokens float64
	last   time.Time
}

func (s *shapedWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n := min(len(p), shapeBurst/2)
		s.refill()
		if need := float64(n) - s.tokens; need > 0 {
			time.Sleep(time.Duration(need / s.rate * float64(time.Second)))
			s.refill()
		}
		s.tokens -= float64(n)
		k, err := s.w.Write(p[:n])
		written += k
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

func (s *shapedWriter) refill() {
	now := time.Now()
	s.tokens = min(shapeBurst, s.tokens+now.Sub(s.last).Seconds()*s.rate)
	s.last = now
}
