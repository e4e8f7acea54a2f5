package server

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
	"sync"
	"time"
)

// DefaultTicketTTL is how long a ticket stays valid unless configured.
const DefaultTicketTTL = 60 * time.Second

// Ticket errors; Verify wraps nothing, so callers may compare directly.
var (
	ErrTicketMalformed = errors.New("malformed ticket")
	ErrTicketSignature = errors.New("ticket signature does not match")
	ErrTicketExpired   = errors.New("ticket expired")
	ErrTicketRevoked   = errors.New("ticket revoked: its session was ended")
)

const (
	ticketVersion  = 2
	ticketNonceLen = 12
	ticketHeader   = 1 + 8 + ticketNonceLen // version, expiry, nonce
	maxTicketLen   = 4096
)

// Tickets signs and verifies short-lived tickets that grant a browser access
// to one console target. A ticket is base64url(payload) "." base64url(mac)
// where payload is a version byte, the expiry (u64 Unix milliseconds, big
// endian), a random nonce and the target, and mac is HMAC-SHA256 of the
// payload under the server's key. Tickets carry no secrets.
//
// Revoke voids every ticket issued for a target so far (an ended session
// must not be reopened by a ticket handed out for it); tickets issued
// afterwards are valid.
type Tickets struct {
	key []byte
	ttl time.Duration
	now func() time.Time

	mu sync.Mutex
	// revoked maps a target to the time its tickets were revoked; entries
	// live one TTL, after which every ticket they cover has expired anyway.
	revoked map[string]time.Time
}

// NewTickets returns a signer with the given key (32 random bytes if empty)
// and lifetime (DefaultTicketTTL if zero).
func NewTickets(key []byte, ttl time.Duration) *Tickets {
	if len(key) == 0 {
		key = make([]byte, 32)
		_, _ = rand.Read(key)
	}
	ttl = ttl.Truncate(time.Millisecond)
	if ttl <= 0 {
		ttl = DefaultTicketTTL
	}
	return &Tickets{key: append([]byte(nil), key...), ttl: ttl, now: time.Now, revoked: make(map[string]time.Time)}
}

// TTL returns how long new tickets are valid.
func (t *Tickets) TTL() time.Duration { return t.ttl }

func (t *Tickets) mac(payload []byte) []byte {
	m := hmac.New(sha256.New, t.key)
	m.Write([]byte("kvmgate-ticket\x00"))
	m.Write(payload)
	return m.Sum(nil)
}

// Issue returns a new ticket for target and its expiry time.
func (t *Tickets) Issue(target string) (string, time.Time) {
	// The issue time, in whole milliseconds, is exp − TTL; a ticket for a
	// target revoked in this very millisecond starts in the next one, so
	// Verify can tell it from the revoked ones.
	issued := t.now().Truncate(time.Millisecond)
	t.mu.Lock()
	if at, ok := t.revoked[target]; ok && !issued.After(at) {
		issued = at.Add(time.Millisecond)
	}
	t.mu.Unlock()
	exp := issued.Add(t.ttl)
	payload := make([]byte, ticketHeader, ticketHeader+len(target))
	payload[0] = ticketVersion
	binary.BigEndian.PutUint64(payload[1:9], uint64(exp.UnixMilli()))
	_, _ = rand.Read(payload[9:ticketHeader])
	payload = append(payload, target...)
	enc := base64.RawURLEncoding
	return enc.EncodeToString(payload) + "." + enc.EncodeToString(t.mac(payload)), exp
}

// Verify checks a ticket's signature and expiry and returns its target.
func (t *Tickets) Verify(ticket string) (string, error) {
	if len(ticket) > maxTicketLen {
		return "", ErrTicketMalformed
	}
	p, s, ok := strings.Cut(ticket, ".")
	if !ok {
		return "", ErrTicketMalformed
	}
	enc := base64.RawURLEncoding
	payload, err := enc.DecodeString(p)
	if err != nil || len(payload) <= ticketHeader || payload[0] != ticketVersion {
		return "", ErrTicketMalformed
	}
	sig, err := enc.DecodeString(s)
	if err != nil || len(sig) != sha256.Size {
		return "", ErrTicketMalformed
	}
	if !hmac.Equal(sig, t.mac(payload)) {
		return "", ErrTicketSignature
	}
	exp := time.UnixMilli(int64(binary.BigEndian.Uint64(payload[1:9])))
	if !t.now().Before(exp) {
		return "", ErrTicketExpired
	}
	target := string(payload[ticketHeader:])
	t.mu.Lock()
	at, ok := t.revoked[target]
	t.mu.Unlock()
	// A ticket was issued at exp − TTL; those issued up to the revocation's
	// millisecond are void.
	if ok && !exp.Add(-t.ttl).After(at) {
		return "", ErrTicketRevoked
	}
	return target, nil
}

// Revoke voids every ticket issued for target up to now.
func (t *Tickets) Revoke(target string) {
	now := t.now().Truncate(time.Millisecond)
	t.mu.Lock()
	defer t.mu.Unlock()
	for tg, at := range t.revoked {
		if now.Sub(at) > t.ttl {
			delete(t.revoked, tg)
		}
	}
	t.revoked[target] = now
}
