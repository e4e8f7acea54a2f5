package e2e

import (
	"strconv"
	"testing"
	"time"

	"kvmgate/internal/browsertest"
	"kvmgate/internal/testserver"
	"kvmgate/server"
)

// qemuVNCClients returns how many VNC clients QEMU has connected.
func qemuVNCClients(t *testing.T, q *testserver.QEMU) int {
	t.Helper()
	var info struct {
		Clients []struct {
			Host    string `json:"host"`
			Service string `json:"service"`
		} `json:"clients"`
	}
	if err := q.QMP("query-vnc", nil, &info); err != nil {
		t.Fatal(err)
	}
	return len(info.Clients)
}

// TestQEMULinux runs the real server against QEMU's VNC display of a Linux
// guest whose VGA text console runs a busybox shell, and the console page in
// headless Chromium. What the canvas shows is compared with QEMU's own
// screendump; what the guest receives is observed on its serial port.
func TestQEMULinux(t *testing.T) {
	t.Parallel()
	q := testserver.StartQEMU(t, testserver.QEMUOptions{Guest: testserver.GuestLinux})
	q.WaitSettled(t, 150*time.Second)
	srv, hs := startServer(t, server.Options{Target: "vnc://" + q.Addr()})
	b := browsertest.Launch(t)
	p := b.NewPage(t, hs.URL+"/")
	waitConnected(t, p)

	t.Run("canvas equals screendump", func(t *testing.T) {
		waitScreen(t, p, q)
	})

	t.Run("typed keys reach the guest", func(t *testing.T) {
		// The guest's shell computes the marker, so only a command that
		// really ran writes it to the serial port.
		p.MustEval(t, el+`.focus()`)
		p.TypeSlowly(t, "echo TYPED-IN-BROWSER-$((6*7)) > /dev/ttyS0", qemuKeyGap)
		p.KeyPress(t, "Enter")
		q.WaitSerial(t, "TYPED-IN-BROWSER-42", wait)
		waitScreen(t, p, q)
	})

	t.Run("special-keys menu sends ctrl-alt-del", func(t *testing.T) {
		clickCtrlAltDel(t, p)
		q.WaitSerial(t, testserver.GuestCtrlAltDel, wait)
	})

	t.Run("two tabs share one backend connection", func(t *testing.T) {
		p2 := b.NewPage(t, hs.URL+"/")
		waitConnected(t, p2)
		waitScreen(t, p2, q)
		if n := qemuVNCClients(t, q); n != 1 {
			t.Errorf("two tabs: QEMU has %d VNC clients, want 1", n)
		}
		if sessions, viewers := srv.Hub().Counts(); sessions != 1 || viewers != 2 {
			t.Errorf("two tabs: hub has %d sessions and %d viewers, want 1 and 2", sessions, viewers)
		}
		noErrors(t, p2)
		p2.Close(t)
	})

	t.Run("a reloaded tab resumes", func(t *testing.T) {
		before := onlySession(t, srv.Hub()).Info()
		p.Reload(t)
		waitConnected(t, p)
		waitScreen(t, p, q)
		drawn := framesDrawn(t, p)

		// Frames keep coming and keys keep working after the reload.
		p.MustEval(t, el+`.focus()`)
		p.TypeSlowly(t, "echo RELOADED-$((40+2)) > /dev/ttyS0", qemuKeyGap)
		p.KeyPress(t, "Enter")
		q.WaitSerial(t, "RELOADED-42", wait)
		p.WaitFor(t, el+`.stats().framesDrawn > `+strconv.Itoa(drawn), wait)
		waitScreen(t, p, q)

		if n := qemuVNCClients(t, q); n != 1 {
			t.Errorf("after a reload: QEMU has %d VNC clients, want 1", n)
		}
		after := onlySession(t, srv.Hub()).Info()
		if after.ID != before.ID || after.Reconnections != before.Reconnections {
			t.Errorf("after a reload: session %s (%d backend reconnections), want %s (%d)", after.ID, after.Reconnections, before.ID, before.Reconnections)
		}
		noErrors(t, p)
	})
}
