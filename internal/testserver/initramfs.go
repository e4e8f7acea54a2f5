package testserver

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// The Linux guest is Debian's kernel with an initramfs holding only a static
// busybox and the scripts below. /init mounts the pseudo file systems and
// hands over to busybox init, which runs a login shell on tty1 (the VGA text
// console) and reports Ctrl-Alt-Del on the serial port.

// Marker lines the Linux guest prints on its serial port (ttyS0).
const (
	// GuestReady is printed once the shell on the VGA console (tty1) runs.
	GuestReady = "KVMGATE-GUEST-READY"
	// GuestCtrlAltDel is printed when the guest's keyboard sees
	// Ctrl-Alt-Del.
	GuestCtrlAltDel = "KVMGATE-CTRL-ALT-DEL"
)

const guestInit = `#!/bin/sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
dmesg -n 1
echo KVMGATE-INIT > /dev/ttyS0
exec /bin/busybox init
`

const guestInittab = `tty1::respawn:/bin/cttyhack /bin/sh -l
::ctrlaltdel:/bin/sh -c "echo ` + GuestCtrlAltDel + ` > /dev/ttyS0"
::shutdown:/bin/sh -c "echo KVMGATE-SHUTDOWN > /dev/ttyS0"
`

// guestProfile runs in the login shell busybox init starts on tty1 (the only
// shell the guest runs).
const guestProfile = `export HOME=/root PATH=/bin PS1='# '
cd /root
clear
echo ` + GuestReady + ` > /dev/ttyS0
`

// initramfsFormat changes whenever the archive layout changes, so cached
// archives from older code are not reused.
const initramfsFormat = "1"

// guestKernel returns the path of the newest Debian kernel in /boot.
func guestKernel() (string, error) {
	if p, err := filepath.EvalSymlinks("/vmlinuz"); err == nil {
		return p, nil
	}
	m, _ := filepath.Glob("/boot/vmlinuz-*")
	if len(m) == 0 {
		return "", fmt.Errorf("testserver: no kernel in /boot; install the Debian package linux-image-amd64")
	}
	sort.Strings(m)
	return m[len(m)-1], nil
}

// guestInitramfs returns the path of the busybox initramfs for the Linux
// guest, building it into the user cache directory when it is not there
// yet. The cache key covers the kernel, busybox, the guest scripts and the
// kernel modules, init commands and helper program (see QEMUOptions).
func guestInitramfs(t testing.TB, kernel string, o QEMUOptions) string {
	t.Helper()
	modules := o.Modules
	bbPath := "/bin/busybox"
	bb, err := os.ReadFile(bbPath)
	if err != nil {
		t.Fatalf("testserver: read busybox: %v; install the Debian package busybox-static", err)
	}
	if err := checkStatic(bbPath); err != nil {
		t.Fatalf("testserver: %v; install the Debian package busybox-static", err)
	}
	kver := strings.TrimPrefix(filepath.Base(kernel), "vmlinuz-")
	mods, err := moduleFiles(kver, modules)
	if err != nil {
		t.Fatalf("testserver: %v", err)
	}
	initScript := guestInit
	if len(mods) > 0 || o.InitCommands != "" {
		initScript = moduleInit(mods, o.InitCommands)
	}
	var extra []hostFile // further files
	if o.GuestProgram {
		extra = append(extra, hostFile{path: "bin/" + GuestProgramName, mode: 0o755, data: guestProgram(t)})
	}
	if len(o.HostFiles) > 0 {
		hf, err := hostFiles(o.HostFiles)
		if err != nil {
			t.Fatalf("testserver: %v", err)
		}
		extra = append(extra, hf...)
	}
	h := sha256.New()
	for _, s := range []string{initramfsFormat, initScript, guestInittab, guestProfile} {
		fmt.Fprintf(h, "%d:%s", len(s), s)
	}
	h.Write(bb)
	for _, m := range mods {
		fmt.Fprintf(h, "%d:%s", len(m.data), m.name)
		h.Write(m.data)
	}
	for _, f := range extra {
		fmt.Fprintf(h, "file %o %d:%s", f.mode, len(f.data), f.path)
		h.Write(f.data)
	}
	key := hex.EncodeToString(h.Sum(nil))[:16]

	dir := cacheDir()
	path := filepath.Join(dir, fmt.Sprintf("initramfs-%s-%s.cpio.gz", kver, key))
	if _, err := os.Stat(path); err == nil {
		return path
	}
	data, err := buildInitramfsWith(bb, initScript, mods, extra...)
	if err != nil {
		t.Fatalf("testserver: build initramfs: %v", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("testserver: initramfs cache: %v", err)
	}
	// Write then rename, so concurrent test binaries never see a partial
	// file.
	tmp, err := os.CreateTemp(dir, "initramfs-*.tmp")
	if err != nil {
		t.Fatalf("testserver: initramfs cache: %v", err)
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if werr != nil || cerr != nil {
		os.Remove(tmp.Name())
		t.Fatalf("testserver: write initramfs: %v %v", werr, cerr)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		t.Fatalf("testserver: initramfs cache: %v", err)
	}
	return path
}

// module is a kernel module file for the initramfs.
type module struct {
	name string // file name, e.g. "qxl.ko"
	data []byte
}

// moduleFiles reads the named modules of kernel version kver and the
// modules they depend on (from modules.dep), in an order that loads each
// module after its dependencies.
func moduleFiles(kver string, names []string) ([]module, error) {
	if len(names) == 0 {
		return nil, nil
	}
	root := filepath.Join("/lib/modules", kver)
	dep, err := os.ReadFile(filepath.Join(root, "modules.dep"))
	if err != nil {
		return nil, fmt.Errorf("kernel modules: %w", err)
	}
	deps := map[string][]string{} // module name -> dependency paths
	paths := map[string]string{}  // module name -> path
	modName := func(p string) string {
		b := filepath.Base(p)
		return strings.ReplaceAll(b[:strings.Index(b, ".ko")], "-", "_")
	}
	for _, line := range strings.Split(string(dep), "\n") {
		mod, rest, ok := strings.Cut(line, ":")
		if !ok || !strings.Contains(mod, ".ko") {
			continue
		}
		n := modName(mod)
		paths[n] = mod
		deps[n] = strings.Fields(rest)
	}
	var out []module
	seen := map[string]bool{}
	var add func(n string) error
	add = func(n string) error {
		if seen[n] {
			return nil
		}
		seen[n] = true
		p, ok := paths[n]
		if !ok {
			return fmt.Errorf("kernel module %q not in %s/modules.dep", n, root)
		}
		for _, d := range deps[n] {
			if err := add(modName(d)); err != nil {
				return err
			}
		}
		if !strings.HasSuffix(p, ".ko") {
			return fmt.Errorf("kernel module %s is compressed; busybox insmod needs a plain .ko", p)
		}
		data, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			return fmt.Errorf("kernel module: %w", err)
		}
		out = append(out, module{name: filepath.Base(p), data: data})
		return nil
	}
	for _, n := range names {
		if err := add(strings.ReplaceAll(n, "-", "_")); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// moduleInit is guestInit with the modules loaded, and then the shell
// commands cmds run, before busybox init.
func moduleInit(mods []module, cmds string) string {
	var b strings.Builder
	for _, m := range mods {
		fmt.Fprintf(&b, "insmod /lib/modules/%s\n", m.name)
	}
	if cmds != "" {
		b.WriteString(strings.TrimSuffix(cmds, "\n") + "\n")
	}
	return strings.Replace(guestInit, "exec /bin/busybox init\n", b.String()+"exec /bin/busybox init\n", 1)
}

// cacheDir returns the directory for built guest files and snapshots:
// kvmgate-test in the user cache directory (~/.cache/kvmgate-test). Removing
// it is always safe.
func cacheDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "kvmgate-test")
}

// checkStatic returns an error if the ELF file at path needs a dynamic
// loader, which the initramfs does not have.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked", path)
		}
	}
	return nil
}

// buildInitramfs returns a gzip-compressed newc cpio archive with busybox
// and the guest scripts. The output depends only on its input: timestamps,
// owners and inode numbers are fixed.
func buildInitramfs(busybox []byte) ([]byte, error) {
	return buildInitramfsWith(busybox, guestInit, nil)
}

// buildInitramfsWith is buildInitramfs with another /init, kernel
// modules in /lib/modules and further files.
func buildInitramfsWith(busybox []byte, initScript string, mods []module, files ...hostFile) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	w := &cpioWriter{w: zw}
	for _, d := range []string{"bin", "dev", "etc", "proc", "root", "sys", "tmp"} {
		w.dir(d)
	}
	w.node("dev/console", 0o600, 5, 1)
	w.node("dev/tty1", 0o620, 4, 1)
	w.node("dev/ttyS0", 0o660, 4, 64)
	w.node("dev/null", 0o666, 1, 3)
	w.file("bin/busybox", 0o755, busybox)
	w.symlink("bin/sh", "busybox")
	w.file("init", 0o755, []byte(initScript))
	if len(mods) > 0 {
		w.dir("lib")
		w.dir("lib/modules")
		for _, m := range mods {
			w.file("lib/modules/"+m.name, 0o644, m.data)
		}
	}
	w.file("etc/inittab", 0o644, []byte(guestInittab))
	w.file("etc/profile", 0o644, []byte(guestProfile))
	made := map[string]bool{"bin": true, "dev": true, "etc": true, "proc": true, "root": true, "sys": true, "tmp": true,
		"lib": len(mods) > 0, "lib/modules": len(mods) > 0}
	for _, f := range files {
		var parents []string
		for d := path.Dir(f.path); d != "." && !made[d]; d = path.Dir(d) {
			parents = append(parents, d)
		}
		for i := len(parents) - 1; i >= 0; i-- {
			w.dir(parents[i])
			made[parents[i]] = true
		}
		w.file(f.path, f.mode, f.data)
	}
	w.trailer()
	if w.err != nil {
		return nil, w.err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// cpioWriter writes the "newc" (070701) cpio format the kernel unpacks.
type cpioWriter struct {
	w   io.Writer
	ino int
	n   int64 // bytes written, for the 4-byte alignment
	err error
}

const (
	cpioDir  = 0o040000
	cpioFile = 0o100000
	cpioLink = 0o120000
	cpioChr  = 0o020000
)

func (c *cpioWriter) dir(name string) { c.entry(name, cpioDir|0o755, 2, 0, 0, nil) }

func (c *cpioWriter) file(name string, perm uint32, data []byte) {
	c.entry(name, cpioFile|perm, 1, 0, 0, data)
}

func (c *cpioWriter) symlink(name, target string) {
	c.entry(name, cpioLink|0o777, 1, 0, 0, []byte(target))
}

func (c *cpioWriter) node(name string, perm uint32, major, minor int) {
	c.entry(name, cpioChr|perm, 1, major, minor, nil)
}

func (c *cpioWriter) trailer() { c.entry("TRAILER!!!", 0, 1, 0, 0, nil) }

func (c *cpioWriter) entry(name string, mode uint32, nlink, rmajor, rminor int, data []byte) {
	if c.err != nil {
		return
	}
	ino := 0
	if name != "TRAILER!!!" {
		c.ino++
		ino = c.ino
	}
	// ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor
	// rdevminor namesize check
	hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rmajor, rminor, len(name)+1, 0)
	c.write([]byte(hdr))
	c.write([]byte(name + "\x00"))
	c.pad()
	c.write(data)
	c.pad()
}

func (c *cpioWriter) write(p []byte) {
	if c.err != nil {
		return
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
}

func (c *cpioWriter) pad() {
	if r := c.n % 4; r != 0 {
		c.write(make([]byte, 4-r))
	}
}

// hostFile is a file for the initramfs: its path there (relative, "usr/bin/x"),
// permission bits and content.
type hostFile struct {
	path string
	mode uint32
	data []byte
}

// hostFiles reads the host files and directory trees named by paths for
// the initramfs, at the same paths. A dynamically linked program brings the
// shared libraries ldd lists for it and its loader; symbolic links are
// stored as the files they lead to.
func hostFiles(paths []string) ([]hostFile, error) {
	seen := map[string]bool{}
	var out []hostFile
	var add func(p string) error
	add = func(p string) error {
		p = filepath.Clean(p)
		if seen[p] {
			return nil
		}
		seen[p] = true
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("host file for the guest: %w", err)
		}
		if fi.IsDir() {
			ents, err := os.ReadDir(p)
			if err != nil {
				return fmt.Errorf("host file for the guest: %w", err)
			}
			for _, e := range ents {
				if err := add(filepath.Join(p, e.Name())); err != nil {
					return err
				}
			}
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("host file for the guest: %w", err)
		}
		out = append(out, hostFile{path: strings.TrimPrefix(p, "/"), mode: uint32(fi.Mode().Perm()), data: data})
		if checkStatic(p) == nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			return nil
		}
		libs, err := exec.Command("ldd", p).Output()
		if err != nil {
			return fmt.Errorf("ldd %s: %w", p, err)
		}
		for _, line := range strings.Split(string(libs), "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
				err = add(f[2])
			case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
				err = add(f[0])
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	for _, p := range paths {
		if !filepath.IsAbs(p) {
			return nil, fmt.Errorf("host file %q: not an absolute path", p)
		}
		if err := add(p); err != nil {
			return nil, err
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out, nil
}
