package spice

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
)

// fakeLinkServer answers one link on conn like a SPICE server: it checks the
// link message, sends a reply with its RSA key, reads the auth mechanism and
// the ticket, and answers OK if the ticket decrypts to password.
func fakeLinkServer(t *testing.T, conn net.Conn, key *rsa.PrivateKey, replyErr LinkErr, password string) error {
	defer conn.Close()
	le := binary.LittleEndian
	var h [16]byte
	if _, err := io.ReadFull(conn, h[:]); err != nil {
		return err
	}
	if le.Uint32(h[:]) != linkMagic || le.Uint32(h[4:]) != 2 {
		return errors.New("bad link header")
	}
	body := make([]byte, le.Uint32(h[12:]))
	if _, err := io.ReadFull(conn, body); err != nil {
		return err
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	if len(der) != pubKeySize {
		return errors.New("key size")
	}
	var rep []byte
	rep = le.AppendUint32(rep, uint32(replyErr))
	rep = append(rep, der...)
	rep = le.AppendUint32(rep, 1)
	rep = le.AppendUint32(rep, 0)
	rep = le.AppendUint32(rep, uint32(4+pubKeySize+12))
	rep = le.AppendUint32(rep, 1<<capAuthSelection|1<<capAuthSpice|1<<capMiniHeader)
	out := append([]byte("REDQ"), le.AppendUint32(le.AppendUint32(le.AppendUint32(nil, 2), 2), uint32(len(rep)))...)
	if _, err := conn.Write(append(out, rep...)); err != nil {
		return err
	}
	if replyErr != LinkOK {
		return nil
	}
	var auth [4 + ticketSize]byte
	if _, err := io.ReadFull(conn, auth[:]); err != nil {
		return err
	}
	if le.Uint32(auth[:]) != capAuthSpice {
		return errors.New("auth mechanism")
	}
	pt, err := rsa.DecryptOAEP(sha1.New(), nil, key, auth[4:], nil)
	res := LinkOK
	if err != nil || string(pt) != password+"\x00" {
		res = LinkErrPermissionDenied
	}
	_, err = conn.Write(le.AppendUint32(nil, uint32(res)))
	return err
}

func TestLink(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		replyErr LinkErr
		server   string
		client   string
		want     LinkErr
	}{
		{"ticket ok", LinkOK, "pw", "pw", LinkOK},
		{"empty ticket", LinkOK, "", "", LinkOK},
		{"wrong ticket", LinkOK, "pw", "nope", LinkErrPermissionDenied},
		{"need secured", LinkErrNeedSecured, "", "", LinkErrNeedSecured},
		{"bad connection id", LinkErrBadConnectionID, "", "", LinkErrBadConnectionID},
		{"not available", LinkErrChannelNotAvailable, "", "", LinkErrChannelNotAvailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, s := net.Pipe()
			done := make(chan error, 1)
			go func() { done <- fakeLinkServer(t, s, key, tc.replyErr, tc.server) }()
			res, err := link(c, linkParams{chType: ChannelMain, commonCaps: capBits(capAuthSelection, capAuthSpice, capMiniHeader), password: tc.client})
			c.Close()
			if serr := <-done; serr != nil && tc.want == LinkOK {
				t.Fatalf("server: %v", serr)
			}
			if tc.want == LinkOK {
				if err != nil {
					t.Fatal(err)
				}
				if !res.mini {
					t.Error("mini header not negotiated")
				}
				return
			}
			var le *LinkError
			if !errors.As(err, &le) || le.Code != tc.want {
				t.Fatalf("got %v, want link error %v", err, tc.want)
			}
			if le.Error() == "" || le.Code.String() == "" {
				t.Error("empty error text")
			}
		})
	}
}

func TestLinkErrText(t *testing.T) {
	for e := LinkOK; e <= LinkErrChannelNotAvailable+1; e++ {
		if e.String() == "" {
			t.Errorf("LinkErr %d has no text", e)
		}
	}
}
