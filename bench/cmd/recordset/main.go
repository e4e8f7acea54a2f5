// Command recordset records the benchmark workloads in bench/testdata from
// real servers started by internal/testserver: QEMU's SeaBIOS screen, a
// Linux guest's VGA text console scrolling, a TigerVNC Xvnc desktop with an
// xterm scrolling text and a ticking xclock, and photo-like motion in Xvnc.
//
// Each workload is recorded over several connections to the same server at
// once, with one shared clock: by kvmgate's rfb client with its default
// (lossless) encodings, the source of exact frames; by the same client
// asking what noVNC asks by default (Tight, quality 6, compression 2), the
// websockify+noVNC baseline, on loopback; and that baseline again through
// each slower link profile of bench/harness (a throttling relay, so the
// server adapts to the link as it would in the field). Usage:
//
//	go run ./bench/cmd/recordset -o bench/testdata [-only linux-console]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"kvmgate/bench/fbs"
	"kvmgate/bench/harness"
	"kvmgate/internal/testserver"
)

type workload struct {
	name, server, desc string
	run                func(t *tb, rec func(addr string) *pair)
}

var workloads = []workload{
	{"seabios", "QEMU (SeaBIOS guest)", "QEMU SeaBIOS from power-on to \"No bootable device\" (720x400 VGA text), 8 s", recordSeaBIOS},
	{"linux-console", "QEMU (Linux guest)", "QEMU Linux guest, VGA text console: typed commands (dmesg, ls -l of /bin /sbin /etc, /proc/cpuinfo, busybox top batch output) scrolling, then 3 s quiet", recordLinux},
	{"photo-motion", "TigerVNC Xvnc", "TigerVNC Xvnc 1024x768 desktop: 12 photo-like 256x192 frames (drifting colour fields, a moving disc, noise) shown one after another in fresh xwud windows at the same place, about 4 per second, then the last one for 4 s", recordPhotos},
	{"xterm-desktop", "TigerVNC Xvnc", "TigerVNC Xvnc 1024x768 desktop (solid root, xclock ticking each second, xterm 100x40) with ls -l /usr/bin scrolling line by line (30 ms per line), then 3 s quiet", recordXterm},
}

func main() {
	out := flag.String("o", "bench/testdata", "output directory")
	only := flag.String("only", "", "record only this workload")
	flag.Parse()
	failed := false
	for _, w := range workloads {
		if *only != "" && w.name != *only {
			continue
		}
		if err := record(w, *out); err != nil {
			slog.Error("recording failed", "workload", w.name, "err", err)
			failed = true
		}
	}
	if failed {
		os.Exit(1)
	}
}

func record(w workload, dir string) (err error) {
	t := &tb{name: w.name}
	defer t.finish()
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(fatal)
			if !ok {
				panic(r)
			}
			err = fmt.Errorf("%s: %s", w.name, f.msg)
		}
	}()
	var p *pair
	w.run(t, func(addr string) *pair {
		p = startPair(t, addr, w, dir)
		return p
	})
	if p == nil {
		return fmt.Errorf("%s: never started recording", w.name)
	}
	return p.stop()
}

// pair is the recordings of one workload: the source, the baseline on
// loopback, and the baseline through each slower link profile.
type pair struct {
	src, base *fbs.Session
	throttled []*fbs.Session
	srcPath   string
	basePath  string
}

func startPair(t *tb, addr string, w workload, dir string) *pair {
	cmd := "go run ./bench/cmd/recordset -o bench/testdata -only " + w.name
	m := fbs.Meta{Name: w.name, Server: w.server, Description: w.desc, Client: fbs.ClientKvmgate, Quality: -1, Compress: -1, Command: cmd}
	p := &pair{
		srcPath:  filepath.Join(dir, w.name+".fbs.gz"),
		basePath: filepath.Join(dir, w.name+"-novnc.fbs.gz"),
	}
	start := time.Now()
	ctx := context.Background()
	var err error
	if p.src, err = fbs.StartSession(ctx, addr, m, p.srcPath, start); err != nil {
		t.Fatalf("source recording: %v", err)
	}
	if p.base, err = fbs.StartSession(ctx, addr, m.NoVNC(), p.basePath, start); err != nil {
		p.src.Stop()
		t.Fatalf("baseline recording: %v", err)
	}
	for _, l := range harness.Profiles[1:] {
		bm := m.NoVNC()
		bm.Link = l.Name
		path := filepath.Join(dir, w.name+"-novnc@"+l.Name+".fbs.gz")
		th := &fbs.Throttle{Bitrate: l.Bitrate, RTT: l.RTT, Loss: l.Loss}
		s, err := fbs.StartThrottledSession(ctx, addr, bm, path, start, th)
		if err != nil {
			p.stop()
			t.Fatalf("baseline recording through %s: %v", l.Name, err)
		}
		p.throttled = append(p.throttled, s)
	}
	return p
}

// drainTimeout bounds how long the throttled baselines may take to catch
// up with the source after the workload's script ends. Lossy baselines
// never equal the lossless source, so they always take this long; every
// recording of the workload then goes on as long.
const drainTimeout = 10 * time.Second

// drain waits until every throttled baseline shows the source's picture,
// or drainTimeout passes.
func (p *pair) drain() {
	deadline := time.Now().Add(drainTimeout)
	for _, s := range p.throttled {
		for time.Now().Before(deadline) {
			if s.Framebuffer().Snapshot().Equal(p.src.Framebuffer().Snapshot()) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

func (p *pair) stop() error {
	p.drain()
	var errs []error
	for _, s := range append([]*fbs.Session{p.src, p.base}, p.throttled...) {
		m, err := s.Stop()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		slog.Info("recorded", "name", m.Name, "client", m.Client, "link", m.Link, "server", m.Server,
			"size", fmt.Sprintf("%dx%d", m.Width, m.Height), "bytes", m.Bytes, "ms", m.DurationMs)
	}
	return errors.Join(errs...)
}

func recordSeaBIOS(t *tb, rec func(string) *pair) {
	q := testserver.StartQEMU(t, testserver.QEMUOptions{Guest: testserver.GuestSeaBIOS})
	rec(q.Addr())
	time.Sleep(8 * time.Second)
}

func recordLinux(t *tb, rec func(string) *pair) {
	q := testserver.StartQEMU(t, testserver.QEMUOptions{Guest: testserver.GuestLinux})
	rec(q.Addr())
	time.Sleep(time.Second)
	for _, c := range []struct {
		cmd  string
		wait time.Duration
	}{
		{"dmesg\n", 3 * time.Second},
		{"ls -l /bin /sbin /etc\n", 3 * time.Second},
		{"cat /proc/cpuinfo\n", 2 * time.Second},
		{"top -b -n 3 -d 1\n", 4 * time.Second},
		{"clear; ls -lR /sys/class | head -150\n", 3 * time.Second},
	} {
		q.TypeText(t, c.cmd)
		time.Sleep(c.wait)
	}
	time.Sleep(3 * time.Second)
}

func recordXterm(t *tb, rec func(string) *pair) {
	x := testserver.StartXvnc(t, testserver.XvncOptions{})
	x.Run(t, "xsetroot", "-solid", "#3a6ea5")
	x.Start(t, "xclock", "-update", "1", "-geometry", "160x160-10+10")
	rec(x.Addr())
	time.Sleep(time.Second)
	script := strings.Join([]string{
		"sleep 1",
		`ls -l /usr/bin | head -300 | while IFS= read -r l; do printf '%s\n' "$l"; sleep 0.03; done`,
		"sleep 600",
	}, "; ")
	x.Start(t, "xterm", "-geometry", "100x40+20+20", "-title", "scroll", "-e", "sh", "-c", script)
	x.WaitWindow(t, "scroll", 20*time.Second)
	time.Sleep(16 * time.Second)
}
