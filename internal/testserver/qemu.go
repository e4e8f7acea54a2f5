package testserver

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"kvmgate/framebuffer"
)

// Guest selects what a QEMU test machine runs.
type Guest int

const (
	// GuestSeaBIOS boots nothing: no disk, no network. The screen stays on
	// SeaBIOS's "No bootable device" message in 720×400 VGA text mode.
	GuestSeaBIOS Guest = iota
	// GuestLinux boots the host's Debian kernel with a busybox initramfs.
	// A root shell (prompt "# ") runs on the VGA text console tty1; the
	// serial port carries the GuestReady and GuestCtrlAltDel markers.
	GuestLinux
)

// QEMUOptions configures StartQEMU.
type QEMUOptions struct {
	// Guest is what the machine runs (default GuestSeaBIOS).
	Guest Guest
	// MemoryMiB is the guest memory (default 256).
	MemoryMiB int
	// VGA is the -vga device (default "std").
	VGA string
	// Password, when set, turns on VNC authentication (password=on) and
	// sets this password through the monitor before the test connects.
	Password string
	// VNCOptions are appended to the -vnc argument after the address, such
	// as "lossy=on" or "share=force-shared" (comma separated, no leading
	// comma needed).
	VNCOptions string
	// KernelArgs are appended to the Linux guest's kernel command line.
	KernelArgs string
	// ExtraArgs are further QEMU arguments.
	ExtraArgs []string
	// Modules are kernel modules (names such as "qxl") the Linux guest's
	// initramfs carries, with the modules they depend on, and loads
	// before its shell starts; "qxl" gives a QXL card's native (KMS)
	// framebuffer console.
	Modules []string
	// ColdBoot makes a GuestLinux machine boot from scratch instead of
	// starting from the cached snapshot of a booted guest, for tests that
	// watch the boot itself.
	ColdBoot bool
	// InitCommands are shell commands the Linux guest's /init runs as
	// root after loading Modules and before busybox init starts the
	// shell; start long-running ones in the background ("cmd &"). They
	// are part of the cached snapshot of the booted guest.
	InitCommands string
	// GuestProgram puts the guest helper program (GuestProgramName, built
	// from internal/testserver/guestprog) in the Linux guest's /bin.
	GuestProgram bool
	// HostFiles are host files and directories (absolute paths) the Linux
	// guest's initramfs carries at the same paths; a dynamically linked
	// program brings its shared libraries (ldd) and loader, so host
	// programs such as Xvfb run in the guest.
	HostFiles []string
	// SPICE adds a SPICE server on a free port of 127.0.0.1 (see
	// SPICEAddr), with SPICEOptions appended to its -spice argument
	// ("disable-ticketing=on", ...). Unlike a -spice argument in
	// ExtraArgs, whose port changes every run, it does not keep a Linux
	// guest from reusing its cached snapshot.
	SPICE bool
	// SPICEOptions are further -spice options (comma separated).
	SPICEOptions string
}

// QEMU is a running QEMU machine with its display exported over VNC.
type QEMU struct {
	proc     *Proc
	addr     string
	password string
	guest    Guest
	dir      string
	serial   string // path of the serial log file
	biosLog  string // path of SeaBIOS's debug log (GuestSeaBIOS)
	mon      *qmpConn
	dumps    int // screendump file counter, guarded by mon.mu
	spice    string
}

// StartQEMU starts a QEMU x86-64 machine with a VNC display on a free port of
// 127.0.0.1 and a QMP monitor on a unix socket. It uses KVM when /dev/kvm is
// usable and TCG otherwise. The machine is killed when the test ends; if the
// test failed, QEMU's output and the guest's serial log go to the test log.
//
// For GuestLinux (unless ColdBoot is set) StartQEMU returns with the guest at
// its shell prompt: it restores a snapshot of a booted guest from the user
// cache directory, or boots the guest (tens of seconds under TCG), waits for
// the prompt and saves that snapshot for the next test. Otherwise it returns
// as soon as the VNC port accepts connections, with the guest still booting:
// see WaitSerial and WaitSettled.
func StartQEMU(t testing.TB, o QEMUOptions) *QEMU {
	t.Helper()
	if o.Guest != GuestLinux || o.ColdBoot {
		q, err := startQEMU(t, o, "")
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	snap := linuxSnapshotPath(t, o)
	if _, err := os.Stat(snap); err == nil {
		q, err := startQEMU(t, o, snap)
		if err == nil {
			return q
		}
		t.Logf("testserver: restoring the Linux guest snapshot failed, booting instead: %v", err)
		os.Remove(snap)
	}
	start := time.Now()
	q, err := startQEMU(t, o, "")
	if err != nil {
		t.Fatal(err)
	}
	q.WaitSettled(t, LinuxBootTimeout)
	if err := q.saveSnapshot(snap); err != nil {
		t.Logf("testserver: saving the Linux guest snapshot: %v", err)
	} else {
		t.Logf("testserver: booted the Linux guest in %v and saved it as %s", time.Since(start).Round(100*time.Millisecond), snap)
	}
	return q
}

// LinuxBootTimeout is how long StartQEMU waits for a cold-booted Linux guest
// to reach its prompt. Under TCG the boot takes about 6 s on an idle machine
// (mostly the kernel's own xz decompression) and can take ten times that on
// a loaded one.
const LinuxBootTimeout = 4 * time.Minute

// snapshotFormat changes whenever what a snapshot holds changes.
const snapshotFormat = "1"

// linuxSnapshotPath returns where the snapshot of a booted Linux guest with
// these options lives. The name covers everything the saved state depends
// on: the QEMU build, the accelerator, the machine arguments, the kernel and
// the initramfs.
func linuxSnapshotPath(t testing.TB, o QEMUOptions) string {
	t.Helper()
	bin := need(t, "qemu-system-x86_64")
	version, err := exec.Command(bin, "-version").Output()
	if err != nil {
		t.Fatalf("testserver: qemu -version: %v", err)
	}
	kernel, err := guestKernel()
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(kernel)
	if err != nil {
		t.Fatalf("testserver: kernel for the Linux guest: %v", err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%d\x00%d\x00", snapshotFormat, version, accel(), kernel, fi.Size(), fi.ModTime().UnixNano())
	fmt.Fprintf(h, "%s\x00", guestInitramfs(t, kernel, o))
	for _, a := range machineArgs(o) {
		fmt.Fprintf(h, "%s\x00", a)
	}
	return filepath.Join(cacheDir(), fmt.Sprintf("linux-%s.state", hex.EncodeToString(h.Sum(nil))[:16]))
}

// machineArgs returns the QEMU arguments that shape the guest machine (not
// its sockets and files).
func machineArgs(o QEMUOptions) []string {
	args := []string{
		"-name", "kvmgate-test",
		"-nodefaults", "-no-user-config",
		"-machine", "pc", "-accel", accel(),
		"-m", strconv.Itoa(orDefault(o.MemoryMiB, 256)),
		"-vga", cmp(o.VGA, "std"),
		"-display", "none",
		"-nic", "none",
		"-no-reboot",
	}
	if o.Guest == GuestLinux {
		cmdline := "console=ttyS0 console=tty1 quiet panic=-1 no_timer_check"
		if o.KernelArgs != "" {
			cmdline += " " + o.KernelArgs
		}
		args = append(args, "-append", cmdline)
	}
	return append(args, o.ExtraArgs...)
}

// startQEMU starts QEMU and waits until its VNC port accepts connections.
// With a snapshot path it restores that saved guest instead of booting.
func startQEMU(t testing.TB, o QEMUOptions, snapshot string) (*QEMU, error) {
	t.Helper()
	bin := need(t, "qemu-system-x86_64")
	dir := tempDir(t, "kvmgate-qemu-")
	q := &QEMU{
		guest:    o.Guest,
		dir:      dir,
		serial:   filepath.Join(dir, "serial.log"),
		biosLog:  filepath.Join(dir, "seabios.log"),
		password: o.Password,
	}
	sock := filepath.Join(dir, "qmp.sock")

	vnc := "127.0.0.1:0,to=99"
	if o.Password != "" {
		vnc += ",password=on"
	}
	if v := strings.TrimPrefix(o.VNCOptions, ","); v != "" {
		vnc += "," + v
	}
	var spiceArgs []string
	if o.SPICE {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		q.spice = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		opt := "port=" + strconv.Itoa(port) + ",addr=127.0.0.1"
		if v := strings.TrimPrefix(o.SPICEOptions, ","); v != "" {
			opt += "," + v
		}
		spiceArgs = []string{"-spice", opt}
	}
	args := append(machineArgs(o),
		"-vnc", vnc,
		"-qmp", "unix:"+sock+",server=on,wait=off",
		// append=on keeps the boot log copied in from a snapshot.
		"-chardev", "file,id=serial0,append=on,path="+q.serial,
		"-serial", "chardev:serial0",
	)
	args = append(args, spiceArgs...)
	switch o.Guest {
	case GuestSeaBIOS:
		// SeaBIOS's debug port: it says when it has given up booting.
		args = append(args,
			"-chardev", "file,id=biosdebug,path="+q.biosLog,
			"-device", "isa-debugcon,iobase=0x402,chardev=biosdebug")
	case GuestLinux:
		kernel, err := guestKernel()
		if err != nil {
			t.Fatal(err)
		}
		if f, err := os.Open(kernel); err != nil {
			t.Fatalf("testserver: kernel for the Linux guest: %v", err)
		} else {
			f.Close()
		}
		args = append(args, "-kernel", kernel, "-initrd", guestInitramfs(t, kernel, o))
	default:
		t.Fatalf("testserver: unknown guest %d", o.Guest)
	}
	if snapshot != "" {
		log, err := os.ReadFile(snapshot + ".serial")
		if err != nil {
			return nil, fmt.Errorf("testserver: snapshot serial log: %w", err)
		}
		if err := os.WriteFile(q.serial, log, 0o644); err != nil {
			return nil, fmt.Errorf("testserver: %w", err)
		}
		args = append(args, "-incoming", "defer")
	}

	p, err := startProc(t, "qemu", exec.Command(bin, args...))
	if err != nil {
		return nil, err
	}
	q.proc = p
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("testserver: QEMU guest serial log:\n%s", tail(q.Serial(), 16<<10))
		}
		if q.mon != nil {
			q.mon.close()
		}
	})
	fail := func(err error) (*QEMU, error) {
		p.Kill()
		return nil, err
	}

	q.mon, err = dialQMP(p, sock, startTimeout)
	if err != nil {
		return fail(err)
	}
	var info struct {
		Enabled bool   `json:"enabled"`
		Host    string `json:"host"`
		Service string `json:"service"`
	}
	if err := q.QMP("query-vnc", nil, &info); err != nil {
		return fail(err)
	}
	if !info.Enabled || info.Service == "" {
		return fail(fmt.Errorf("testserver: QEMU VNC not enabled: %+v", info))
	}
	q.addr = net.JoinHostPort(info.Host, info.Service)
	if o.Password != "" {
		if err := q.QMP("change-vnc-password", map[string]string{"password": o.Password}, nil); err != nil {
			return fail(err)
		}
	}
	if snapshot != "" {
		if err := q.restoreSnapshot(snapshot); err != nil {
			return fail(err)
		}
	}
	if err := waitTCP(p, q.addr, startTimeout); err != nil {
		return fail(err)
	}
	return q, nil
}

// saveSnapshot stops the guest, saves its state to path (and the serial log
// so far next to it) and lets it run again.
func (q *QEMU) saveSnapshot(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := fmt.Sprintf("%s.%d.tmp", path, q.proc.Pid())
	defer os.Remove(tmp)
	if err := q.QMP("stop", nil, nil); err != nil {
		return err
	}
	defer q.QMP("cont", nil, nil)
	if err := os.WriteFile(path+".serial", []byte(q.Serial()), 0o644); err != nil {
		return err
	}
	uri := "exec:cat > " + shellQuote(tmp)
	if err := q.QMP("migrate", map[string]string{"uri": uri}, nil); err != nil {
		return err
	}
	if err := q.waitMigration(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	pruneSnapshots(filepath.Dir(path))
	return nil
}

// snapshotMaxAge is how long an unused snapshot stays in the cache.
// Restoring one refreshes its time.
const snapshotMaxAge = 7 * 24 * time.Hour

// pruneSnapshots removes snapshots (about 80 MB each) not used for
// snapshotMaxAge, left behind by older kernels, QEMU builds or options.
func pruneSnapshots(dir string) {
	m, _ := filepath.Glob(filepath.Join(dir, "linux-*.state"))
	for _, f := range m {
		if fi, err := os.Stat(f); err == nil && time.Since(fi.ModTime()) > snapshotMaxAge {
			os.Remove(f)
			os.Remove(f + ".serial")
		}
	}
}

// restoreSnapshot loads a saved guest into a QEMU started with -incoming
// defer and waits until it runs.
func (q *QEMU) restoreSnapshot(path string) error {
	uri := "exec:cat " + shellQuote(path)
	if err := q.QMP("migrate-incoming", map[string]string{"uri": uri}, nil); err != nil {
		return err
	}
	deadline := time.Now().Add(startTimeout)
	for {
		var st struct {
			Status string `json:"status"`
		}
		if err := q.QMP("query-status", nil, &st); err != nil {
			return err
		}
		switch st.Status {
		case "running":
			now := time.Now()
			os.Chtimes(path, now, now) // keep it from being pruned
			return nil
		case "inmigrate":
		case "paused":
			// The guest was stopped when it was saved.
			if err := q.QMP("cont", nil, nil); err != nil {
				return err
			}
		default:
			return fmt.Errorf("testserver: restoring snapshot: guest is %q", st.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("testserver: restoring snapshot: still loading after %v", startTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitMigration waits until an outgoing migration has completed.
func (q *QEMU) waitMigration() error {
	deadline := time.Now().Add(startTimeout)
	for {
		var st struct {
			Status    string `json:"status"`
			ErrorDesc string `json:"error-desc"`
		}
		if err := q.QMP("query-migrate", nil, &st); err != nil {
			return err
		}
		switch st.Status {
		case "completed":
			return nil
		case "failed", "cancelled":
			return fmt.Errorf("testserver: save snapshot: migration %s: %s", st.Status, st.ErrorDesc)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("testserver: save snapshot: migration still %q after %v", st.Status, startTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// accel returns "kvm" when /dev/kvm can be opened and boots the Linux
// guest's kernel, and "tcg" otherwise. KVMGATE_TEST_ACCEL=kvm or tcg
// overrides the choice.
func accel() string {
	accelOnce.Do(func() { accelName = probeAccel() })
	return accelName
}

var (
	accelOnce sync.Once
	accelName string
)

// probeAccel decides what accel returns. Some hosts offer a /dev/kvm that
// runs SeaBIOS but never gets a Linux kernel going (nested
// paravirtualised KVM such as PVM, whose QEMU warns that the host lacks
// basic CPUID features). So KVM is used only once the guest kernel has been
// seen to print its banner under it; the result is cached in the cache
// directory, keyed on the host kernel, QEMU and the guest kernel.
func probeAccel() string {
	switch a := os.Getenv("KVMGATE_TEST_ACCEL"); a {
	case "kvm", "tcg":
		return a
	}
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return "tcg"
	}
	f.Close()
	bin, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		return "kvm" // StartQEMU fails anyway
	}
	kernel, err := guestKernel()
	if err != nil {
		return "kvm" // no Linux guest to worry about
	}
	hostVersion, _ := os.ReadFile("/proc/version")
	qemuVersion, _ := exec.Command(bin, "-version").Output()
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00", hostVersion, qemuVersion, kernel)
	cached := filepath.Join(cacheDir(), "accel-"+hex.EncodeToString(h.Sum(nil))[:16])
	if b, err := os.ReadFile(cached); err == nil {
		if a := strings.TrimSpace(string(b)); a == "kvm" || a == "tcg" {
			return a
		}
	}
	a := "tcg"
	if kvmBootsLinux(bin, kernel) {
		a = "kvm"
	}
	if os.MkdirAll(cacheDir(), 0o755) == nil {
		os.WriteFile(cached, []byte(a+"\n"), 0o644)
	}
	return a
}

// kvmBootsLinux reports whether the kernel, run under KVM without an
// initramfs, prints its banner on the serial port within 20 seconds.
func kvmBootsLinux(bin, kernel string) bool {
	dir, err := os.MkdirTemp("", "kvmgate-kvmprobe-")
	if err != nil {
		return false
	}
	defer os.RemoveAll(dir)
	serial := filepath.Join(dir, "serial.log")
	cmd := exec.Command(bin, "-nodefaults", "-no-user-config", "-machine", "pc", "-accel", "kvm",
		"-m", "128", "-display", "none", "-no-reboot", "-kernel", kernel,
		"-append", "console=ttyS0 panic=-1", "-serial", "file:"+serial)
	if err := cmd.Start(); err != nil {
		return false
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	defer func() {
		cmd.Process.Kill()
		<-done
	}()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if b, _ := os.ReadFile(serial); strings.Contains(string(b), "Linux version") {
			return true
		}
		select {
		case <-done:
			b, _ := os.ReadFile(serial)
			return strings.Contains(string(b), "Linux version")
		case <-time.After(100 * time.Millisecond):
		}
	}
	return false
}

func cmp(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// Addr returns the host:port of QEMU's VNC listener on 127.0.0.1.
func (q *QEMU) Addr() string { return q.addr }

// Password returns the VNC password, or "" when the server needs none.
func (q *QEMU) Password() string { return q.password }

// SPICEAddr returns the host:port of the SPICE server QEMUOptions.SPICE
// asked for, or "" without one.
func (q *QEMU) SPICEAddr() string { return q.spice }

// Proc returns the QEMU process.
func (q *QEMU) Proc() *Proc { return q.proc }

// QMP runs a QMP command with the given arguments (nil for none) and decodes
// its return value into result (nil to ignore it).
func (q *QEMU) QMP(command string, args, result any) error {
	ret, err := q.mon.execute(command, args)
	if err != nil {
		return err
	}
	if result != nil {
		if err := json.Unmarshal(ret, result); err != nil {
			return fmt.Errorf("testserver: qmp %s: decode %s: %w", command, ret, err)
		}
	}
	return nil
}

// Monitor runs a human monitor (HMP) command, such as "info vnc" or
// "sendkey ctrl-alt-delete", and returns its output.
func (q *QEMU) Monitor(cmd string) (string, error) {
	var out string
	if err := q.QMP("human-monitor-command", map[string]string{"command-line": cmd}, &out); err != nil {
		return "", err
	}
	return out, nil
}

// Screenshot captures the guest display with the monitor's screendump and
// decodes it.
func (q *QEMU) Screenshot() (*framebuffer.Canvas, error) {
	q.mon.mu.Lock()
	q.dumps++
	f := filepath.Join(q.dir, fmt.Sprintf("screen-%d.ppm", q.dumps))
	q.mon.mu.Unlock()
	defer os.Remove(f)
	if err := q.QMP("screendump", map[string]string{"filename": f}, nil); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(f)
	if err != nil {
		return nil, fmt.Errorf("testserver: read screendump: %w", err)
	}
	c, err := ParsePPM(data)
	if err != nil {
		return nil, fmt.Errorf("testserver: screendump: %w", err)
	}
	return c, nil
}

// SendKey presses the keys (QEMU qcodes such as "ctrl", "alt", "delete",
// "a", "ret") together and releases them, through the monitor; this is the
// reference path that does not involve any VNC client.
func (q *QEMU) SendKey(t testing.TB, keys ...string) {
	t.Helper()
	if err := q.sendKey(keys); err != nil {
		t.Fatal(err)
	}
}

type qkey struct {
	Type string `json:"type"`
	Data string `json:"data"`
}

func (q *QEMU) sendKey(keys []string) error {
	ks := make([]qkey, len(keys))
	for i, k := range keys {
		ks[i] = qkey{"qcode", k}
	}
	return q.QMP("send-key", map[string]any{"keys": ks, "hold-time": 30}, nil)
}

// TypeText types ASCII text on the guest keyboard through the monitor, as a
// US keyboard would produce it ("\n" is Enter). It fails the test on a
// character it cannot type.
func (q *QEMU) TypeText(t testing.TB, text string) {
	t.Helper()
	for _, r := range text {
		keys, ok := qcodeFor(r)
		if !ok {
			t.Fatalf("testserver: TypeText: no US key for %q", r)
		}
		if err := q.sendKey(keys); err != nil {
			t.Fatal(err)
		}
	}
}

// usKeys maps the ASCII punctuation of a US keyboard to QEMU qcodes; the
// second string is the shifted character of the same key.
var usKeys = map[string]string{
	"minus": "-_", "equal": "=+", "bracket_left": "[{", "bracket_right": "]}",
	"backslash": `\|`, "semicolon": ";:", "apostrophe": `'"`, "grave_accent": "`~",
	"comma": ",<", "dot": ".>", "slash": "/?",
	"1": "1!", "2": "2@", "3": "3#", "4": "4$", "5": "5%",
	"6": "6^", "7": "7&", "8": "8*", "9": "9(", "0": "0)",
}

func qcodeFor(r rune) ([]string, bool) {
	switch {
	case r >= 'a' && r <= 'z':
		return []string{string(r)}, true
	case r >= 'A' && r <= 'Z':
		return []string{"shift", string(r - 'A' + 'a')}, true
	case r == ' ':
		return []string{"spc"}, true
	case r == '\n':
		return []string{"ret"}, true
	case r == '\t':
		return []string{"tab"}, true
	}
	for code, chars := range usKeys {
		switch r {
		case rune(chars[0]):
			return []string{code}, true
		case rune(chars[1]):
			return []string{"shift", code}, true
		}
	}
	return nil, false
}

// Serial returns everything the guest wrote to its serial port so far.
func (q *QEMU) Serial() string {
	b, _ := os.ReadFile(q.serial)
	return string(b)
}

// WaitSerial waits until the guest has written s to its serial port (at any
// time since boot). It fails the test, with the serial log, if QEMU exits or
// timeout passes first. Call it from the test's goroutine.
func (q *QEMU) WaitSerial(t testing.TB, s string, timeout time.Duration) {
	t.Helper()
	if err := q.waitSerial(s, timeout); err != nil {
		t.Fatalf("%v\nserial log:\n%s", err, tail(q.Serial(), 8<<10))
	}
}

func (q *QEMU) waitSerial(s string, timeout time.Duration) error {
	return q.waitFile(q.serial, s, timeout)
}

// seaBIOSNoBoot is what SeaBIOS's debug log says when no boot device is left.
const seaBIOSNoBoot = "No bootable device"

// waitFile waits until the file contains s.
func (q *QEMU) waitFile(path, s string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if b, _ := os.ReadFile(path); strings.Contains(string(b), s) {
			return nil
		}
		if err := q.proc.exitError(); err != nil {
			return fmt.Errorf("testserver: waiting for %q in %s: %w", s, filepath.Base(path), err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("testserver: guest did not write %q to %s within %v", s, filepath.Base(path), timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WaitSettled waits until the guest's screen has reached its resting state
// and returns it: for GuestLinux after GuestReady appeared on the serial
// port, for GuestSeaBIOS after SeaBIOS logged "No bootable device", and then
// until screenshots stop changing. A blinking text cursor (changes within one
// character cell) does not count as a change. It fails the test after
// timeout.
func (q *QEMU) WaitSettled(t testing.TB, timeout time.Duration) *framebuffer.Canvas {
	t.Helper()
	start := time.Now()
	switch q.guest {
	case GuestLinux:
		q.WaitSerial(t, GuestReady, timeout)
	case GuestSeaBIOS:
		if err := q.waitFile(q.biosLog, seaBIOSNoBoot, timeout); err != nil {
			b, _ := os.ReadFile(q.biosLog)
			t.Fatalf("%v\nSeaBIOS log:\n%s", err, tail(string(b), 4096))
		}
	}
	const need = 4 // consecutive quiet comparisons, ~0.6 s
	var prev *framebuffer.Canvas
	quiet := 0
	for {
		c, err := q.Screenshot()
		if err != nil {
			t.Fatal(err)
		}
		if prev != nil && c.W == prev.W && c.H == prev.H {
			if d := diffBounds(prev, c); d.W <= 9 && d.H <= 16 {
				quiet++
			} else {
				quiet = 0
			}
		}
		if quiet >= need {
			return c
		}
		if time.Since(start) > timeout {
			t.Fatalf("testserver: QEMU screen still changing after %v", timeout)
		}
		prev = c
		time.Sleep(150 * time.Millisecond)
	}
}

// diffBounds returns the smallest rectangle holding every pixel where a and
// b (of equal size) differ.
func diffBounds(a, b *framebuffer.Canvas) framebuffer.Rect {
	var r framebuffer.Rect
	for y := 0; y < a.H; y++ {
		ra, rb := a.Row(0, y, a.W), b.Row(0, y, b.W)
		if string(ra) == string(rb) {
			continue
		}
		x0, x1 := 0, a.W-1
		for x0 < a.W && string(ra[4*x0:4*x0+4]) == string(rb[4*x0:4*x0+4]) {
			x0++
		}
		for x1 > x0 && string(ra[4*x1:4*x1+4]) == string(rb[4*x1:4*x1+4]) {
			x1--
		}
		r = r.Union(framebuffer.Rect{X: x0, Y: y, W: x1 - x0 + 1, H: 1})
	}
	return r
}

// qmpConn is a QMP client. mu serialises commands: each writes one request
// and reads until its reply, skipping asynchronous events.
type qmpConn struct {
	mu   sync.Mutex
	conn net.Conn
	r    *bufio.Reader
}

// dialQMP connects to QEMU's QMP socket, retrying while QEMU starts, and
// leaves capabilities negotiation mode.
func dialQMP(p *Proc, sock string, timeout time.Duration) (*qmpConn, error) {
	deadline := time.Now().Add(timeout)
	var conn net.Conn
	for {
		var err error
		conn, err = net.Dial("unix", sock)
		if err == nil {
			break
		}
		if perr := p.exitError(); perr != nil {
			return nil, fmt.Errorf("testserver: QEMU did not start: %w", perr)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("testserver: QEMU monitor not reachable after %v: %w", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	m := &qmpConn{conn: conn, r: bufio.NewReader(conn)}
	conn.SetDeadline(time.Now().Add(timeout))
	if _, err := m.r.ReadBytes('\n'); err != nil { // the greeting
		conn.Close()
		return nil, fmt.Errorf("testserver: QMP greeting: %w", err)
	}
	if _, err := m.execute("qmp_capabilities", nil); err != nil {
		conn.Close()
		return nil, err
	}
	return m, nil
}

func (m *qmpConn) close() { m.conn.Close() }

// execute sends one command and returns its "return" value.
func (m *qmpConn) execute(command string, args any) (json.RawMessage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	req := map[string]any{"execute": command}
	if args != nil {
		req["arguments"] = args
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("testserver: qmp %s: %w", command, err)
	}
	m.conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := m.conn.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("testserver: qmp %s: %w", command, err)
	}
	for {
		line, err := m.r.ReadBytes('\n')
		if err != nil {
			return nil, fmt.Errorf("testserver: qmp %s: %w", command, err)
		}
		var reply struct {
			Return json.RawMessage `json:"return"`
			Error  *struct {
				Class string `json:"class"`
				Desc  string `json:"desc"`
			} `json:"error"`
			Event string `json:"event"`
		}
		if err := json.Unmarshal(line, &reply); err != nil {
			return nil, fmt.Errorf("testserver: qmp %s: bad reply %q: %w", command, line, err)
		}
		switch {
		case reply.Event != "":
			continue
		case reply.Error != nil:
			return nil, fmt.Errorf("testserver: qmp %s: %s: %s", command, reply.Error.Class, reply.Error.Desc)
		case reply.Return != nil:
			return reply.Return, nil
		default:
			return nil, fmt.Errorf("testserver: qmp %s: unexpected reply %q", command, line)
		}
	}
}
