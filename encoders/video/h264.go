//go:build cgo && openh264

package video

/*
#cgo LDFLAGS: -lopenh264
#include <stdlib.h>
#include <string.h>
#include <stdbool.h>
#include <wels/codec_api.h>

// kvm_h264enc is one openh264 encoder with its parameters, input picture
// and last output, all in C memory.
typedef struct {
	ISVCEncoder *enc;
	SEncParamExt param;
	SSourcePicture pic;
	SFrameBSInfo info;
	unsigned char *buf;
} kvm_h264enc;

static int kvm_h264enc_open(kvm_h264enc *e, int w, int h, int bps, int intra, int threads) {
	if (WelsCreateSVCEncoder(&e->enc) != 0 || e->enc == NULL) return -1;
	ISVCEncoder *enc = e->enc;
	SEncParamExt *p = &e->param;
	(*enc)->GetDefaultParams(enc, p);
	p->iUsageType = SCREEN_CONTENT_REAL_TIME;
	p->iPicWidth = w;
	p->iPicHeight = h;
	p->iTargetBitrate = bps;
	p->iMaxBitrate = UNSPECIFIED_BIT_RATE;
	p->iRCMode = RC_BITRATE_MODE;
	p->fMaxFrameRate = 30;
	p->iTemporalLayerNum = 1;
	p->iSpatialLayerNum = 1;
	p->uiIntraPeriod = intra;
	p->iNumRefFrame = 1;
	p->eSpsPpsIdStrategy = CONSTANT_ID;
	p->bPrefixNalAddingCtrl = false;
	p->bEnableSSEI = false;
	p->iEntropyCodingModeFlag = 0;
	p->bEnableFrameSkip = false;
	p->iMultipleThreadIdc = threads;
	p->bEnableDenoise = false;
	p->bEnableBackgroundDetection = true;
	p->bEnableAdaptiveQuant = true;
	p->bEnableFrameCroppingFlag = true;
	p->bEnableSceneChangeDetect = false;
	p->bEnableLongTermReference = false;
	SSpatialLayerConfig *l = &p->sSpatialLayers[0];
	l->iVideoWidth = w;
	l->iVideoHeight = h;
	l->fFrameRate = 30;
	l->iSpatialBitrate = bps;
	l->iMaxSpatialBitrate = UNSPECIFIED_BIT_RATE;
	l->uiProfileIdc = PRO_BASELINE;
	l->uiLevelIdc = LEVEL_UNKNOWN;
	l->sSliceArgument.uiSliceMode = SM_SINGLE_SLICE;
	l->bVideoSignalTypePresent = true;
	l->uiVideoFormat = VF_UNDEF;
	l->bFullRange = false;
	l->bColorDescriptionPresent = true;
	l->uiColorPrimaries = CP_SMPTE170M;
	l->uiTransferCharacteristics = TRC_SMPTE170M;
	l->uiColorMatrix = CM_SMPTE170M;
	int quiet = WELS_LOG_QUIET;
	(*enc)->SetOption(enc, ENCODER_OPTION_TRACE_LEVEL, &quiet);
	int rv = (*enc)->InitializeExt(enc, p);
	if (rv != 0) return rv;
	int fmt = videoFormatI420;
	(*enc)->SetOption(enc, ENCODER_OPTION_DATAFORMAT, &fmt);
	e->buf = malloc((size_t)w * h * 3 / 2);
	if (e->buf == NULL) return -2;
	SSourcePicture *pic = &e->pic;
	pic->iColorFormat = videoFormatI420;
	pic->iPicWidth = w;
	pic->iPicHeight = h;
	pic->iStride[0] = w;
	pic->iStride[1] = w / 2;
	pic->iStride[2] = w / 2;
	pic->pData[0] = e->buf;
	pic->pData[1] = e->buf + w * h;
	pic->pData[2] = e->buf + w * h + (w / 2) * (h / 2);
	return 0;
}

static void kvm_h264enc_close(kvm_h264enc *e) {
	if (e->enc) {
		(*e->enc)->Uninitialize(e->enc);
		WelsDestroySVCEncoder(e->enc);
	}
	free(e->buf);
	free(e);
}

static int kvm_h264enc_encode(kvm_h264enc *e, long long ms, int key) {
	if (key) (*e->enc)->ForceIntraFrame(e->enc, true);
	e->pic.uiTimeStamp = ms;
	memset(&e->info, 0, sizeof e->info);
	return (*e->enc)->EncodeFrame(e->enc, &e->pic, &e->info);
}

static int kvm_h264enc_bitrate(kvm_h264enc *e, int bps) {
	SBitrateInfo b;
	memset(&b, 0, sizeof b);
	b.iLayer = SPATIAL_LAYER_ALL;
	b.iBitrate = bps;
	e->param.sSpatialLayers[0].iSpatialBitrate = bps;
	return (*e->enc)->SetOption(e->enc, ENCODER_OPTION_BITRATE, &b);
}

// kvm_h264enc_qp sets the QP range (0..51), which takes effect from the
// next IDR picture.
static int kvm_h264enc_qp(kvm_h264enc *e, int qmin, int qmax) {
	e->param.iMinQp = qmin;
	e->param.iMaxQp = qmax;
	e->param.iTargetBitrate = e->param.sSpatialLayers[0].iSpatialBitrate;
	return (*e->enc)->SetOption(e->enc, ENCODER_OPTION_SVC_ENCODE_PARAM_EXT, &e->param);
}

static int kvm_h264enc_layer_size(kvm_h264enc *e, int i) {
	SLayerBSInfo *l = &e->info.sLayerInfo[i];
	int n = 0;
	for (int j = 0; j < l->iNalCount; j++) n += l->pNalLengthInByte[j];
	return n;
}

typedef struct {
	ISVCDecoder *dec;
	SBufferInfo info;
	unsigned char *dst[3];
} kvm_h264dec;

static int kvm_h264dec_open(kvm_h264dec *d) {
	if (WelsCreateDecoder(&d->dec) != 0 || d->dec == NULL) return -1;
	int quiet = WELS_LOG_QUIET;
	(*d->dec)->SetOption(d->dec, DECODER_OPTION_TRACE_LEVEL, &quiet);
	SDecodingParam p;
	memset(&p, 0, sizeof p);
	p.sVideoProperty.eVideoBsType = VIDEO_BITSTREAM_AVC;
	return (int)(*d->dec)->Initialize(d->dec, &p);
}

static void kvm_h264dec_close(kvm_h264dec *d) {
	if (d->dec) {
		(*d->dec)->Uninitialize(d->dec);
		WelsDestroyDecoder(d->dec);
	}
	free(d);
}

static int kvm_h264dec_decode(kvm_h264dec *d, const unsigned char *data, int n) {
	memset(&d->info, 0, sizeof d->info);
	d->dst[0] = d->dst[1] = d->dst[2] = NULL;
	return (int)(*d->dec)->DecodeFrameNoDelay(d->dec, data, n, d->dst, &d->info);
}

static int kvm_h264dec_ready(kvm_h264dec *d) { return d->info.iBufferStatus == 1; }
static int kvm_h264dec_w(kvm_h264dec *d) { return d->info.UsrData.sSystemBuffer.iWidth; }
static int kvm_h264dec_h(kvm_h264dec *d) { return d->info.UsrData.sSystemBuffer.iHeight; }
static int kvm_h264dec_stride(kvm_h264dec *d, int i) { return d->info.UsrData.sSystemBuffer.iStride[i]; }
*/
import "C"

import (
	"errors"
	"fmt"
	"time"
	"unsafe"

	"kvmgate/framebuffer"
)

func h264Available() error { return nil }

// h264Encoder is an openh264 encoder producing constrained baseline
// (CAVLC, one slice, one reference frame) in bitrate mode, tuned for screen
// content. It encodes at even sizes, repeating the last column or row.
type h264Encoder struct {
	c       *C.kvm_h264enc
	w, h    int // the canvas size
	ew, eh  int // the encoded size
	bitrate int
	frames  int
	lastMS  int64
}

func newH264(opts Options) (Encoder, error) {
	c := (*C.kvm_h264enc)(C.calloc(1, C.size_t(unsafe.Sizeof(C.kvm_h264enc{}))))
	if c == nil {
		return nil, errors.New("video: h264: out of memory")
	}
	ew, eh := evenUp(opts.Width), evenUp(opts.Height)
	intra := 0
	if opts.KeyframeInterval > 0 {
		intra = max(1, int(opts.KeyframeInterval*30/time.Second))
	}
	if rv := C.kvm_h264enc_open(c, C.int(ew), C.int(eh), C.int(opts.Bitrate), C.int(intra), C.int(opts.Threads)); rv != 0 {
		C.kvm_h264enc_close(c)
		return nil, fmt.Errorf("video: h264: open encoder %dx%d: openh264 error %d", ew, eh, int(rv))
	}
	return &h264Encoder{c: c, w: opts.Width, h: opts.Height, ew: ew, eh: eh, bitrate: opts.Bitrate}, nil
}

func (e *h264Encoder) Codec() string { return H264 }
func (e *h264Encoder) Bitrate() int  { return e.bitrate }

func (e *h264Encoder) SetBitrate(bps int) error {
	if e.c == nil {
		return errClosed
	}
	bps = clampBitrate(bps)
	if rv := C.kvm_h264enc_bitrate(e.c, C.int(bps)); rv != 0 {
		return fmt.Errorf("video: h264: set bitrate %d: openh264 error %d", bps, int(rv))
	}
	e.bitrate = bps
	return nil
}

func (e *h264Encoder) Refine(dst []byte, src *framebuffer.Canvas, pts time.Duration) (Frame, error) {
	if e.c == nil {
		return Frame{}, errClosed
	}
	if rv := C.kvm_h264enc_bitrate(e.c, C.int(MaxBitrate)); rv != 0 {
		return Frame{}, fmt.Errorf("video: h264: refine: openh264 error %d", int(rv))
	}
	f, err := e.Encode(dst, src, pts, true)
	if rv := C.kvm_h264enc_bitrate(e.c, C.int(e.bitrate)); rv != 0 && err == nil {
		err = fmt.Errorf("video: h264: after refine: openh264 error %d", int(rv))
	}
	return f, err
}

func (e *h264Encoder) Encode(dst []byte, src *framebuffer.Canvas, pts time.Duration, keyframe bool) (Frame, error) {
	if e.c == nil {
		return Frame{}, errClosed
	}
	if src.W != e.w || src.H != e.h {
		return Frame{}, fmt.Errorf("video: h264: picture is %dx%d, encoder %dx%d", src.W, src.H, e.w, e.h)
	}
	cs := e.ew / 2
	ysz, csz := e.ew*e.eh, cs*(e.eh/2)
	buf := unsafe.Slice((*byte)(unsafe.Pointer(e.c.buf)), ysz+2*csz)
	rgbaToI420(buf[:ysz], buf[ysz:ysz+csz], buf[ysz+csz:], e.ew, cs, e.ew, e.eh, src)

	ms := ptsMillis(pts)
	if e.frames > 0 && ms <= e.lastMS {
		ms = e.lastMS + 1
	}
	e.lastMS = ms
	e.frames++
	key := 0
	if keyframe {
		key = 1
	}
	if rv := C.kvm_h264enc_encode(e.c, C.longlong(ms), C.int(key)); rv != 0 {
		return Frame{}, fmt.Errorf("video: h264: encode frame %d: openh264 error %d", e.frames, int(rv))
	}
	info := &e.c.info
	f := Frame{Data: dst}
	if info.eFrameType == C.videoFrameTypeSkip {
		return f, nil
	}
	f.Keyframe = info.eFrameType == C.videoFrameTypeIDR
	for i := 0; i < int(info.iLayerNum); i++ {
		n := int(C.kvm_h264enc_layer_size(e.c, C.int(i)))
		if n > 0 {
			f.Data = append(f.Data, unsafe.Slice((*byte)(unsafe.Pointer(info.sLayerInfo[i].pBsBuf)), n)...)
		}
	}
	return f, nil
}

func (e *h264Encoder) Close() error {
	if e.c != nil {
		C.kvm_h264enc_close(e.c)
		e.c = nil
	}
	return nil
}

// h264Decoder is an openh264 decoder.
type h264Decoder struct {
	c   *C.kvm_h264dec
	pic Picture
}

func newH264Decoder() (Decoder, error) {
	c := (*C.kvm_h264dec)(C.calloc(1, C.size_t(unsafe.Sizeof(C.kvm_h264dec{}))))
	if c == nil {
		return nil, errors.New("video: h264: out of memory")
	}
	if rv := C.kvm_h264dec_open(c); rv != 0 {
		C.kvm_h264dec_close(c)
		return nil, fmt.Errorf("video: h264: open decoder: openh264 error %d", int(rv))
	}
	return &h264Decoder{c: c}, nil
}

func (d *h264Decoder) Decode(data []byte) (*Picture, error) {
	if d.c == nil {
		return nil, errClosed
	}
	if len(data) == 0 {
		return nil, errors.New("video: h264: empty access unit")
	}
	if st := C.kvm_h264dec_decode(d.c, (*C.uchar)(unsafe.Pointer(&data[0])), C.int(len(data))); st != 0 {
		return nil, fmt.Errorf("video: h264: decode %d bytes: decoding state %#x", len(data), int(st))
	}
	if C.kvm_h264dec_ready(d.c) == 0 {
		return nil, nil
	}
	w, h := int(C.kvm_h264dec_w(d.c)), int(C.kvm_h264dec_h(d.c))
	ys, cs := int(C.kvm_h264dec_stride(d.c, 0)), int(C.kvm_h264dec_stride(d.c, 1))
	ch := (h + 1) / 2
	copyPicture(&d.pic, w, h,
		unsafe.Slice((*byte)(unsafe.Pointer(d.c.dst[0])), ys*h), ys,
		unsafe.Slice((*byte)(unsafe.Pointer(d.c.dst[1])), cs*ch),
		unsafe.Slice((*byte)(unsafe.Pointer(d.c.dst[2])), cs*ch), cs)
	return &d.pic, nil
}

func (d *h264Decoder) Close() error {
	if d.c != nil {
		C.kvm_h264dec_close(d.c)
		d.c = nil
	}
	return nil
}
