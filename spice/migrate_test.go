package spice

import (
	"encoding/binary"
	"testing"
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
