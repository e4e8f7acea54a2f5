// Package client is kvmgate's browser client: plain ES modules, a style
// sheet and the console page, embedded in the binary.
//
// FS holds, at its root: index.html (the console page), app.js (the page's
// script), console.js (the <kvm-console> element and its JS API),
// protocol.js (wire protocol v1, docs/protocol.md), canvas.js (rendering),
// cursor.js, input.js (keyboard and pointer), video.js (WebSocket video with
// WebCodecs), webrtc.js (WebRTC viewer), toolbar.js and style.css.
//
// The server serves index.html at "/" and the whole FS under "/client/"
// (index.html loads "client/app.js" relative to itself, and the page opens
// its WebSocket at "ws" relative to itself, so the console works behind a
// path prefix too). For a console whose page must carry a signed ticket, the
// server serves Page(ticket) instead of the plain index.html.
package client

import (
	"bytes"
	"embed"
	"html"
)

// FS holds the client's files.
//
//go:embed index.html app.js console.js protocol.js canvas.js cursor.js input.js toolbar.js style.css video.js webrtc.js
var FS embed.FS

// indexHTML is the embedded index.html; go:embed guarantees it exists.
var indexHTML, _ = FS.ReadFile("index.html")

// TicketMeta is the empty ticket tag in index.html that Page fills in.
const TicketMeta = `<meta name="kvmgate-ticket" content="">`

// Page returns index.html with ticket in its kvmgate-ticket meta tag, which
// the page passes to the WebSocket as ?ticket= when its own URL has none.
// An empty ticket returns the page unchanged.
func Page(ticket string) []byte {
	page := bytes.Clone(indexHTML)
	if ticket == "" {
		return page
	}
	tag := `<meta name="kvmgate-ticket" content="` + html.EscapeString(ticket) + `">`
	return bytes.Replace(page, []byte(TicketMeta), []byte(tag), 1)
}
