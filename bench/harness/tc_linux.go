package harness

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// tcPrefix starts the name of every network namespace the tc emulator
// creates: tcPrefix-PID-N-s (the sender's) and tcPrefix-PID-N-r.
const tcPrefix = "kvmgbench"

// tcSeq numbers the namespace pairs of this process.
var tcSeq atomic.Int64

// tcLink is a veth pair between two fresh network namespaces, the sender's
// end shaped by a tc tbf qdisc, with one TCP connection across it.
type tcLink struct {
	link   Link
	ns     [2]string          // sender, receiver
	send   net.Conn           // in the sender's namespace
	recv   net.Conn           // in the receiver's namespace
	cancel context.CancelFunc // stops the rate changer; nil until started
	done   chan struct{}      // closed when the rate changer has stopped
}

// tbfArgs returns the tc arguments shaping the sender's end to bps: the
// bucket holds 10 ms of the rate but at least two full-size packets, and
// the queue holds up to 500 ms of data (beyond that tbf drops and TCP
// repairs the loss, as a real bottleneck does).
func tbfArgs(verb string, ns string, bps float64) []string {
	burst := max(int(bps/8/100), 2*1514)
	return []string{"-n", ns, "qdisc", verb, "dev", "veth0", "root", "tbf",
		"rate", strconv.FormatInt(int64(bps), 10) + "bit", "burst", strconv.Itoa(burst), "latency", "500ms"}
}

func command(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// cleanStale deletes namespaces left behind by harness processes that no
// longer exist (killed before they could clean up).
func cleanStale() {
	ents, err := os.ReadDir("/run/netns")
	if err != nil {
		return
	}
	for _, e := range ents {
		parts := strings.Split(e.Name(), "-")
		if len(parts) != 4 || parts[0] != tcPrefix {
			continue
		}
		pid, err := strconv.Atoi(parts[1])
		if err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat("/proc/" + parts[1]); err == nil {
			continue
		}
		_ = command("ip", "netns", "del", e.Name())
	}
}

// newTCLink creates the namespaces, the veth pair and the qdisc, and opens
// the connection. On any failure everything it created is removed.
func newTCLink(l Link) (_ *tcLink, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("harness: the tc emulator needs root (network namespaces)")
	}
	cleanStale()
	n := tcSeq.Add(1)
	base := fmt.Sprintf("%s-%d-%d", tcPrefix, os.Getpid(), n)
	t := &tcLink{link: l, ns: [2]string{base + "-s", base + "-r"}, done: make(chan struct{})}
	var created []string
	defer func() {
		if err != nil {
			if t.send != nil {
				t.send.Close()
			}
			if t.recv != nil {
				t.recv.Close()
			}
			for _, ns := range created {
				_ = command("ip", "netns", "del", ns)
			}
		}
	}()
	for _, ns := range t.ns {
		if err := command("ip", "netns", "add", ns); err != nil {
			return nil, err
		}
		created = append(created, ns)
	}
	steps := [][]string{
		{"ip", "link", "add", "name", "veth0", "netns", t.ns[0], "type", "veth", "peer", "name", "veth1", "netns", t.ns[1]},
		{"ip", "-n", t.ns[0], "addr", "add", "10.77.0.1/30", "dev", "veth0"},
		{"ip", "-n", t.ns[1], "addr", "add", "10.77.0.2/30", "dev", "veth1"},
		{"ip", "-n", t.ns[0], "link", "set", "veth0", "up"},
		{"ip", "-n", t.ns[1], "link", "set", "veth1", "up"},
		append([]string{"tc"}, tbfArgs("add", t.ns[0], l.Bitrate)...),
	}
	for _, s := range steps {
		if err := command(s[0], s[1:]...); err != nil {
			return nil, err
		}
	}
	var ln net.Listener
	if err := inNetns(t.ns[0], func() (err error) {
		ln, err = net.Listen("tcp", "10.77.0.1:0")
		return err
	}); err != nil {
		return nil, err
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	if err := inNetns(t.ns[1], func() (err error) {
		t.recv, err = net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
		return err
	}); err != nil {
		return nil, err
	}
	select {
	case c, ok := <-accepted:
		if !ok {
			return nil, errors.New("harness: tc link: accept failed")
		}
		t.send = c
	case <-time.After(5 * time.Second):
		return nil, errors.New("harness: tc link: accept timed out")
	}
	return t, nil
}

// inNetns runs fn on an OS thread that has joined the named network
// namespace: sockets fn opens belong to it. The thread is thrown away if it
// cannot return to its original namespace.
func inNetns(name string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("harness: %w", err)
			return
		}
		defer orig.Close()
		target, err := os.Open("/run/netns/" + name)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("harness: %w", err)
			return
		}
		defer target.Close()
		if err := setns(target.Fd()); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("harness: setns %s: %w", name, err)
			return
		}
		ferr := fn()
		if err := setns(orig.Fd()); err != nil {
			// Leave the thread locked: it ends with this goroutine.
			errc <- errors.Join(ferr, fmt.Errorf("harness: setns back: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

func setns(fd uintptr) error {
	if sysSetns < 0 {
		return errors.New("setns: unsupported architecture")
	}
	if _, _, e := syscall.RawSyscall(uintptr(sysSetns), fd, syscall.CLONE_NEWNET, 0); e != 0 {
		return e
	}
	return nil
}

// startRates follows a variable link's steps with tc qdisc change from
// start (harness time 0) on, until close.
func (t *tcLink) startRates(start time.Time) {
	ctx, cancel := context.WithCancel(context.Background())
	t.cancel = cancel
	go t.changeRate(ctx, start)
}

func (t *tcLink) changeRate(ctx context.Context, start time.Time) {
	defer close(t.done)
	if !t.link.Variable() {
		return
	}
	if bps, _ := t.link.rateAt(time.Since(start)); bps != t.link.Bitrate {
		_ = command("tc", tbfArgs("change", t.ns[0], bps)...)
	}
	for {
		_, left := t.link.rateAt(time.Since(start))
		select {
		case <-ctx.Done():
			return
		case <-time.After(left):
		}
		bps, _ := t.link.rateAt(time.Since(start) + time.Millisecond)
		_ = command("tc", tbfArgs("change", t.ns[0], bps)...)
	}
}

// close closes the connection and removes the namespaces (and with them
// the veth pair and its qdisc).
func (t *tcLink) close() error {
	if t.cancel != nil {
		t.cancel()
		<-t.done
	}
	t.send.Close()
	t.recv.Close()
	var errs []error
	for _, ns := range t.ns {
		if err := command("ip", "netns", "del", ns); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// tcEmulator is the real-time emulator over a tcLink: each message's bytes
// (plus, per lost segment, a segment's worth of padding: lossModel's
// retransmission) are written to the connection when the harness sends
// them; the receiver notes when each message's last byte came out of the
// veth, which is when it left the tbf bottleneck. RTT/2 and the loss delay
// are added to that. Harness time maps to the wall clock from the first
// call on.
type tcEmulator struct {
	tc   *tcLink
	loss lossModel
	base time.Time // wall clock of harness time 0
	// writes feeds the writer goroutine; wdone reports its end.
	writes chan []byte
	wdone  chan error
	rdone  chan error

	mu sync.Mutex
	// mu guards the following.
	ids     int           // messages sent
	lost    []int         // segments lost per message
	got     []time.Time   // wall clock arrival of each message received
	changed chan struct{} // closed and replaced when got grows
	closed  bool
	final   []time.Duration // arrivals, computed by close
}

func newTCEmulator(l Link) (linkEmulator, error) {
	t, err := newTCLink(l)
	if err != nil {
		return nil, err
	}
	e := &tcEmulator{tc: t, loss: newLossModel(l, 0), writes: make(chan []byte, 1024),
		wdone: make(chan error, 1), rdone: make(chan error, 1), changed: make(chan struct{})}
	go e.writer()
	go e.reader()
	return e, nil
}

// now returns the current harness time, starting the clock at t on the
// first call.
func (e *tcEmulator) now(t time.Duration) time.Duration {
	if e.base.IsZero() {
		e.base = time.Now().Add(-t)
		e.tc.startRates(e.base)
	}
	return time.Since(e.base)
}

func (e *tcEmulator) writer() {
	var err error
	for b := range e.writes {
		if err == nil {
			_, err = e.tc.send.Write(b)
		}
	}
	if err == nil {
		err = e.tc.send.(*net.TCPConn).CloseWrite()
	}
	e.wdone <- err
}

// msgHeader is the id and length in front of each message on the wire.
const msgHeader = 8

func (e *tcEmulator) reader() {
	r := e.tc.recv
	var hdr [msgHeader]byte
	buf := make([]byte, 64<<10)
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			e.rdone <- err
			return
		}
		id := int(binary.BigEndian.Uint32(hdr[:4]))
		left := int(binary.BigEndian.Uint32(hdr[4:]))
		for left > 0 {
			k, err := r.Read(buf[:min(left, len(buf))])
			left -= k
			if err != nil {
				e.rdone <- fmt.Errorf("harness: tc link: message %d: %w", id, err)
				return
			}
		}
		at := time.Now()
		e.mu.Lock()
		if id != len(e.got) {
			e.mu.Unlock()
			e.rdone <- fmt.Errorf("harness: tc link: message %d arrived as number %d", id, len(e.got))
			return
		}
		e.got = append(e.got, at)
		close(e.changed)
		e.changed = make(chan struct{})
		e.mu.Unlock()
	}
}

func (e *tcEmulator) send(t time.Duration, n int) int {
	e.now(t)
	lost := e.loss.segments(n)
	size := max(n+lost*segment, msgHeader)
	b := make([]byte, size)
	e.mu.Lock()
	id := e.ids
	e.ids++
	e.lost = append(e.lost, lost)
	e.mu.Unlock()
	binary.BigEndian.PutUint32(b[:4], uint32(id))
	binary.BigEndian.PutUint32(b[4:], uint32(size-msgHeader))
	e.writes <- b
	return id
}

func (e *tcEmulator) drained(by time.Duration) (time.Duration, bool) {
	if e.base.IsZero() {
		return 0, true // nothing sent yet; the clock starts with wait
	}
	for {
		e.mu.Lock()
		n, ch := len(e.got), e.changed
		var last time.Duration
		if n > 0 {
			last = e.got[n-1].Sub(e.base)
		}
		done := n == e.ids
		e.mu.Unlock()
		if done {
			return last, true
		}
		if by == maxTime {
			<-ch
			continue
		}
		wait := by - time.Since(e.base)
		if wait <= 0 {
			return 0, false
		}
		timer := time.NewTimer(wait)
		select {
		case <-ch:
			timer.Stop()
		case <-timer.C:
			return 0, false
		}
	}
}

func (e *tcEmulator) wait(t time.Duration) time.Duration {
	now := e.now(t)
	if t > now {
		time.Sleep(t - now)
		now = time.Since(e.base)
	}
	return now
}

func (e *tcEmulator) rate(t time.Duration) float64 {
	r, _ := e.tc.link.rateAt(t)
	return r
}

// abort tears the connection down without waiting for the bytes still
// queued (a run that failed); close then only cleans up.
func (e *tcEmulator) abort() {
	e.tc.send.Close()
	e.tc.recv.Close()
}

func (e *tcEmulator) close() error {
	if e.closed {
		return nil
	}
	e.closed = true
	close(e.writes)
	werr := <-e.wdone
	var rerr error
	select {
	case rerr = <-e.rdone:
	case <-time.After(2 * time.Minute):
		rerr = errors.New("harness: tc link: receiver did not finish")
	}
	err := errors.Join(werr, rerr, e.tc.close())
	// The in-process model's delays, in order (TCP keeps order).
	e.mu.Lock()
	defer e.mu.Unlock()
	m := lossModel{link: e.tc.link}
	for i, at := range e.got {
		if i < len(e.lost) {
			e.final = append(e.final, m.arrive(at.Sub(e.base), e.lost[i]))
		}
	}
	if err == nil && len(e.final) != e.ids {
		err = fmt.Errorf("harness: tc link: %d of %d messages arrived", len(e.final), e.ids)
	}
	return err
}

// arrival returns the message's veth arrival plus the in-process model's
// one-way delay and loss delay; -1 before close or for a message that never
// arrived.
func (e *tcEmulator) arrival(id int) time.Duration {
	if id < len(e.final) {
		return e.final[id]
	}
	return -1
}

func (e *tcEmulator) lostSegments() int { return e.loss.lost }
