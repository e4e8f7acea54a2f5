package server

import "time"

// SetTicketClock replaces the clock of s (tests only).
func SetTicketClock(s *Tickets, now func() time.Time) { s.now = now }
