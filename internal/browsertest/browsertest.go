// Package browsertest drives Debian's headless Chromium through the DevTools
// protocol so that tests can open kvmgate's browser client, type on its
// keyboard, click its canvas and read back what it shows.
//
// It is a small DevTools client of its own over github.com/gorilla/websocket:
// Launch starts /usr/bin/chromium with a private profile directory and
// --remote-debugging-port=0, reads the chosen port from DevToolsActivePort,
// and connects to the browser endpoint. NewPage creates a page target and
// attaches to it in flatten mode, so one WebSocket carries every page.
//
// Every wait has a timeout. Each Page collects console errors, uncaught
// exceptions and error log entries (Errors) so tests can assert that the
// page ran cleanly. A missing chromium fails the test, naming the Debian
// package; it never skips. t.Cleanup kills the browser's whole process group.
package browsertest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ChromiumPath is where Debian's chromium package installs the browser.
const ChromiumPath = "/usr/bin/chromium"

// DefaultTimeout bounds every DevTools command and page load.
const DefaultTimeout = 30 * time.Second

// Browser is a running headless Chromium.
type Browser struct {
	cmd  *exec.Cmd
	dir  string
	conn *conn
	out  *tailBuffer

	waitErr error
	exited  chan struct{}
}

// Launch starts headless Chromium for the test and returns it. The browser
// is killed (with its whole process group) when the test ends. If chromium is
// not installed the test fails, naming the Debian package to install.
func Launch(t testing.TB) *Browser {
	t.Helper()
	path := ChromiumPath
	if _, err := os.Stat(path); err != nil {
		p, lerr := exec.LookPath("chromium")
		if lerr != nil {
			t.Fatalf("browsertest: %s not found; install the Debian package chromium (scripts/install-deps.sh does): %v", ChromiumPath, err)
		}
		path = p
	}
	dir, err := os.MkdirTemp("", "kvmgate-chromium-")
	if err != nil {
		t.Fatalf("browsertest: profile dir: %v", err)
	}
	b := &Browser{dir: dir, out: &tailBuffer{}, exited: make(chan struct{})}
	b.cmd = exec.Command(path,
		"--headless",
		"--no-sandbox",
		"--disable-gpu",
		"--disable-quic",
		"--no-first-run",
		"--no-default-browser-check",
		"--disable-background-networking",
		"--disable-component-update",
		"--disable-sync",
		"--disable-extensions",
		"--disable-dev-shm-usage",
		"--mute-audio",
		"--remote-debugging-port=0",
		"--user-data-dir="+dir,
		"--window-size=1280,800",
		"about:blank",
	)
	b.cmd.Stdout = b.out
	b.cmd.Stderr = b.out
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := b.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		t.Fatalf("browsertest: start %s: %v", path, err)
	}
	go func() {
		b.waitErr = b.cmd.Wait()
		close(b.exited)
	}()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("browsertest: chromium output (tail):\n%s", b.out.String())
		}
		b.close()
	})

	ws, err := b.devToolsURL(DefaultTimeout)
	if err != nil {
		t.Fatalf("browsertest: %v\nchromium output:\n%s", err, b.out.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	c, err := dialCDP(ctx, ws)
	if err != nil {
		t.Fatalf("%v", err)
	}
	b.conn = c
	return b
}

// devToolsURL waits for Chromium to write DevToolsActivePort and returns the
// browser endpoint's WebSocket URL.
func (b *Browser) devToolsURL(timeout time.Duration) (string, error) {
	file := filepath.Join(b.dir, "DevToolsActivePort")
	deadline := time.Now().Add(timeout)
	for {
		data, err := os.ReadFile(file)
		if err == nil {
			lines := strings.Split(strings.TrimSpace(string(data)), "\n")
			if len(lines) >= 2 && lines[0] != "" {
				return "ws://127.0.0.1:" + strings.TrimSpace(lines[0]) + strings.TrimSpace(lines[1]), nil
			}
		}
		select {
		case <-b.exited:
			return "", fmt.Errorf("chromium exited before opening DevTools: %v", b.waitErr)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no %s after %v", file, timeout)
		}
	}
}

// close ends the DevTools connection, kills the process group and removes
// the profile directory.
func (b *Browser) close() {
	if b.conn != nil {
		_ = b.conn.close()
	}
	if b.cmd.Process != nil {
		_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
	}
	select {
	case <-b.exited:
	case <-time.After(10 * time.Second):
	}
	// Chromium's helpers may still be writing for a moment after the kill.
	for i := 0; i < 20; i++ {
		if os.RemoveAll(b.dir) == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Output returns the tail of Chromium's stdout and stderr.
func (b *Browser) Output() string { return b.out.String() }

func deadlineSoon() time.Time { return time.Now().Add(time.Second) }

// tailBuffer keeps the last part of a process's output.
type tailBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

const tailKeep = 32 << 10

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if b.buf.Len() > 2*tailKeep {
		keep := b.buf.Bytes()[b.buf.Len()-tailKeep:]
		// Start at a line boundary so the log stays readable.
		if i := bytes.IndexByte(keep, '\n'); i >= 0 {
			keep = keep[i+1:]
		}
		rest := append([]byte(nil), keep...)
		b.buf.Reset()
		b.buf.Write(rest)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return "  " + strings.ReplaceAll(strings.TrimRight(b.buf.String(), "\n"), "\n", "\n  ") + "\n"
}
