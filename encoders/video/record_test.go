package video_test

import (
	"bytes"
	"testing"

	"kvmgate/encoders/video"
)

func TestRecords(t *testing.T) {
	b := video.AppendConfig(nil, 1280, 800, "avc1.42c028")
	b = video.AppendFrame(b, video.Frame{Data: []byte{1, 2, 3}, Keyframe: true}, 1234)
	b = video.AppendFrame(b, video.Frame{Data: []byte{4}}, 1300)
	want := []video.Record{
		{Type: video.RecordConfig, W: 1280, H: 800, Codec: "avc1.42c028"},
		{Type: video.RecordFrame, Millis: 1234, Frame: video.Frame{Data: []byte{1, 2, 3}, Keyframe: true}},
		{Type: video.RecordFrame, Millis: 1300, Frame: video.Frame{Data: []byte{4}}},
	}
	for i, w := range want {
		r, n, err := video.ParseRecord(b)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if r.Type != w.Type || r.W != w.W || r.H != w.H || r.Codec != w.Codec || r.Millis != w.Millis ||
			r.Frame.Keyframe != w.Frame.Keyframe || !bytes.Equal(r.Frame.Data, w.Frame.Data) {
			t.Errorf("record %d = %+v, want %+v", i, r, w)
		}
		b = b[n:]
	}
	if len(b) != 0 {
		t.Errorf("%d bytes left", len(b))
	}
	full := video.AppendFrame(nil, video.Frame{Data: []byte{9, 9}}, 1)
	for n := range len(full) {
		if _, _, err := video.ParseRecord(full[:n]); err == nil {
			t.Errorf("a frame record cut to %d bytes parsed", n)
		}
	}
	if _, _, err := video.ParseRecord([]byte{0x17, 0, 0}); err == nil {
		t.Error("a frame end record parsed as video")
	}
}
