// Package fbs records and replays RFB sessions as FBS files, the
// "FrameBuffer Stream" format of rfbproxy and vncrec that TightVNC's and
// TigerVNC's players read.
//
// An FBS file is the 12-byte line "FBS 001.000\n" followed by blocks. Each
// block holds bytes the RFB server sent, in the order it sent them: a
// big-endian uint32 length n, the n bytes, zero padding up to a multiple of
// four, then a big-endian uint32 timestamp in milliseconds since the
// recording began. The bytes are the server's side of one connection from
// its first byte (the ProtocolVersion line), so the handshake, ServerInit
// and every later message are all there; what the client sent is not.
//
// Because the server's bytes depend on what the client asked for (pixel
// format, encodings, quality), a recording is only replayable by a client
// that asks the same: Meta, stored next to the file as JSON, says what that
// was. A Recorder tees a connection's reads into a Writer; a Relay records
// every connection it forwards; a Player is a net.Conn that plays a
// recording back to kvmgate's rfb.Client, as fast as possible or at the
// recorded pace, optionally stopping after each update so a harness can look
// at every frame.
package fbs

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Magic is the header line of an FBS file, version 1.0.
const Magic = "FBS 001.000\n"

// MaxBlock bounds one block's length so a damaged file cannot make Read
// allocate without limit. rfbproxy writes one block per read() of the
// server socket, far below this.
const MaxBlock = 64 << 20

// Block is one chunk of server bytes and when it arrived.
type Block struct {
	// Data are the server's bytes.
	Data []byte
	// Ms is the arrival time in milliseconds since the recording began.
	Ms uint32
}

// FormatError reports a malformed FBS file.
type FormatError string

func (e FormatError) Error() string { return "fbs: " + string(e) }

// Writer writes an FBS file. It is not safe for concurrent use.
type Writer struct {
	w   io.Writer
	err error
	n   int64 // data bytes written
}

// NewWriter writes the header to w and returns a Writer for the blocks.
func NewWriter(w io.Writer) (*Writer, error) {
	if _, err := io.WriteString(w, Magic); err != nil {
		return nil, fmt.Errorf("fbs: write header: %w", err)
	}
	return &Writer{w: w}, nil
}

// WriteBlock appends one block; empty data writes nothing. After an error
// every later call returns it.
func (w *Writer) WriteBlock(data []byte, ms uint32) error {
	if w.err != nil {
		return w.err
	}
	if len(data) == 0 {
		return nil
	}
	if len(data) > MaxBlock {
		// Split: players concatenate blocks anyway.
		if err := w.WriteBlock(data[:MaxBlock], ms); err != nil {
			return err
		}
		return w.WriteBlock(data[MaxBlock:], ms)
	}
	pad := (4 - len(data)%4) % 4
	buf := make([]byte, 0, 8+len(data)+pad)
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(data)))
	buf = append(buf, data...)
	buf = append(buf, make([]byte, pad)...)
	buf = binary.BigEndian.AppendUint32(buf, ms)
	if _, err := w.w.Write(buf); err != nil {
		w.err = fmt.Errorf("fbs: write block: %w", err)
		return w.err
	}
	w.n += int64(len(data))
	return nil
}

// Bytes returns the number of server bytes written so far.
func (w *Writer) Bytes() int64 { return w.n }

// Read parses a whole FBS stream.
func Read(r io.Reader) ([]Block, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var hdr [len(Magic)]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return nil, FormatError("short header")
	}
	if !strings.HasPrefix(string(hdr[:]), "FBS 001.") || hdr[len(hdr)-1] != '\n' {
		return nil, FormatError(fmt.Sprintf("bad header %q", hdr[:]))
	}
	var blocks []Block
	var last uint32
	for i := 0; ; i++ {
		var lb [4]byte
		if _, err := io.ReadFull(br, lb[:]); err != nil {
			if err == io.EOF {
				return blocks, nil
			}
			return nil, FormatError(fmt.Sprintf("block %d: truncated length", i))
		}
		n := binary.BigEndian.Uint32(lb[:])
		if n > MaxBlock {
			return nil, FormatError(fmt.Sprintf("block %d: length %d over %d", i, n, MaxBlock))
		}
		padded := (int(n) + 3) &^ 3
		buf := make([]byte, padded+4)
		if _, err := io.ReadFull(br, buf); err != nil {
			return nil, FormatError(fmt.Sprintf("block %d: truncated (%d bytes announced)", i, n))
		}
		ms := binary.BigEndian.Uint32(buf[padded:])
		if ms < last {
			// Some recorders' clocks step back; keep time monotonic.
			ms = last
		}
		last = ms
		if n > 0 {
			blocks = append(blocks, Block{Data: buf[:n:n], Ms: ms})
		}
	}
}

// ReadFile reads an FBS file, gunzipping it when its name ends in ".gz".
func ReadFile(path string) ([]Block, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("fbs: %w", err)
	}
	var r io.Reader = bytes.NewReader(b)
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("fbs: %s: %w", path, err)
		}
		defer zr.Close()
		r = zr
	}
	blocks, err := Read(r)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return blocks, nil
}

// Size returns the number of server bytes in blocks.
func Size(blocks []Block) int64 {
	var n int64
	for _, b := range blocks {
		n += int64(len(b.Data))
	}
	return n
}

// Meta says how a recording was made: what the recording client asked the
// server for, which a replaying client must ask for too. It is stored as
// JSON next to the recording (name.json for name.fbs or name.fbs.gz).
type Meta struct {
	// Name identifies the workload, such as "linux-console".
	Name string `json:"name"`
	// Description says what the screen shows and how it was driven.
	Description string `json:"description,omitempty"`
	// Server names the RFB server (its ProtocolVersion banner and program).
	Server string `json:"server,omitempty"`
	// Client names the recording client: "kvmgate" (kvmgate's own rfb
	// client, the source of exact frames) or "novnc-defaults" (kvmgate's
	// rfb client asking what noVNC asks by default).
	Client string `json:"client"`
	// Encodings is the preference list the client sent, by name.
	Encodings []string `json:"encodings,omitempty"`
	// Quality and Compress are the Tight quality and compression levels
	// asked for; -1 means not asked.
	Quality  int `json:"quality"`
	Compress int `json:"compress"`
	// NoContinuousUpdates is set when the client stayed in
	// request/response mode.
	NoContinuousUpdates bool `json:"no_continuous_updates,omitempty"`
	// Password is set when the server asked for VNC authentication; the
	// replay answers the recorded challenge with anything.
	Password bool `json:"password,omitempty"`
	// Link names the emulated path the recording was made through (a
	// harness link profile, see Throttle); empty for loopback. Timestamps
	// of a throttled recording are arrival times at the client.
	Link string `json:"link,omitempty"`
	// Width and Height are the screen size at the start.
	Width  int `json:"width,omitempty"`
	Height int `json:"height,omitempty"`
	// DurationMs is the time of the last block.
	DurationMs uint32 `json:"duration_ms,omitempty"`
	// Bytes is the number of server bytes recorded.
	Bytes int64 `json:"bytes,omitempty"`
	// Command is the command that made the recording.
	Command string `json:"command,omitempty"`
}

// MetaPath returns the path of the metadata file that goes with the
// recording at path.
func MetaPath(path string) string {
	p := strings.TrimSuffix(path, ".gz")
	p = strings.TrimSuffix(p, ".fbs")
	return p + ".json"
}

// ReadMeta reads the metadata that goes with the recording at path.
func ReadMeta(path string) (Meta, error) {
	var m Meta
	b, err := os.ReadFile(MetaPath(path))
	if err != nil {
		return m, fmt.Errorf("fbs: metadata: %w", err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("fbs: metadata %s: %w", MetaPath(path), err)
	}
	if m.Client == "" {
		return m, errors.New("fbs: metadata " + MetaPath(path) + ": no client")
	}
	return m, nil
}

// WriteMeta writes m next to the recording at path.
func WriteMeta(path string, m Meta) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("fbs: metadata: %w", err)
	}
	if err := os.WriteFile(MetaPath(path), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("fbs: metadata: %w", err)
	}
	return nil
}
