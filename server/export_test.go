package server

import "time"

// SetTicketClock replaces the clock of s (tests only).
func SetTicketClock(s *Tickets, now func() time.Time) { s.now = now }

// RevokedTargets returns how many revocations s keeps (tests only).
func RevokedTargets(s *Tickets) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.revoked)
}
