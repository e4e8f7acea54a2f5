//go:build linux

// Command guestprog is a small static program for the test Linux guest
// (testserver.QEMUOptions.GuestProgram puts it in the initramfs as
// /bin/kvmgate-guest). It reports what the guest's input devices see and
// drives the display hardware in ways busybox cannot, writing its findings
// as marker lines on the serial port, where tests read them:
//
//	kvmgate-guest evdump   print every input event of every /dev/input/event*
//	kvmgate-guest cursor   set a hardware cursor through DRM and keep it
//
// evdump prints "KVMEV-DEV eventN NAME" when it opens a device (devices that
// appear later, such as USB ones, are picked up too) and "KVMEV eventN TYPE
// CODE VALUE" (decimal) for each event other than EV_SYN.
//
// cursor sets the ARGB cursor of package guestcursor on the first CRTC of /dev/dri/card0 with
// DRM_IOCTL_MODE_CURSOR2, prints "KVMGATE-CURSOR-SET" and then holds the
// device open (closing it would give the CRTC back to the kernel console,
// which drops the cursor). "cursor hide" hides it again and exits. While
// it holds the cursor it moves it to "X Y" whenever that text appears in
// /tmp/kvmgate-cursor (then removes the file), and prints
// "KVMGATE-CURSOR-MOVED X Y".
//
// agent TEXT is a minimal VD agent written for tests from spice-protocol's
// vd_agent.h (not spice-vdagent): on the virtio port com.redhat.spice.0 it
// answers the client's capabilities, offers TEXT as the guest's clipboard
// (CLIPBOARD_GRAB), serves it on request, asks for the text the client
// offers and prints it ("KVMAGENT-CLIPBOARD HEX"), and prints monitor
// configurations it gets ("KVMAGENT-MONITORS N WxH+X+Y ..."). It also
// prints the preferred mode of the first DRM connector whenever it changes
// ("KVMGATE-MODE WxH"), which is how a QXL driver shows a monitor
// configuration the SPICE server handed to it.
package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"kvmgate/internal/testserver/guestcursor"
)

var (
	outMu sync.Mutex
	out   *bufio.Writer
)

// say writes one line to the serial port.
func say(format string, args ...any) {
	outMu.Lock()
	defer outMu.Unlock()
	fmt.Fprintf(out, format+"\n", args...)
	out.Flush()
}

func main() {
	tty, err := os.OpenFile("/dev/ttyS0", os.O_WRONLY, 0)
	if err != nil {
		tty = os.Stdout
	}
	out = bufio.NewWriter(tty)
	if len(os.Args) < 2 {
		say("KVMGATE-GUEST-ERROR usage: kvmgate-guest evdump|cursor [hide]")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "evdump":
		evdump()
	case "agent":
		text := ""
		if len(os.Args) > 2 {
			text = os.Args[2]
		}
		go watchModes()
		err := runAgent(text)
		say("KVMGATE-GUEST-ERROR agent: %v", err)
		os.Exit(1)
	case "cursor":
		if err := cursor(len(os.Args) > 2 && os.Args[2] == "hide"); err != nil {
			say("KVMGATE-GUEST-ERROR cursor: %v", err)
			os.Exit(1)
		}
	default:
		say("KVMGATE-GUEST-ERROR unknown command %q", os.Args[1])
		os.Exit(2)
	}
}

// evdump opens every input event device as it appears and prints its
// events. It never returns.
func evdump() {
	open := map[string]bool{}
	for {
		m, _ := filepath.Glob("/dev/input/event*")
		for _, p := range m {
			if open[p] {
				continue
			}
			f, err := os.Open(p)
			if err != nil {
				continue
			}
			open[p] = true
			dev := filepath.Base(p)
			name, _ := os.ReadFile("/sys/class/input/" + dev + "/device/name")
			say("KVMEV-DEV %s %s", dev, strings.TrimSpace(string(name)))
			go func() {
				// struct input_event on 64-bit: timeval (16 bytes),
				// u16 type, u16 code, s32 value.
				var ev [24]byte
				for {
					if _, err := readFull(f, ev[:]); err != nil {
						say("KVMGATE-GUEST-ERROR %s: %v", dev, err)
						return
					}
					typ := binary.LittleEndian.Uint16(ev[16:])
					code := binary.LittleEndian.Uint16(ev[18:])
					val := int32(binary.LittleEndian.Uint32(ev[20:]))
					if typ != 0 {
						say("KVMEV %s %d %d %d", dev, typ, code, val)
					}
				}
			}()
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func readFull(f *os.File, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k, err := f.Read(b[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// DRM ioctls (include/uapi/drm/drm.h, drm_mode.h).
func iowr(nr, size uintptr) uintptr { return 3<<30 | size<<16 | 'd'<<8 | nr }

type modeCardRes struct {
	FBIDPtr, CRTCIDPtr, ConnectorIDPtr, EncoderIDPtr     uint64
	CountFBs, CountCRTCs, CountConnectors, CountEncoders uint32
	MinWidth, MaxWidth, MinHeight, MaxHeight             uint32
}

type modeCreateDumb struct {
	Height, Width, BPP, Flags, Handle, Pitch uint32
	Size                                     uint64
}

type modeMapDumb struct {
	Handle, Pad uint32
	Offset      uint64
}

type modeCursor2 struct {
	Flags, CRTCID         uint32
	X, Y                  int32
	Width, Height, Handle uint32
	HotX, HotY            int32
}

const (
	drmModeCursorBO   = 1
	drmModeCursorMove = 2
)

var (
	ioctlGetResources = iowr(0xa0, unsafe.Sizeof(modeCardRes{}))
	ioctlCreateDumb   = iowr(0xb2, unsafe.Sizeof(modeCreateDumb{}))
	ioctlMapDumb      = iowr(0xb3, unsafe.Sizeof(modeMapDumb{}))
	ioctlCursor2      = iowr(0xbb, unsafe.Sizeof(modeCursor2{}))
)

func ioctl(fd int, req uintptr, arg unsafe.Pointer) error {
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), req, uintptr(arg)); e != 0 {
		return e
	}
	return nil
}

// cursor sets (or hides) the hardware cursor on the first CRTC.
func cursor(hide bool) error {
	fd, err := syscall.Open("/dev/dri/card0", syscall.O_RDWR|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /dev/dri/card0: %w", err)
	}
	var res modeCardRes
	if err := ioctl(fd, ioctlGetResources, unsafe.Pointer(&res)); err != nil {
		return fmt.Errorf("GETRESOURCES: %w", err)
	}
	if res.CountCRTCs == 0 {
		return fmt.Errorf("no CRTC")
	}
	crtcs := make([]uint32, res.CountCRTCs)
	res = modeCardRes{CRTCIDPtr: uint64(uintptr(unsafe.Pointer(&crtcs[0]))), CountCRTCs: uint32(len(crtcs))}
	if err := ioctl(fd, ioctlGetResources, unsafe.Pointer(&res)); err != nil {
		return fmt.Errorf("GETRESOURCES: %w", err)
	}
	if hide {
		c := modeCursor2{Flags: drmModeCursorBO, CRTCID: crtcs[0]}
		if err := ioctl(fd, ioctlCursor2, unsafe.Pointer(&c)); err != nil {
			return fmt.Errorf("CURSOR2 (hide): %w", err)
		}
		say("KVMGATE-CURSOR-HIDDEN")
		return nil
	}
	dumb := modeCreateDumb{Width: guestcursor.W, Height: guestcursor.H, BPP: 32}
	if err := ioctl(fd, ioctlCreateDumb, unsafe.Pointer(&dumb)); err != nil {
		return fmt.Errorf("CREATE_DUMB: %w", err)
	}
	mp := modeMapDumb{Handle: dumb.Handle}
	if err := ioctl(fd, ioctlMapDumb, unsafe.Pointer(&mp)); err != nil {
		return fmt.Errorf("MAP_DUMB: %w", err)
	}
	mem, err := syscall.Mmap(fd, int64(mp.Offset), int(dumb.Size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("mmap: %w", err)
	}
	for y := 0; y < guestcursor.H; y++ {
		for x := 0; x < guestcursor.W; x++ {
			binary.LittleEndian.PutUint32(mem[y*int(dumb.Pitch)+4*x:], guestcursor.Pixel(x, y))
		}
	}
	c := modeCursor2{Flags: drmModeCursorBO, CRTCID: crtcs[0], Width: guestcursor.W, Height: guestcursor.H,
		Handle: dumb.Handle, HotX: guestcursor.HotX, HotY: guestcursor.HotY}
	if err := ioctl(fd, ioctlCursor2, unsafe.Pointer(&c)); err != nil {
		return fmt.Errorf("CURSOR2: %w", err)
	}
	mv := modeCursor2{Flags: drmModeCursorMove, CRTCID: crtcs[0], X: 100, Y: 80}
	if err := ioctl(fd, ioctlCursor2, unsafe.Pointer(&mv)); err != nil {
		return fmt.Errorf("CURSOR2 (move): %w", err)
	}
	say("KVMGATE-CURSOR-SET")
	for {
		time.Sleep(100 * time.Millisecond)
		b, err := os.ReadFile(cursorMoveFile)
		if err != nil {
			continue
		}
		var x, y int32
		if _, err := fmt.Sscan(string(b), &x, &y); err != nil {
			continue // not written completely yet
		}
		os.Remove(cursorMoveFile)
		mv := modeCursor2{Flags: drmModeCursorMove, CRTCID: crtcs[0], X: x, Y: y}
		if err := ioctl(fd, ioctlCursor2, unsafe.Pointer(&mv)); err != nil {
			return fmt.Errorf("CURSOR2 (move): %w", err)
		}
		say("KVMGATE-CURSOR-MOVED %d %d", x, y)
	}
}

// cursorMoveFile is where a test asks the cursor holder to move the cursor.
const cursorMoveFile = "/tmp/kvmgate-cursor"

// watchModes prints the preferred (first) mode of the first DRM connector
// whenever it changes.
func watchModes() {
	last := ""
	for {
		m, _ := filepath.Glob("/sys/class/drm/card0-*/modes")
		if len(m) > 0 {
			b, _ := os.ReadFile(m[0])
			first, _, _ := strings.Cut(string(b), "\n")
			if first != last && first != "" {
				say("KVMGATE-MODE %s", first)
				last = first
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// VD agent protocol (spice-protocol's vd_agent.h).
const (
	vdpClientPort = 1

	vdAgentProtocol             = 1
	vdAgentMonitorsConfig       = 2
	vdAgentReply                = 3
	vdAgentClipboard            = 4
	vdAgentAnnounceCapabilities = 6
	vdAgentClipboardGrab        = 7
	vdAgentClipboardRequest     = 8

	vdAgentCapMonitorsConfig    = 1
	vdAgentCapReply             = 2
	vdAgentCapClipboardByDemand = 5
	vdAgentCapGuestLineEndLF    = 8

	vdAgentClipboardUTF8Text = 1
	vdAgentMaxData           = 2048
)

// agentPort reads the agent's virtio port. virtio_console answers a read
// with end of file while the host side is not connected, which it is not
// for a moment after the guest opens the port (QEMU connects the SPICE
// server to it on that open): then it waits and reads again, rather than
// racing QEMU.
type agentPort struct{ f *os.File }

func (p agentPort) Read(b []byte) (int, error) {
	for {
		n, err := p.f.Read(b)
		if n == 0 && err == io.EOF {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		return n, err
	}
}

// runAgent serves the VD agent port until it fails, and returns why.
func runAgent(text string) error {
	var port string
	for deadline := time.Now().Add(time.Minute); port == ""; time.Sleep(100 * time.Millisecond) {
		m, _ := filepath.Glob("/sys/class/virtio-ports/*/name")
		for _, p := range m {
			if b, _ := os.ReadFile(p); strings.TrimSpace(string(b)) == "com.redhat.spice.0" {
				port = "/dev/" + filepath.Base(filepath.Dir(p))
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no virtio port com.redhat.spice.0")
		}
	}
	f, err := os.OpenFile(port, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	say("KVMAGENT-OPEN %s", port)
	le := binary.LittleEndian
	send := func(typ uint32, body []byte) error {
		msg := le.AppendUint32(nil, vdAgentProtocol)
		msg = le.AppendUint32(msg, typ)
		msg = le.AppendUint64(msg, 0)
		msg = le.AppendUint32(msg, uint32(len(body)))
		msg = append(msg, body...)
		for len(msg) > 0 {
			n := min(len(msg), vdAgentMaxData)
			chunk := le.AppendUint32(nil, vdpClientPort)
			chunk = le.AppendUint32(chunk, uint32(n))
			if _, err := f.Write(append(chunk, msg[:n]...)); err != nil {
				return err
			}
			msg = msg[n:]
		}
		return nil
	}
	caps := uint32(1<<vdAgentCapMonitorsConfig | 1<<vdAgentCapReply | 1<<vdAgentCapClipboardByDemand | 1<<vdAgentCapGuestLineEndLF)
	var stream []byte // the client port's message stream
	hdr := make([]byte, 8)
	for {
		if _, err := io.ReadFull(agentPort{f}, hdr); err != nil {
			return err
		}
		portNum, size := le.Uint32(hdr), le.Uint32(hdr[4:])
		chunk := make([]byte, size)
		if _, err := io.ReadFull(agentPort{f}, chunk); err != nil {
			return err
		}
		if portNum != vdpClientPort {
			continue // the server's own messages (mouse state...)
		}
		stream = append(stream, chunk...)
		for len(stream) >= 20 {
			typ, msize := le.Uint32(stream[4:]), le.Uint32(stream[16:])
			if len(stream) < 20+int(msize) {
				break
			}
			body := stream[20 : 20+msize]
			stream = stream[20+msize:]
			var err error
			switch typ {
			case vdAgentAnnounceCapabilities:
				say("KVMAGENT-CAPS %#x", le.Uint32(body[4:]))
				if le.Uint32(body) != 0 {
					err = send(vdAgentAnnounceCapabilities, le.AppendUint32(le.AppendUint32(nil, 0), caps))
				}
				if err == nil && text != "" {
					err = send(vdAgentClipboardGrab, le.AppendUint32(nil, vdAgentClipboardUTF8Text))
					say("KVMAGENT-GRAB")
				}
			case vdAgentClipboardGrab:
				say("KVMAGENT-CLIENT-GRAB")
				err = send(vdAgentClipboardRequest, le.AppendUint32(nil, vdAgentClipboardUTF8Text))
			case vdAgentClipboard:
				say("KVMAGENT-CLIPBOARD %d %x", le.Uint32(body), body[4:])
			case vdAgentClipboardRequest:
				say("KVMAGENT-REQUEST %d", le.Uint32(body))
				err = send(vdAgentClipboard, append(le.AppendUint32(nil, vdAgentClipboardUTF8Text), text...))
			case vdAgentMonitorsConfig:
				n := le.Uint32(body)
				line := fmt.Sprintf("KVMAGENT-MONITORS %d", n)
				for i := 0; i < int(n) && 8+20*(i+1) <= len(body); i++ {
					m := body[8+20*i:]
					line += fmt.Sprintf(" %dx%d+%d+%d", le.Uint32(m[4:]), le.Uint32(m), int32(le.Uint32(m[12:])), int32(le.Uint32(m[16:])))
				}
				say("%s", line)
				err = send(vdAgentReply, le.AppendUint32(le.AppendUint32(nil, vdAgentMonitorsConfig), 0))
			}
			if err != nil {
				return err
			}
		}
	}
}
