package console

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// echoServer accepts connections and sends back what it reads, with a
// prefix so that the two directions carry different byte counts.
func echoServer(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if _, err := c.Write([]byte("hello:")); err != nil {
					return
				}
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln
}

func TestRelayCounts(t *testing.T) {
	ln := echoServer(t)
	r, err := NewRelay(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	payload := bytes.Repeat([]byte("0123456789"), 10000) // 100 kB
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", r.Addr())
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		go func() { _, _ = c.Write(payload) }()
		got := make([]byte, len("hello:")+len(payload))
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		if want := append([]byte("hello:"), payload...); !bytes.Equal(got, want) {
			t.Fatalf("connection %d: relayed bytes differ", i)
		}
		c.Close()
	}
	if n := r.Conns(); n != 2 {
		t.Errorf("Conns = %d, want 2", n)
	}
	if want := int64(2 * (6 + len(payload))); r.Down() != want {
		t.Errorf("Down = %d, want %d", r.Down(), want)
	}
	if want := int64(2 * len(payload)); r.Up() != want {
		t.Errorf("Up = %d, want %d", r.Up(), want)
	}
}

// TestRelayClose checks that Close ends open connections and returns (its
// goroutines stopped).
func TestRelayClose(t *testing.T) {
	ln := echoServer(t)
	r, err := NewRelay(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 6)
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- r.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return with a connection open")
	}
	if _, err := c.Read(buf); err == nil {
		t.Error("the relayed connection is still open after Close")
	}
	if _, err := net.DialTimeout("tcp", r.Addr(), time.Second); err == nil {
		t.Error("the relay still accepts after Close")
	}
}

func TestRelayUnreachableTarget(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	r, err := NewRelay(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c, err := net.Dial("tcp", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("read from a relay whose target is down succeeded")
	}
}

// TestShapedRelayRate sends 256 KiB through a relay shaped to 256 KiB/s:
// it cannot arrive faster than the token bucket allows (its depth aside),
// nor take far longer.
func TestShapedRelayRate(t *testing.T) {
	const rate, size = 256 << 10, 256 << 10
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = c.Write(make([]byte, size))
	}()
	r, err := NewShapedRelay(ln.Addr().String(), rate)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c, err := net.Dial("tcp", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	start := time.Now()
	if _, err := io.ReadFull(c, make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	least := time.Duration(float64(size-shapeBurst) / rate * float64(time.Second))
	if took < least*95/100 || took > 10*least {
		t.Errorf("%d bytes through a %d B/s relay took %v, want about %v", size, rate, took, least)
	}
	// The relay counts a write once it returned, maybe after the reader
	// had the bytes.
	for deadline := time.Now().Add(5 * time.Second); r.Down() != size && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if r.Down() != size {
		t.Errorf("Down = %d, want %d", r.Down(), size)
	}
	t.Logf("%d bytes in %v: %.0f B/s", size, took, size/took.Seconds())
}
