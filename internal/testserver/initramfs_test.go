package testserver

import (
	"bytes"
	"compress/gzip"
	"io"
	"strconv"
	"testing"
)

// cpioEntry is one member of a newc archive as readCPIO sees it.
type cpioEntry struct {
	mode uint32
	data string
}

// readCPIO lists a gzip-compressed newc archive.
func readCPIO(t *testing.T, gz []byte) map[string]cpioEntry {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	align := func(n int) int { return (n + 3) &^ 3 }
	field := func(hdr []byte, i int) int {
		v, err := strconv.ParseUint(string(hdr[6+8*i:14+8*i]), 16, 32)
		if err != nil {
			t.Fatalf("bad header field %d: %q", i, hdr)
		}
		return int(v)
	}
	entries := map[string]cpioEntry{}
	for pos := 0; ; {
		if pos+110 > len(b) || string(b[pos:pos+6]) != "070701" {
			t.Fatalf("no newc header at %d", pos)
		}
		hdr := b[pos : pos+110]
		size, namesize := field(hdr, 6), field(hdr, 11)
		name := string(b[pos+110 : pos+110+namesize-1])
		data := align(pos + 110 + namesize)
		if name == "TRAILER!!!" {
			return entries
		}
		entries[name] = cpioEntry{mode: uint32(field(hdr, 1)), data: string(b[data : data+size])}
		pos = align(data + size)
	}
}

func TestBuildInitramfs(t *testing.T) {
	bb := []byte("\x7fELF pretend busybox")
	a, err := buildInitramfs(bb)
	if err != nil {
		t.Fatal(err)
	}
	b, err := buildInitramfs(bb)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Error("two builds from the same input differ")
	}
	entries := readCPIO(t, a)
	tests := []struct {
		name string
		mode uint32
		data string
	}{
		{"init", cpioFile | 0o755, guestInit},
		{"bin/busybox", cpioFile | 0o755, string(bb)},
		{"bin/sh", cpioLink | 0o777, "busybox"},
		{"etc/inittab", cpioFile | 0o644, guestInittab},
		{"etc/profile", cpioFile | 0o644, guestProfile},
		{"dev/console", cpioChr | 0o600, ""},
		{"proc", cpioDir | 0o755, ""},
	}
	for _, tt := range tests {
		e, ok := entries[tt.name]
		if !ok {
			t.Errorf("%s missing from the archive", tt.name)
			continue
		}
		if e.mode != tt.mode || e.data != tt.data {
			t.Errorf("%s: mode %o data %q, want mode %o data %q", tt.name, e.mode, e.data, tt.mode, tt.data)
		}
	}
}
