package aten

import (
	"bufio"
	"bytes"
	"log/slog"
	"net"
	"time"
)

var discard = slog.New(slog.DiscardHandler)

func newBufReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }

// nopConn swallows writes.
type nopConn struct{ net.Conn }

func (nopConn) Write(b []byte) (int, error)      { return len(b), nil }
func (nopConn) SetWriteDeadline(time.Time) error { return nil }
func (nopConn) Close() error                     { return nil }
