package fbs

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// Recorder is a net.Conn to an RFB server that saves every byte read from
// it, with its arrival time, as FBS blocks. Reads come from one goroutine
// (the RFB client's reader); writes pass through untouched.
type Recorder struct {
	net.Conn
	start time.Time

	mu sync.Mutex
	// mu guards w and err.
	w   *Writer
	err error
}

// NewRecorder records the server side of conn into w, with timestamps
// counted from start.
func NewRecorder(conn net.Conn, w *Writer, start time.Time) *Recorder {
	return &Recorder{Conn: conn, w: w, start: start}
}

// Read reads from the server and records what it got.
func (r *Recorder) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	if n > 0 {
		ms := uint32(time.Since(r.start).Milliseconds())
		r.mu.Lock()
		if r.err == nil {
			r.err = r.w.WriteBlock(p[:n], ms)
		}
		r.mu.Unlock()
	}
	return n, err
}

// Err returns the first error writing the recording, if any.
func (r *Recorder) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Throttle makes a Relay behave like a slow network path, so that the
// server sees the link and adapts to it as it would in the field (fewer,
// merged updates; its own congestion control). Server bytes leave a
// bottleneck of Bitrate bits per second and arrive RTT/2 later; each
// 1448-byte segment is lost with probability Loss, which costs a resend
// on the bottleneck and one RTT of delay that holds back later bytes, as
// TCP's fast retransmit would. Client bytes arrive RTT/2 later.
type Throttle struct {
	Bitrate float64
	RTT     time.Duration
	Loss    float64
}

// Relay is a TCP relay on 127.0.0.1 that forwards one client connection to
// an RFB server and records the server's side of it. A second connection is
// refused. Its goroutines end when Close is called or both directions end.
// With a Throttle the recorded timestamps are when bytes reached the
// client, after the emulated path.
type Relay struct {
	ln     net.Listener
	target string
	w      *Writer
	start  time.Time
	th     *Throttle
	done   chan struct{}

	mu sync.Mutex
	// mu guards the following.
	conns []net.Conn
	rec   *Recorder
	err   error
}

// StartRelay listens on a free port of 127.0.0.1; the first connection it
// accepts is forwarded to target and recorded into w, with timestamps counted
// from start. A non-nil th shapes the path.
func StartRelay(target string, w *Writer, start time.Time, th *Throttle) (*Relay, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fbs: relay: %w", err)
	}
	r := &Relay{ln: ln, target: target, w: w, start: start, th: th, done: make(chan struct{})}
	go r.serve()
	return r, nil
}

// Addr returns the address clients should connect to.
func (r *Relay) Addr() string { return r.ln.Addr().String() }

// Done is closed when the recorded connection has ended in both directions.
func (r *Relay) Done() <-chan struct{} { return r.done }

func (r *Relay) serve() {
	defer close(r.done)
	client, err := r.ln.Accept()
	r.ln.Close() // one connection per recording
	if err != nil {
		r.setErr(fmt.Errorf("fbs: relay accept: %w", err))
		return
	}
	server, err := net.DialTimeout("tcp", r.target, 10*time.Second)
	if err != nil {
		client.Close()
		r.setErr(fmt.Errorf("fbs: relay to %s: %w", r.target, err))
		return
	}
	r.mu.Lock()
	r.conns = append(r.conns, client, server)
	r.mu.Unlock()
	if r.th != nil {
		r.throttled(client, server)
		return
	}
	rec := NewRecorder(server, r.w, r.start)
	r.mu.Lock()
	r.rec = rec
	r.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		io.Copy(server, client)
		if tc, ok := server.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
	}()
	go func() {
		defer wg.Done()
		io.Copy(client, rec)
		client.Close()
		server.Close()
	}()
	wg.Wait()
}

func (r *Relay) setErr(err error) {
	r.mu.Lock()
	if r.err == nil {
		r.err = err
	}
	r.mu.Unlock()
}

// Close stops the relay, ends the recorded connection and waits for its
// goroutines. It returns the first error of the relay or the recording.
func (r *Relay) Close() error {
	r.ln.Close()
	r.mu.Lock()
	for _, c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	err := r.err
	if r.rec != nil {
		err = errors.Join(err, r.rec.Err())
	}
	return err
}

// chunk is bytes in flight on a throttled path.
type chunk struct {
	data []byte
	at   time.Time // when they reach the far side
}

// throttled relays client and server through the emulated path of r.th.
func (r *Relay) throttled(client, server net.Conn) {
	th := *r.th
	// Small socket buffers keep the server's bytes queued where it can
	// see them (its own send buffer) instead of in the relay.
	if tc, ok := server.(*net.TCPConn); ok {
		tc.SetReadBuffer(16 << 10)
	}
	rng := rand.New(rand.NewPCG(6, 1))
	down := make(chan chunk, 1024)
	up := make(chan chunk, 1024)
	var wg sync.WaitGroup
	wg.Add(4)
	// Server to bottleneck: read only as fast as the bottleneck drains.
	go func() {
		defer wg.Done()
		defer close(down)
		buf := make([]byte, segmentSize*4)
		free := time.Now()
		var last time.Time
		for {
			n, err := server.Read(buf)
			if n > 0 {
				now := time.Now()
				segs := (n + segmentSize - 1) / segmentSize
				lost := 0
				for range segs {
					if rng.Float64() < th.Loss {
						lost++
					}
				}
				wire := time.Duration(float64((n+lost*segmentSize)*8) / th.Bitrate * float64(time.Second))
				free = later(now, free).Add(wire)
				at := free.Add(th.RTT / 2)
				if lost > 0 {
					at = at.Add(th.RTT)
				}
				at = later(at, last) // TCP delivers in order
				last = at
				down <- chunk{append([]byte(nil), buf[:n]...), at}
				time.Sleep(time.Until(free))
			}
			if err != nil {
				return
			}
		}
	}()
	// Bottleneck to client, recording what arrives.
	go func() {
		defer wg.Done()
		defer client.Close()
		defer server.Close()
		for c := range down {
			time.Sleep(time.Until(c.at))
			ms := uint32(c.at.Sub(r.start).Milliseconds())
			r.mu.Lock()
			if r.err == nil {
				if err := r.w.WriteBlock(c.data, ms); err != nil {
					r.err = err
				}
			}
			r.mu.Unlock()
			if _, err := client.Write(c.data); err != nil {
				break
			}
		}
		server.Close() // ends the reader, which closes down
		for range down {
		}
	}()
	// Client to server, RTT/2 later.
	go func() {
		defer wg.Done()
		defer close(up)
		buf := make([]byte, 4096)
		for {
			n, err := client.Read(buf)
			if n > 0 {
				up <- chunk{append([]byte(nil), buf[:n]...), time.Now().Add(th.RTT / 2)}
			}
			if err != nil {
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for c := range up {
			time.Sleep(time.Until(c.at))
			if _, err := server.Write(c.data); err != nil {
				client.Close() // ends the reader, which closes up
				break
			}
		}
		for range up {
		}
		if tc, ok := server.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
	}()
	wg.Wait()
}

// segmentSize is the TCP payload size losses are counted in.
const segmentSize = 1448

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
