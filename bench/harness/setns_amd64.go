//go:build linux && amd64

package harness

// sysSetns is setns(2)'s system call number.
const sysSetns = 308
