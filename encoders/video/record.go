package video

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Wire protocol record types for WebSocket video (docs/protocol.md).
const (
	// RecordConfig starts a video stream: u16 width, u16 height, u8 n, n
	// bytes of WebCodecs codec string.
	RecordConfig = 0x20
	// RecordFrame carries one encoded frame: u8 flags (FlagKeyframe), u32
	// timestamp in milliseconds since the stream's start, u32 length, data.
	RecordFrame = 0x21
)

// FlagKeyframe marks a RecordFrame whose frame is a keyframe.
const FlagKeyframe = 0x01

// AppendConfig appends a video config record for a w×h stream decoded with
// the WebCodecs codec string codec.
func AppendConfig(dst []byte, w, h int, codec string) []byte {
	if len(codec) > 255 {
		codec = codec[:255]
	}
	dst = append(dst, RecordConfig)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(w))
	dst = binary.LittleEndian.AppendUint16(dst, uint16(h))
	dst = append(dst, byte(len(codec)))
	return append(dst, codec...)
}

// AppendFrame appends a video frame record.
func AppendFrame(dst []byte, f Frame, ms uint32) []byte {
	flags := byte(0)
	if f.Keyframe {
		flags |= FlagKeyframe
	}
	dst = append(dst, RecordFrame, flags)
	dst = binary.LittleEndian.AppendUint32(dst, ms)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(f.Data)))
	return append(dst, f.Data...)
}

// Record is a parsed video record.
type Record struct {
	Type   byte
	W, H   int    // RecordConfig
	Codec  string // RecordConfig
	Frame  Frame  // RecordFrame; Data aliases the parsed bytes
	Millis uint32 // RecordFrame
}

// errShort reports a truncated record.
var errShort = errors.New("video: truncated record")

// ParseRecord parses the video record at the start of b and returns it with
// the number of bytes it took.
func ParseRecord(b []byte) (Record, int, error) {
	if len(b) == 0 {
		return Record{}, 0, errShort
	}
	switch b[0] {
	case RecordConfig:
		if len(b) < 6 {
			return Record{}, 0, errShort
		}
		n := int(b[5])
		if len(b) < 6+n {
			return Record{}, 0, errShort
		}
		return Record{Type: RecordConfig,
			W: int(binary.LittleEndian.Uint16(b[1:])), H: int(binary.LittleEndian.Uint16(b[3:])),
			Codec: string(b[6 : 6+n])}, 6 + n, nil
	case RecordFrame:
		if len(b) < 10 {
			return Record{}, 0, errShort
		}
		n := binary.LittleEndian.Uint32(b[6:])
		if uint64(len(b)-10) < uint64(n) {
			return Record{}, 0, errShort
		}
		return Record{Type: RecordFrame, Millis: binary.LittleEndian.Uint32(b[2:]),
			Frame: Frame{Keyframe: b[1]&FlagKeyframe != 0, Data: b[10 : 10+int(n)]}}, 10 + int(n), nil
	}
	return Record{}, 0, fmt.Errorf("video: record type %#x is not a video record", b[0])
}
