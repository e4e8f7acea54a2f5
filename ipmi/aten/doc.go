// Package aten holds the video codecs of the ATEN iKVM, the remote console of
// Supermicro BMCs (X7 to X11 boards), so that kvmgate can show those consoles
// without the vendor's Java applet.
//
// ATEN's RFB variant carries the screen in one of two proprietary encodings:
//
//   - AST2100 (encoding 0x57), the JPEG-like codec of the ASPEED video engine
//     (AST2100/AST2300/AST2400 BMCs, X9 to X11 boards): Huffman-coded 8×8
//     DCT blocks in 4:2:0 or 4:4:4, vector-quantised (VQ) blocks of up to four
//     colours, a two-pass refinement and position jumps for incremental
//     frames. AST2100Decoder decodes it; it keeps the state that spans frames.
//   - HERMON (encoding 0x59, sent as 0x00 by older firmware), RGB555 pixels as
//     16×16 tiles or a raw rectangle, used by the older WPCM450 BMCs.
//     DecodeHermon decodes it; it needs no state.
//
// Both decoders take the bytes that follow the rectangle's 8-byte ATEN
// prefix (4 unknown bytes and a 32-bit big-endian length), which the RFB
// reader strips, and write RGBA pixels into a framebuffer.Canvas, recording
// what they repainted in a framebuffer.Batch when one is given. Neither
// panics on malformed input: errors are wrapped FormatError values.
package aten

// RFB encoding numbers of the ATEN video encodings.
const (
	// EncodingAST2100 is the ASPEED AST2100 video codec.
	EncodingAST2100 = 0x57
	// EncodingHermon is the HERMON RGB555 tile/raw encoding.
	EncodingHermon = 0x59
	// EncodingHermonLegacy is the number older ATEN firmware uses for HERMON
	// (it reuses Raw's number for a different format).
	EncodingHermonLegacy = 0x00
)

// FormatError reports that the input is not a valid ATEN video payload; its
// text says what was wrong and where.
type FormatError string

func (e FormatError) Error() string { return "aten: " + string(e) }
