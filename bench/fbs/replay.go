package fbs

import (
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// PlayerOptions configure a Player.
type PlayerOptions struct {
	// Paced delivers each block no earlier than its timestamp after the
	// first Read; otherwise everything is available at once.
	Paced bool
	// MaxRead bounds the bytes one Read returns; 0 means no bound. A
	// harness that must see every update sets it to 1, so the client's
	// buffered reader never holds bytes of the next update while it
	// publishes the current one.
	MaxRead int
	// BeforeRead, if set, is called at the start of every Read, from the
	// reading goroutine, with the number of bytes delivered so far and the
	// timestamp of the block the last of them came from. It may block: the
	// reader waits. A harness uses it to stop the client after each update.
	BeforeRead func(offset int64, ms uint32)
}

// Player is a net.Conn that plays a recording's server bytes to a client.
// What the client writes is discarded. Reads come from one goroutine.
type Player struct {
	blocks []Block
	opts   PlayerOptions

	bi  int // current block
	bo  int // offset inside it
	off int64
	ms  uint32 // timestamp of the last byte delivered
	t0  time.Time

	mu sync.Mutex
	// mu guards the following.
	written  int64
	deadline time.Time
	wake     chan struct{} // closed and replaced when deadline changes or on Close
	closed   bool
}

// NewPlayer returns a connection that plays blocks.
func NewPlayer(blocks []Block, opts PlayerOptions) *Player {
	return &Player{blocks: blocks, opts: opts, wake: make(chan struct{})}
}

// Read delivers the next recorded bytes; io.EOF after the last.
func (p *Player) Read(b []byte) (int, error) {
	if p.opts.BeforeRead != nil {
		p.opts.BeforeRead(p.off, p.ms)
	}
	if err := p.check(); err != nil {
		return 0, err
	}
	if p.bi >= len(p.blocks) {
		return 0, io.EOF
	}
	if len(b) == 0 {
		return 0, nil
	}
	blk := &p.blocks[p.bi]
	if p.opts.Paced && p.bo == 0 {
		if p.t0.IsZero() {
			p.t0 = time.Now().Add(-time.Duration(blk.Ms) * time.Millisecond)
		}
		if err := p.sleepUntil(p.t0.Add(time.Duration(blk.Ms) * time.Millisecond)); err != nil {
			return 0, err
		}
	}
	if p.opts.MaxRead > 0 && len(b) > p.opts.MaxRead {
		b = b[:p.opts.MaxRead]
	}
	n := copy(b, blk.Data[p.bo:])
	p.bo += n
	p.off += int64(n)
	p.ms = blk.Ms
	if p.bo == len(blk.Data) {
		p.bi++
		p.bo = 0
	}
	return n, nil
}

// check returns the error a Read must return now, if any.
func (p *Player) check() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return net.ErrClosed
	}
	if !p.deadline.IsZero() && !time.Now().Before(p.deadline) {
		return os.ErrDeadlineExceeded
	}
	return nil
}

func (p *Player) sleepUntil(at time.Time) error {
	for {
		d := time.Until(at)
		if d <= 0 {
			return nil
		}
		p.mu.Lock()
		wake := p.wake
		p.mu.Unlock()
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-wake:
			t.Stop()
			if err := p.check(); err != nil {
				return err
			}
		}
	}
}

// Offset returns the number of bytes delivered so far.
func (p *Player) Offset() int64 { return p.off }

// NextMs returns the timestamp of the next byte to be delivered, or of the
// last byte when everything has been delivered.
func (p *Player) NextMs() uint32 {
	if p.bi < len(p.blocks) {
		return p.blocks[p.bi].Ms
	}
	return p.ms
}

// Done reports whether every recorded byte has been delivered.
func (p *Player) Done() bool { return p.bi >= len(p.blocks) }

// Written returns the number of bytes the client wrote.
func (p *Player) Written() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.written
}

// Write discards what the client sends.
func (p *Player) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, net.ErrClosed
	}
	p.written += int64(len(b))
	return len(b), nil
}

// Close makes every later Read and Write fail.
func (p *Player) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.closed = true
		close(p.wake)
	}
	return nil
}

// SetDeadline sets the read deadline; writes never block.
func (p *Player) SetDeadline(t time.Time) error { return p.SetReadDeadline(t) }

// SetReadDeadline bounds Reads that wait for the recorded pace.
func (p *Player) SetReadDeadline(t time.Time) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.deadline = t
	if !p.closed {
		close(p.wake)
		p.wake = make(chan struct{})
	}
	return nil
}

// SetWriteDeadline does nothing: writes never block.
func (p *Player) SetWriteDeadline(time.Time) error { return nil }

type playerAddr struct{}

func (playerAddr) Network() string { return "fbs" }
func (playerAddr) String() string  { return "fbs-replay" }

// LocalAddr returns a placeholder address.
func (p *Player) LocalAddr() net.Addr { return playerAddr{} }

// RemoteAddr returns a placeholder address.
func (p *Player) RemoteAddr() net.Addr { return playerAddr{} }
