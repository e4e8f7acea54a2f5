//go:build cgo && libvpx

package video

/*
#cgo LDFLAGS: -lvpx
#include <stdlib.h>
#include <string.h>
#include <vpx/vpx_encoder.h>
#include <vpx/vp8cx.h>
#include <vpx/vpx_decoder.h>
#include <vpx/vp8dx.h>

#define KVM_VP8_QMIN 2
#define KVM_VP8_QMAX 56
#define KVM_VP8_QREFINE 8

// kvm_vp8enc is one VP8 encoder with its configuration and input picture,
// all in C memory.
typedef struct {
	vpx_codec_ctx_t ctx;
	vpx_codec_enc_cfg_t cfg;
	vpx_image_t *img;
	vpx_codec_iter_t iter;
	int inited;
} kvm_vp8enc;

static const char *kvm_vp8enc_open(kvm_vp8enc *e, int w, int h, int kbps, int kfmax, int threads) {
	vpx_codec_err_t err = vpx_codec_enc_config_default(vpx_codec_vp8_cx(), &e->cfg, 0);
	if (err != VPX_CODEC_OK) return vpx_codec_err_to_string(err);
	vpx_codec_enc_cfg_t *c = &e->cfg;
	c->g_w = w;
	c->g_h = h;
	c->g_timebase.num = 1;
	c->g_timebase.den = 1000;
	c->g_threads = threads;
	c->g_lag_in_frames = 0;
	c->g_error_resilient = VPX_ERROR_RESILIENT_DEFAULT;
	c->rc_end_usage = VPX_CBR;
	c->rc_target_bitrate = kbps;
	c->rc_dropframe_thresh = 0;
	c->rc_resize_allowed = 0;
	c->rc_min_quantizer = KVM_VP8_QMIN;
	c->rc_max_quantizer = KVM_VP8_QMAX;
	c->rc_undershoot_pct = 100;
	c->rc_overshoot_pct = 15;
	c->rc_buf_sz = 1000;
	c->rc_buf_initial_sz = 500;
	c->rc_buf_optimal_sz = 600;
	if (kfmax > 0) {
		c->kf_mode = VPX_KF_AUTO;
		c->kf_min_dist = 0;
		c->kf_max_dist = kfmax;
	} else {
		c->kf_mode = VPX_KF_DISABLED;
	}
	err = vpx_codec_enc_init(&e->ctx, vpx_codec_vp8_cx(), c, 0);
	if (err != VPX_CODEC_OK) return vpx_codec_err_to_string(err);
	e->inited = 1;
	vpx_codec_control(&e->ctx, VP8E_SET_CPUUSED, 8);
	vpx_codec_control(&e->ctx, VP8E_SET_NOISE_SENSITIVITY, 0);
	vpx_codec_control(&e->ctx, VP8E_SET_SCREEN_CONTENT_MODE, 1);
	vpx_codec_control(&e->ctx, VP8E_SET_MAX_INTRA_BITRATE_PCT, 900);
	e->img = vpx_img_alloc(NULL, VPX_IMG_FMT_I420, w, h, 16);
	if (e->img == NULL) return "out of memory for the input picture";
	return NULL;
}

static void kvm_vp8enc_close(kvm_vp8enc *e) {
	if (e->inited) vpx_codec_destroy(&e->ctx);
	if (e->img) vpx_img_free(e->img);
	free(e);
}

static const char *kvm_vp8enc_encode(kvm_vp8enc *e, long long pts, unsigned long dur, int key) {
	vpx_codec_err_t err = vpx_codec_encode(&e->ctx, e->img, pts, dur, key ? VPX_EFLAG_FORCE_KF : 0, VPX_DL_REALTIME);
	e->iter = NULL;
	if (err != VPX_CODEC_OK) {
		const char *d = vpx_codec_error_detail(&e->ctx);
		return d ? d : vpx_codec_err_to_string(err);
	}
	return NULL;
}

// kvm_vp8enc_next returns the next compressed frame of the last encode.
static int kvm_vp8enc_next(kvm_vp8enc *e, const void **buf, size_t *sz, int *key) {
	const vpx_codec_cx_pkt_t *pkt;
	while ((pkt = vpx_codec_get_cx_data(&e->ctx, &e->iter)) != NULL) {
		if (pkt->kind == VPX_CODEC_CX_FRAME_PKT) {
			*buf = pkt->data.frame.buf;
			*sz = pkt->data.frame.sz;
			*key = (pkt->data.frame.flags & VPX_FRAME_IS_KEY) != 0;
			return 1;
		}
	}
	return 0;
}

// kvm_vp8enc_quant sets the quantizer range (0..63).
static const char *kvm_vp8enc_quant(kvm_vp8enc *e, int qmin, int qmax) {
	e->cfg.rc_min_quantizer = qmin;
	e->cfg.rc_max_quantizer = qmax;
	vpx_codec_err_t err = vpx_codec_enc_config_set(&e->ctx, &e->cfg);
	return err == VPX_CODEC_OK ? NULL : vpx_codec_err_to_string(err);
}

static const char *kvm_vp8enc_bitrate(kvm_vp8enc *e, int kbps) {
	e->cfg.rc_target_bitrate = kbps;
	vpx_codec_err_t err = vpx_codec_enc_config_set(&e->ctx, &e->cfg);
	return err == VPX_CODEC_OK ? NULL : vpx_codec_err_to_string(err);
}

typedef struct {
	vpx_codec_ctx_t ctx;
	vpx_codec_iter_t iter;
	int inited;
} kvm_vp8dec;

static const char *kvm_vp8dec_open(kvm_vp8dec *d) {
	vpx_codec_err_t err = vpx_codec_dec_init(&d->ctx, vpx_codec_vp8_dx(), NULL, 0);
	if (err != VPX_CODEC_OK) return vpx_codec_err_to_string(err);
	d->inited = 1;
	return NULL;
}

static void kvm_vp8dec_close(kvm_vp8dec *d) {
	if (d->inited) vpx_codec_destroy(&d->ctx);
	free(d);
}

static const char *kvm_vp8dec_decode(kvm_vp8dec *d, const unsigned char *data, unsigned int n) {
	d->iter = NULL;
	vpx_codec_err_t err = vpx_codec_decode(&d->ctx, data, n, NULL, 0);
	if (err != VPX_CODEC_OK) {
		const char *s = vpx_codec_error_detail(&d->ctx);
		return s ? s : vpx_codec_err_to_string(err);
	}
	return NULL;
}

static vpx_image_t *kvm_vp8dec_next(kvm_vp8dec *d) { return vpx_codec_get_frame(&d->ctx, &d->iter); }
*/
import "C"

import (
	"errors"
	"fmt"
	"time"
	"unsafe"

	"kvmgate/framebuffer"
)

func vp8Available() error { return nil }

// vp8Encoder is a libvpx VP8 encoder in real-time, constant-bitrate mode
// with screen-content tuning.
type vp8Encoder struct {
	c       *C.kvm_vp8enc
	w, h    int
	bitrate int
	lastPTS time.Duration
	frames  int
}

func newVP8(opts Options) (Encoder, error) {
	c := (*C.kvm_vp8enc)(C.calloc(1, C.size_t(unsafe.Sizeof(C.kvm_vp8enc{}))))
	if c == nil {
		return nil, errors.New("video: vp8: out of memory")
	}
	kf := 0
	if opts.KeyframeInterval > 0 {
		kf = max(1, int(opts.KeyframeInterval*30/time.Second))
	}
	if msg := C.kvm_vp8enc_open(c, C.int(opts.Width), C.int(opts.Height), C.int(opts.Bitrate/1000), C.int(kf), C.int(opts.Threads)); msg != nil {
		err := fmt.Errorf("video: vp8: open encoder %dx%d: %s", opts.Width, opts.Height, C.GoString(msg))
		C.kvm_vp8enc_close(c)
		return nil, err
	}
	return &vp8Encoder{c: c, w: opts.Width, h: opts.Height, bitrate: opts.Bitrate}, nil
}

func (e *vp8Encoder) Codec() string { return VP8 }
func (e *vp8Encoder) Bitrate() int  { return e.bitrate }

func (e *vp8Encoder) SetBitrate(bps int) error {
	if e.c == nil {
		return errClosed
	}
	bps = clampBitrate(bps)
	if msg := C.kvm_vp8enc_bitrate(e.c, C.int(bps/1000)); msg != nil {
		return fmt.Errorf("video: vp8: set bitrate %d: %s", bps, C.GoString(msg))
	}
	e.bitrate = bps
	return nil
}

func (e *vp8Encoder) Refine(dst []byte, src *framebuffer.Canvas, pts time.Duration) (Frame, error) {
	if e.c == nil {
		return Frame{}, errClosed
	}
	if msg := C.kvm_vp8enc_quant(e.c, C.KVM_VP8_QMIN, C.KVM_VP8_QREFINE); msg != nil {
		return Frame{}, fmt.Errorf("video: vp8: refine: %s", C.GoString(msg))
	}
	f, err := e.Encode(dst, src, pts, true)
	if msg := C.kvm_vp8enc_quant(e.c, C.KVM_VP8_QMIN, C.KVM_VP8_QMAX); msg != nil && err == nil {
		err = fmt.Errorf("video: vp8: after refine: %s", C.GoString(msg))
	}
	return f, err
}

func (e *vp8Encoder) Encode(dst []byte, src *framebuffer.Canvas, pts time.Duration, keyframe bool) (Frame, error) {
	if e.c == nil {
		return Frame{}, errClosed
	}
	if src.W != e.w || src.H != e.h {
		return Frame{}, fmt.Errorf("video: vp8: picture is %dx%d, encoder %dx%d", src.W, src.H, e.w, e.h)
	}
	img := e.c.img
	ys, cs := int(img.stride[0]), int(img.stride[1])
	ch := (e.h + 1) / 2
	y := unsafe.Slice((*byte)(unsafe.Pointer(img.planes[0])), ys*e.h)
	u := unsafe.Slice((*byte)(unsafe.Pointer(img.planes[1])), cs*ch)
	v := unsafe.Slice((*byte)(unsafe.Pointer(img.planes[2])), cs*ch)
	rgbaToI420(y, u, v, ys, cs, e.w, e.h, src)

	dur := time.Second / 30
	if e.frames > 0 {
		if pts <= e.lastPTS {
			pts = e.lastPTS + time.Millisecond
		}
		dur = pts - e.lastPTS
	}
	e.lastPTS = pts
	e.frames++
	key := 0
	if keyframe {
		key = 1
	}
	if msg := C.kvm_vp8enc_encode(e.c, C.longlong(ptsMillis(pts)), C.ulong(max(1, ptsMillis(dur))), C.int(key)); msg != nil {
		return Frame{}, fmt.Errorf("video: vp8: encode frame %d: %s", e.frames, C.GoString(msg))
	}
	f := Frame{Data: dst}
	var buf unsafe.Pointer
	var sz C.size_t
	var isKey C.int
	for C.kvm_vp8enc_next(e.c, &buf, &sz, &isKey) != 0 {
		f.Data = append(f.Data, unsafe.Slice((*byte)(buf), int(sz))...)
		f.Keyframe = f.Keyframe || isKey != 0
	}
	return f, nil
}

func (e *vp8Encoder) Close() error {
	if e.c != nil {
		C.kvm_vp8enc_close(e.c)
		e.c = nil
	}
	return nil
}

// vp8Decoder is a libvpx VP8 decoder.
type vp8Decoder struct {
	c   *C.kvm_vp8dec
	pic Picture
}

func newVP8Decoder() (Decoder, error) {
	c := (*C.kvm_vp8dec)(C.calloc(1, C.size_t(unsafe.Sizeof(C.kvm_vp8dec{}))))
	if c == nil {
		return nil, errors.New("video: vp8: out of memory")
	}
	if msg := C.kvm_vp8dec_open(c); msg != nil {
		err := fmt.Errorf("video: vp8: open decoder: %s", C.GoString(msg))
		C.kvm_vp8dec_close(c)
		return nil, err
	}
	return &vp8Decoder{c: c}, nil
}

func (d *vp8Decoder) Decode(data []byte) (*Picture, error) {
	if d.c == nil {
		return nil, errClosed
	}
	if len(data) == 0 {
		return nil, errors.New("video: vp8: empty frame")
	}
	if msg := C.kvm_vp8dec_decode(d.c, (*C.uchar)(unsafe.Pointer(&data[0])), C.uint(len(data))); msg != nil {
		return nil, fmt.Errorf("video: vp8: decode %d bytes: %s", len(data), C.GoString(msg))
	}
	img := C.kvm_vp8dec_next(d.c)
	if img == nil {
		return nil, nil
	}
	if img.fmt != C.VPX_IMG_FMT_I420 {
		return nil, fmt.Errorf("video: vp8: decoded picture format %d, want I420", img.fmt)
	}
	w, h := int(img.d_w), int(img.d_h)
	ys, cs := int(img.stride[0]), int(img.stride[1])
	ch := (h + 1) / 2
	copyPicture(&d.pic, w, h,
		unsafe.Slice((*byte)(unsafe.Pointer(img.planes[0])), ys*h), ys,
		unsafe.Slice((*byte)(unsafe.Pointer(img.planes[1])), cs*ch),
		unsafe.Slice((*byte)(unsafe.Pointer(img.planes[2])), cs*ch), cs)
	return &d.pic, nil
}

func (d *vp8Decoder) Close() error {
	if d.c != nil {
		C.kvm_vp8dec_close(d.c)
		d.c = nil
	}
	return nil
}
