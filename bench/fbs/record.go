package fbs

import (
	"errors"
	"fmt"
	"io"
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

// Relay is a TCP relay on 127.0.0.1 that forwards one client connection to
// an RFB server and records the server's side of it. A second connection is
// refused. Its goroutines end when Close is called or both directions end.
type Relay struct {
	ln     net.Listener
	target string
	w      *Writer
	start  time.Time
	done   chan struct{}

	mu sync.Mutex
	// mu guards the following.
	conns []net.Conn
	rec   *Recorder
	err   error
}

// StartRelay listens on a free port of 127.0.0.1; the first connection it
// accepts is forwarded to target and recorded into w, with timestamps counted
// from start.
func StartRelay(target string, w *Writer, start time.Time) (*Relay, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fbs: relay: %w", err)
	}
	r := &Relay{ln: ln, target: target, w: w, start: start, done: make(chan struct{})}
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
	rec := NewRecorder(server, r.w, r.start)
	r.mu.Lock()
	r.conns = append(r.conns, client, server)
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
