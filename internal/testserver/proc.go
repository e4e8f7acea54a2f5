package testserver

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// debianPackages names the Debian package that provides each server binary,
// for the message a test fails with when the binary is missing.
var debianPackages = map[string]string{
	"Xvnc":               "tigervnc-standalone-server",
	"vncpasswd":          "tigervnc-tools",
	"x11vnc":             "x11vnc",
	"Xvfb":               "xvfb",
	"xwd":                "x11-apps",
	"xclock":             "x11-apps",
	"xeyes":              "x11-apps",
	"ico":                "x11-apps",
	"xwininfo":           "x11-utils",
	"xdpyinfo":           "x11-utils",
	"xsetroot":           "x11-xserver-utils",
	"xrandr":             "x11-xserver-utils",
	"xterm":              "xterm",
	"qemu-system-x86_64": "qemu-system-x86",
	"busybox":            "busybox-static",
	"socat":              "socat",
}

// need returns the path of the program name, or fails the test naming the
// Debian package that provides it.
func need(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	pkg := debianPackages[name]
	if pkg == "" {
		t.Fatalf("testserver: %s not found in PATH: %v", name, err)
	}
	t.Fatalf("testserver: %s not found in PATH; install the Debian package %s (scripts/install-deps.sh does)", name, pkg)
	return ""
}

// logBuffer collects a process's output for the test log. It keeps the
// first and the last part of long output.
type logBuffer struct {
	mu    sync.Mutex // guards buf and total
	buf   bytes.Buffer
	total int64 // bytes ever written
}

const logKeep = 64 << 10

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.total += int64(len(p))
	b.buf.Write(p)
	if b.buf.Len() > 2*logKeep {
		tail := append([]byte("\n[... output cut ...]\n"), b.buf.Bytes()[b.buf.Len()-logKeep:]...)
		b.buf.Truncate(logKeep)
		b.buf.Write(tail)
	}
	return len(p), nil
}

// mark returns a position in the output for since.
func (b *logBuffer) mark() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.total
}

// since returns the output written after mark (as much of it as is kept).
func (b *logBuffer) since(mark int64) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := b.total - mark
	if n > int64(b.buf.Len()) {
		n = int64(b.buf.Len())
	}
	return string(b.buf.Bytes()[b.buf.Len()-int(n):])
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Proc is a process started for a test. Its process group is killed when the
// test ends.
type Proc struct {
	// Name is a short label used in log lines.
	Name string
	cmd  *exec.Cmd
	out  logBuffer
	done chan struct{} // closed when the process has exited
	err  error         // the Wait result; valid after done is closed
}

// startProc starts cmd in its own process group with its output collected,
// and registers a cleanup that kills the group and, if the test failed, logs
// the output.
func startProc(t testing.TB, name string, cmd *exec.Cmd) (*Proc, error) {
	t.Helper()
	p := &Proc{Name: name, cmd: cmd, done: make(chan struct{})}
	if cmd.Stdout == nil {
		cmd.Stdout = &p.out
	}
	if cmd.Stderr == nil {
		cmd.Stderr = &p.out
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("testserver: start %s: %w", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			if out := strings.TrimSpace(p.out.String()); out != "" {
				t.Logf("testserver: output of %s (pid %d):\n%s", name, cmd.Process.Pid, out)
			}
		}
	})
	return p, nil
}

// Pid returns the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Output returns what the process wrote to stdout and stderr so far (cut in
// the middle when long).
func (p *Proc) Output() string { return p.out.String() }

// Done returns a channel closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited, and its Wait error.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Kill ends the process group: SIGTERM, then SIGKILL after two seconds. It
// waits until the process has exited and is safe to call more than once.
func (p *Proc) Kill() {
	pgid := p.cmd.Process.Pid
	select {
	case <-p.done:
		// The leader is gone; children in its group may remain.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		return
	default:
	}
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(2 * time.Second):
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-p.done
}

// exitError describes an exited process for an error message.
func (p *Proc) exitError() error {
	if exited, err := p.Exited(); exited {
		if err == nil {
			err = errors.New("exit status 0")
		}
		return fmt.Errorf("%s exited: %w; output:\n%s", p.Name, err, tail(p.Output(), 4096))
	}
	return nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "[...]" + s[len(s)-n:]
}

// waitTCP waits until addr accepts a connection, the process exits, or the
// timeout passes.
func waitTCP(p *Proc, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if perr := p.exitError(); perr != nil {
			return perr
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("testserver: %s: %s not accepting connections after %v: %w", p.Name, addr, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago. The
// kernel hands out ephemeral ports in rotation, so a port just released is
// unlikely to be reused at once; callers retry on a bind failure anyway.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("testserver: find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tempDir makes a short-named temporary directory (unix socket paths must
// stay under 108 bytes, which t.TempDir's long names can exceed) removed at
// the end of the test.
func tempDir(t testing.TB, prefix string) string {
	t.Helper()
	d, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatalf("testserver: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}
