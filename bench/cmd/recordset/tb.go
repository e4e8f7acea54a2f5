package main

import (
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
)

// tb lets a program use internal/testserver, whose functions take a
// testing.TB: cleanups run when the program ends, logs go to slog, and
// Fatal unwinds to run's recover. The embedded (nil) testing.TB only
// supplies the interface's unexported method; every method testserver
// calls is implemented here.
type tb struct {
	testing.TB
	name string

	mu sync.Mutex
	// mu guards the following.
	cleanups []func()
	failed   bool
	dirs     []string
}

// fatal is the panic value Fatal and Fatalf unwind with.
type fatal struct{ msg string }

func (t *tb) Helper()                           {}
func (t *tb) Name() string                      { return t.name }
func (t *tb) Log(args ...any)                   { slog.Info(fmt.Sprint(args...)) }
func (t *tb) Logf(format string, args ...any)   { slog.Info(fmt.Sprintf(format, args...)) }
func (t *tb) Error(args ...any)                 { t.fail(fmt.Sprint(args...)) }
func (t *tb) Errorf(format string, args ...any) { t.fail(fmt.Sprintf(format, args...)) }
func (t *tb) Fatal(args ...any)                 { t.fail(fmt.Sprint(args...)); panic(fatal{fmt.Sprint(args...)}) }
func (t *tb) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	t.fail(msg)
	panic(fatal{msg})
}
func (t *tb) FailNow() { t.fail("FailNow"); panic(fatal{"FailNow"}) }
func (t *tb) Fail()    { t.fail("Fail") }

func (t *tb) fail(msg string) {
	slog.Error(msg)
	t.mu.Lock()
	t.failed = true
	t.mu.Unlock()
}

func (t *tb) Failed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failed
}

func (t *tb) Cleanup(f func()) {
	t.mu.Lock()
	t.cleanups = append(t.cleanups, f)
	t.mu.Unlock()
}

func (t *tb) TempDir() string {
	d, err := os.MkdirTemp("", "kvmgate-recordset-")
	if err != nil {
		t.Fatalf("tempdir: %v", err)
	}
	t.mu.Lock()
	t.dirs = append(t.dirs, d)
	t.mu.Unlock()
	return d
}

// finish runs the cleanups in reverse order and removes the temporary
// directories.
func (t *tb) finish() {
	t.mu.Lock()
	cs, ds := t.cleanups, t.dirs
	t.cleanups, t.dirs = nil, nil
	t.mu.Unlock()
	for i := len(cs) - 1; i >= 0; i-- {
		cs[i]()
	}
	for _, d := range ds {
		os.RemoveAll(d)
	}
}
