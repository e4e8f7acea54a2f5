package spice

import (
	"encoding/binary"
	"net"
	"strconv"
	"testing"
	"time"

	"kvmgate/framebuffer"
)

// switchHost builds a MIGRATE_SWITCH_HOST body: the host name and the
// certificate subject sit after the fixed part, behind pointers.
func switchHost(port, sport uint16, host string) []byte {
	le := binary.LittleEndian
	b := le.AppendUint16(nil, port)
	b = le.AppendUint16(b, sport)
	b = le.AppendUint32(b, uint32(len(host)+1))
	b = le.AppendUint32(b, 20) // host pointer
	b = le.AppendUint32(b, 1)
	b = le.AppendUint32(b, uint32(20+len(host)+1)) // subject pointer
	b = append(b, host...)
	return append(b, 0, 0)
}

func TestMigrationTarget(t *testing.T) {
	for _, tc := range []struct {
		name          string
		body          []byte
		host          string
		port, tlsPort int
		ok            bool
		addr          string
		clientTLSOnly bool
		clientTLSPort int
	}{
		{name: "plain and TLS", body: switchHost(5930, 5931, "dst.example"), host: "dst.example", port: 5930, tlsPort: 5931, ok: true, addr: "dst.example:5930", clientTLSPort: 5931},
		{name: "TLS only", body: switchHost(0, 5931, "10.0.0.2"), host: "10.0.0.2", tlsPort: 5931, ok: true, addr: "10.0.0.2:5931", clientTLSOnly: true, clientTLSPort: 5931},
		{name: "no port", body: switchHost(0, 0, "h"), ok: false},
		{name: "no host", body: switchHost(1, 0, ""), ok: false},
		{name: "truncated", body: switchHost(1, 0, "host")[:14], ok: false},
		{name: "host pointer outside", body: func() []byte { b := switchHost(1, 0, "host"); b[8] = 200; return b }(), ok: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host, port, tlsPort, ok := migrationTarget(tc.body)
			if ok != tc.ok || host != tc.host || port != tc.port || tlsPort != tc.tlsPort {
				t.Fatalf("got %q %d %d %v, want %q %d %d %v", host, port, tlsPort, ok, tc.host, tc.port, tc.tlsPort, tc.ok)
			}
			if !ok {
				return
			}
			c := &Client{addr: "src:5900", tlsOnly: !tc.clientTLSOnly}
			c.setMigrationTarget(host, port, tlsPort)
			if c.addr != tc.addr || c.tlsOnly != tc.clientTLSOnly || c.tlsPort != tc.clientTLSPort {
				t.Errorf("client now dials %s (TLS only %v, TLS port %d), want %s (%v, %d)", c.addr, c.tlsOnly, c.tlsPort, tc.addr, tc.clientTLSOnly, tc.clientTLSPort)
			}
		})
	}
}

// TestMigrationReconnect live-migrates a SeaBIOS machine from one QEMU to
// another while the client watches it: the source's SPICE server tells the
// client where the machine went (MIGRATE_SWITCH_HOST) and the client links
// again there, without Run returning.
func TestMigrationReconnect(t *testing.T) {
	src, srcAddr := spiceQEMU(t, "disable-ticketing=on")
	migPort := freePort(t)
	dst, dstAddr := spiceQEMU(t, "disable-ticketing=on", "-incoming", "tcp:127.0.0.1:"+strconv.Itoa(migPort))
	src.WaitSettled(t, time.Minute)
	fb := framebuffer.New()
	c := runClient(t, srcAddr, Options{}, fb)
	waitFrame(t, fb, screendump(t, src), 30*time.Second)

	_, dstPort, _ := net.SplitHostPort(dstAddr)
	p, _ := strconv.Atoi(dstPort)
	if err := src.QMP("client_migrate_info", map[string]any{"protocol": "spice", "hostname": "127.0.0.1", "port": p}, nil); err != nil {
		t.Fatal(err)
	}
	if err := src.QMP("migrate", map[string]any{"uri": "tcp:127.0.0.1:" + strconv.Itoa(migPort)}, nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for c.Info().Details["address"] != dstAddr {
		if time.Now().After(deadline) {
			t.Fatalf("client still at %s after the migration", c.Info().Details["address"])
		}
		time.Sleep(100 * time.Millisecond)
	}
	var st struct {
		Status string `json:"status"`
	}
	for {
		if err := dst.QMP("query-status", nil, &st); err != nil {
			t.Fatal(err)
		}
		if st.Status == "running" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("destination QEMU is %q", st.Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
	waitFrame(t, fb, screendump(t, dst), 30*time.Second)
	// The client is linked to the destination's SPICE server now.
	var info struct {
		Channels []struct {
			ChannelType int `json:"channel-type"`
		} `json:"channels"`
	}
	for {
		if err := dst.QMP("query-spice", nil, &info); err != nil {
			t.Fatal(err)
		}
		if len(info.Channels) >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("destination SPICE server has %d channels", len(info.Channels))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
