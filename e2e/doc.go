// Package e2e runs kvmgate end to end: a console backend, the real server
// (server.New) and the real browser client in headless Chromium. The tests
// compare what the browser's canvas shows with what the backend holds, and
// check that keys typed in the page reach the console.
//
// The tests need Debian's chromium package; they fail (never skip) without
// it.
package e2e
