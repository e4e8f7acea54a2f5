package spice

import (
	"encoding/binary"
	"fmt"
	"math/bits"

	"kvmgate/framebuffer"
)

// QUIC is SPICE's lossless image codec for photographic content: each
// colour channel is predicted from its left and upper neighbours, the
// prediction error is mapped to a non-negative value and Golomb-Rice coded
// with a code length chosen by an adaptive model (buckets of counters indexed
// by the previous pixel's error). Runs of equal pixels are coded with a
// MELCODE run length. The model is updated only at pseudo-random pixels
// (a fixed "chaos" table), so a decoder must follow the encoder's schedule
// exactly; this file follows the description in spice-common's quic.c.

// QUIC image types (QUIC_IMAGE_TYPE_*).
const (
	quicGray  = 1
	quicRGB16 = 2
	quicRGB24 = 3
	quicRGB32 = 4
	quicRGBA  = 5

	quicMagic      = 0x43495551 // "QUIC"
	quicVersion    = 0
	quicMaxCodes   = 8
	quicLimit      = 26 // codeword length limit
	quicWMIMax     = 6
	quicWMINext    = 2048
	quicMelcStates = 32
)

// quicFamily holds the Golomb code tables for one bit depth.
type quicFamily struct {
	bpc          uint32
	mask         uint32
	nGRCodewords [quicMaxCodes]uint32
	notGRCwLen   [quicMaxCodes]uint32
	notGRPrefix  [quicMaxCodes]uint32
	notGRSuffix  [quicMaxCodes]uint32
	codeLen      [256][quicMaxCodes]uint32
	xlatL2U      [256]byte
	bucketOf     [256]uint8 // context value → bucket number
	nBuckets     int
}

var quicFamily8, quicFamily5 = newQUICFamily(8), newQUICFamily(5)

func bppMask(n uint32) uint32 {
	if n >= 32 {
		return 0xffffffff
	}
	return 1<<n - 1
}

func ceilLog2(v uint32) uint32 {
	if v <= 1 {
		return 0
	}
	return uint32(bits.Len32(v - 1))
}

func newQUICFamily(bpc uint32) *quicFamily {
	f := &quicFamily{bpc: bpc, mask: bppMask(bpc)}
	for l := uint32(0); l < bpc; l++ {
		alt := uint32(quicLimit) - bpc
		if alt > bppMask(bpc-l) {
			alt = bppMask(bpc - l)
		}
		altCodewords := bppMask(bpc) + 1 - alt<<l
		f.nGRCodewords[l] = alt << l
		f.notGRSuffix[l] = ceilLog2(altCodewords)
		f.notGRCwLen[l] = alt + f.notGRSuffix[l]
		f.notGRPrefix[l] = bppMask(32 - alt)
		for b := uint32(0); b < 256; b++ {
			if b < f.nGRCodewords[l] {
				f.codeLen[b][l] = b>>l + l + 1
			} else {
				f.codeLen[b][l] = f.notGRCwLen[l]
			}
		}
	}
	for s := uint32(0); s <= f.mask; s++ {
		if s&1 != 0 {
			f.xlatL2U[s] = byte(f.mask - s>>1)
		} else {
			f.xlatL2U[s] = byte(s >> 1)
		}
	}
	// Buckets of 1, 2, 4, 8... context values (model evolution 3), the
	// last one absorbing a remainder smaller than the next size.
	levels := uint32(1) << bpc
	var bend, bnumber uint32
	repcntr, bsize := uint32(2), uint32(1)
	for {
		bstart := uint32(0)
		if bnumber > 0 {
			bstart = bend + 1
		}
		repcntr--
		if repcntr == 0 {
			repcntr = 1
			bsize *= 2
		}
		bend = bstart + bsize - 1
		if bend+bsize >= levels {
			bend = levels - 1
		}
		for i := bstart; i <= bend; i++ {
			f.bucketOf[i] = uint8(bnumber)
		}
		bnumber++
		if bend >= levels-1 {
			break
		}
	}
	f.nBuckets = int(bnumber)
	return f
}

// decode returns the value of the Golomb codeword at the top of b for
// code l, and the codeword's length.
func (f *quicFamily) decode(l, b uint32) (uint32, uint32) {
	if b > f.notGRPrefix[l] {
		zp := uint32(bits.LeadingZeros32(b))
		n := zp + 1 + l
		return zp<<l | (b>>(32-n))&bppMask(l), n
	}
	n := f.notGRCwLen[l]
	return f.nGRCodewords[l] + (b>>(32-n))&bppMask(f.notGRSuffix[l]), n
}

var quicTrigger = [11]uint32{110, 550, 900, 800, 550, 400, 350, 250, 140, 160, 140}

var quicMelcLen = [quicMelcStates]uint32{
	0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 9, 10, 11, 12, 13, 14, 15,
}

// quicState is the model schedule and run-length state shared by the
// channels coded together.
type quicState struct {
	waitcnt   uint32
	seed      uint32
	wmTrigger uint32
	wmidx     uint32
	wmileft   uint32
	melcState int
	melcLen   uint32
	melcOrder uint32
}

func (s *quicState) reset() {
	*s = quicState{seed: 0xff, wmileft: quicWMINext}
	s.setTrigger()
	s.melcLen = quicMelcLen[0]
	s.melcOrder = 1 << s.melcLen
}

func (s *quicState) setTrigger() { s.wmTrigger = quicTrigger[min(s.wmidx, 10)] }

func (s *quicState) tabrand() uint32 {
	s.seed++
	return quicChaos[s.seed&0xff]
}

type quicBucket struct {
	counters [quicMaxCodes]uint32
	best     uint32
}

// quicChannel is one colour channel's model and rows.
type quicChannel struct {
	f       *quicFamily
	buckets []quicBucket
	corr    []byte // correlate row; corr[0] is the value left of pixel 0
	prev    []byte
	cur     []byte
}

func newQUICChannel(f *quicFamily, width int) *quicChannel {
	c := &quicChannel{f: f, buckets: make([]quicBucket, f.nBuckets),
		corr: make([]byte, width+1), prev: make([]byte, width), cur: make([]byte, width)}
	for i := range c.buckets {
		c.buckets[i].best = f.bpc - 1
	}
	return c
}

func (c *quicChannel) bucket(v byte) *quicBucket {
	return &c.buckets[c.f.bucketOf[uint32(v)&c.f.mask]]
}

func (c *quicChannel) updateModel(st *quicState, b *quicBucket, v byte) {
	bpp := c.f.bpc
	best := bpp - 1
	b.counters[best] += c.f.codeLen[v][best]
	bestLen := b.counters[best]
	for i := int(bpp) - 2; i >= 0; i-- {
		b.counters[i] += c.f.codeLen[v][i]
		if b.counters[i] < bestLen {
			best, bestLen = uint32(i), b.counters[i]
		}
	}
	b.best = best
	if bestLen > st.wmTrigger {
		for i := uint32(0); i < bpp; i++ {
			b.counters[i] >>= 1
		}
	}
}

// quicBits reads the stream's 32-bit little-endian words MSB first.
type quicBits struct {
	words   []byte
	pos     int
	word    uint32
	next    uint32
	avail   uint32
	overrun int
}

func (b *quicBits) readWord() {
	if b.pos+4 > len(b.words) {
		b.next = 0
		b.overrun++
		return
	}
	b.next = binary.LittleEndian.Uint32(b.words[b.pos:])
	b.pos += 4
}

func (b *quicBits) eat(n uint32) {
	b.word <<= n
	if b.avail >= n {
		b.avail -= n
		b.word |= b.next >> b.avail
		return
	}
	delta := n - b.avail
	b.word |= b.next << delta
	b.readWord()
	b.avail = 32 - delta
	b.word |= b.next >> b.avail
}

func (b *quicBits) eat32() {
	b.eat(16)
	b.eat(16)
}

// quicDecoder decodes one image.
type quicDecoder struct {
	in    quicBits
	width int
}

// DecodeQUIC decodes a SPICE QUIC image to an RGBA canvas.
func DecodeQUIC(data []byte) (*framebuffer.Canvas, error) {
	if len(data) < 4*6 {
		return nil, FormatError(fmt.Sprintf("QUIC image of %d bytes", len(data)))
	}
	d := &quicDecoder{}
	d.in.words = data[:len(data)&^3]
	d.in.readWord()
	d.in.word = d.in.next
	read := func() uint32 {
		v := d.in.word
		d.in.eat32()
		return v
	}
	if m := read(); m != quicMagic {
		return nil, FormatError(fmt.Sprintf("QUIC magic %#08x", m))
	}
	if v := read(); v != quicVersion {
		return nil, FormatError(fmt.Sprintf("QUIC version %#08x", v))
	}
	typ, w, h := read(), read(), read()
	if w == 0 || h == 0 || framebuffer.CheckSize(int(w), int(h)) != nil {
		return nil, FormatError(fmt.Sprintf("QUIC image of %dx%d", w, h))
	}
	width, height := int(w), int(h)
	d.width = width
	// Every pixel of the first row and the first pixel of every other row
	// take at least one bit (runs only start after three pixels), so a
	// tiny hostile message cannot make us allocate a huge canvas.
	if width > 8*len(data) || height > 8*len(data) {
		return nil, FormatError(fmt.Sprintf("QUIC image of %dx%d in %d bytes", w, h, len(data)))
	}
	// The canvas grows row by row, so a lying header costs memory only
	// for the rows the data really holds.
	c := &framebuffer.Canvas{W: width, H: height, Stride: 4 * width, Pix: make([]byte, 0, 4*width*min(height, 64))}
	var rgbState quicState
	rgbState.reset()
	switch typ {
	case quicRGB32, quicRGB24, quicRGB16, quicRGBA:
		f := quicFamily8
		if typ == quicRGB16 {
			f = quicFamily5
		}
		rgb := []*quicChannel{newQUICChannel(f, width), newQUICChannel(f, width), newQUICChannel(f, width)}
		var alpha []*quicChannel
		var alphaState quicState
		if typ == quicRGBA {
			alpha = []*quicChannel{newQUICChannel(quicFamily8, width)}
			alphaState.reset()
		}
		for y := 0; y < height; y++ {
			if err := d.row(rgb, &rgbState, y); err != nil {
				return nil, fmt.Errorf("QUIC row %d: %w", y, err)
			}
			if alpha != nil {
				if err := d.row(alpha, &alphaState, y); err != nil {
					return nil, fmt.Errorf("QUIC alpha row %d: %w", y, err)
				}
			}
			c.Pix = append(c.Pix, make([]byte, 4*width)...)
			dst := c.Row(0, y, width)
			r, g, b := rgb[0].cur, rgb[1].cur, rgb[2].cur
			if typ == quicRGB16 {
				for x := 0; x < width; x++ {
					dst[4*x] = r[x]<<3 | r[x]>>2
					dst[4*x+1] = g[x]<<3 | g[x]>>2
					dst[4*x+2] = b[x]<<3 | b[x]>>2
				}
			} else {
				for x := 0; x < width; x++ {
					dst[4*x], dst[4*x+1], dst[4*x+2] = r[x], g[x], b[x]
				}
			}
			if alpha != nil {
				a := alpha[0].cur
				for x := 0; x < width; x++ {
					dst[4*x+3] = a[x]
				}
			} else {
				for x := 0; x < width; x++ {
					dst[4*x+3] = 0xff
				}
			}
		}
	case quicGray:
		gray := []*quicChannel{newQUICChannel(quicFamily8, width)}
		var st quicState
		st.reset()
		for y := 0; y < height; y++ {
			if err := d.row(gray, &st, y); err != nil {
				return nil, fmt.Errorf("QUIC row %d: %w", y, err)
			}
			c.Pix = append(c.Pix, make([]byte, 4*width)...)
			dst := c.Row(0, y, width)
			for x, v := range gray[0].cur {
				dst[4*x], dst[4*x+1], dst[4*x+2], dst[4*x+3] = 0, 0, 0, v
			}
		}
	default:
		return nil, FormatError(fmt.Sprintf("QUIC image type %d", typ))
	}
	return c, nil
}

// row decodes row y of the channels chs, which share the state st.
func (d *quicDecoder) row(chs []*quicChannel, st *quicState, y int) error {
	for _, ch := range chs {
		ch.prev, ch.cur = ch.cur, ch.prev
		if y == 0 {
			ch.corr[0] = 0
		} else {
			ch.corr[0] = ch.corr[1]
		}
	}
	width := d.width
	pos := 0
	for st.wmidx < quicWMIMax && int(st.wmileft) <= width {
		if st.wmileft > 0 {
			if err := d.segment(chs, st, y, pos, pos+int(st.wmileft)); err != nil {
				return err
			}
			pos += int(st.wmileft)
			width -= int(st.wmileft)
		}
		st.wmidx++
		st.setTrigger()
		st.wmileft = quicWMINext
	}
	if width > 0 {
		if err := d.segment(chs, st, y, pos, pos+width); err != nil {
			return err
		}
		if st.wmidx < quicWMIMax {
			st.wmileft -= uint32(width)
		}
	}
	if d.in.overrun > 1 {
		return errQUICTruncated
	}
	return nil
}

var errQUICTruncated = FormatError("QUIC image truncated")

// decodePixel decodes pixel i of every channel.
func (d *quicDecoder) decodePixel(chs []*quicChannel, y, i int) {
	for _, ch := range chs {
		f := ch.f
		v, n := f.decode(ch.bucket(ch.corr[i]).best, d.in.word)
		c := byte(v)
		ch.corr[i+1] = c
		var pred uint32
		switch {
		case y == 0 && i == 0:
			pred = 0
		case y == 0:
			pred = uint32(ch.cur[i-1])
		case i == 0:
			pred = uint32(ch.prev[0])
		default:
			pred = (uint32(ch.cur[i-1]) + uint32(ch.prev[i])) >> 1
		}
		ch.cur[i] = byte((uint32(f.xlatL2U[c]) + pred) & f.mask)
		d.in.eat(n)
	}
}

func (d *quicDecoder) updateModel(chs []*quicChannel, st *quicState, i int) {
	for _, ch := range chs {
		ch.updateModel(st, ch.bucket(ch.corr[i]), ch.corr[i+1])
	}
}

// runPredicted reports whether pixel i (of a row after the first) starts a
// run: the two pixels above are equal and so are the two to the left.
func runPredicted(chs []*quicChannel, i, runIndex int) bool {
	if runIndex == i || i <= 2 {
		return false
	}
	for _, ch := range chs {
		if ch.prev[i-1] != ch.prev[i] || ch.cur[i-1] != ch.cur[i-2] {
			return false
		}
	}
	return true
}

// segment decodes pixels [i, end) of row y, where the model's wait mask
// stays the same.
func (d *quicDecoder) segment(chs []*quicChannel, st *quicState, y, i, end int) error {
	waitmask := bppMask(st.wmidx)
	var stopidx int
	if i == 0 {
		d.decodePixel(chs, y, 0)
		if st.waitcnt > 0 {
			st.waitcnt--
		} else {
			st.waitcnt = st.tabrand() & waitmask
			d.updateModel(chs, st, 0)
		}
		i++
	}
	stopidx = i + int(st.waitcnt)
	runIndex := 0
	for {
		runAt := -1
	scan:
		for stopidx < end {
			for ; i <= stopidx; i++ {
				if y > 0 && runPredicted(chs, i, runIndex) {
					runAt = i
					break scan
				}
				d.decodePixel(chs, y, i)
			}
			d.updateModel(chs, st, stopidx)
			stopidx = i + int(st.tabrand()&waitmask)
		}
		if runAt < 0 {
			for ; i < end; i++ {
				if y > 0 && runPredicted(chs, i, runIndex) {
					runAt = i
					break
				}
				d.decodePixel(chs, y, i)
			}
			if runAt < 0 {
				st.waitcnt = uint32(stopidx - end)
				return nil
			}
		}
		st.waitcnt = uint32(stopidx - i)
		runIndex = i
		n := d.decodeRun(st)
		if n < 0 || n > end-i {
			return FormatError(fmt.Sprintf("QUIC run of %d pixels at %d of %d", n, i, end))
		}
		for _, ch := range chs {
			v := ch.cur[i-1]
			for k := i; k < i+n; k++ {
				ch.cur[k] = v
			}
		}
		i += n
		if i == end {
			return nil
		}
		stopidx = i + int(st.waitcnt)
	}
}

// decodeRun reads a MELCODE run length.
func (d *quicDecoder) decodeRun(st *quicState) int {
	run := 0
	for {
		ones := uint32(bits.LeadingZeros8(^byte(d.in.word >> 24)))
		for h := uint32(1); h <= ones; h++ {
			run += int(st.melcOrder)
			if st.melcState < quicMelcStates-1 {
				st.melcState++
				st.melcLen = quicMelcLen[st.melcState]
				st.melcOrder = 1 << st.melcLen
			}
		}
		if ones != 8 {
			d.in.eat(ones + 1)
			break
		}
		d.in.eat(8)
		if d.in.overrun > 1 {
			return -1
		}
	}
	if st.melcLen > 0 {
		run += int(d.in.word >> (32 - st.melcLen))
		d.in.eat(st.melcLen)
	}
	if st.melcState > 0 {
		st.melcState--
		st.melcLen = quicMelcLen[st.melcState]
		st.melcOrder = 1 << st.melcLen
	}
	return run
}

// quicChaos is the pseudo-random table that schedules model updates; its
// values are part of the QUIC format.
var quicChaos = [256]uint32{
	0x02c57542, 0x35427717, 0x2f5a2153, 0x9244f155, 0x7bd26d07, 0x354c6052, 0x57329b28, 0x2993868e,
	0x6cd8808c, 0x147b46e0, 0x99db66af, 0xe32b4cac, 0x1b671264, 0x9d433486, 0x62a4c192, 0x06089a4b,
	0x9e3dce44, 0xdaabee13, 0x222425ea, 0xa46f331d, 0xcd589250, 0x8bb81d7f, 0xc8b736b9, 0x35948d33,
	0xd7ac7fd0, 0x5fbe2803, 0x2cfbc105, 0x013dbc4e, 0x7a37820f, 0x39f88e9e, 0xedd58794, 0xc5076689,
	0xfcada5a4, 0x64c2f46d, 0xb3ba3243, 0x8974b4f9, 0x5a05aebd, 0x20afcd00, 0x39e2b008, 0x88a18a45,
	0x600bde29, 0xf3971ace, 0xf37b0a6b, 0x7041495b, 0x70b707ab, 0x06beffbb, 0x4206051f, 0xe13c4ee3,
	0xc1a78327, 0x91aa067c, 0x8295f72a, 0x732917a6, 0x1d871b4d, 0x4048f136, 0xf1840e7e, 0x6a6048c1,
	0x696cb71a, 0x7ff501c3, 0x0fc6310b, 0x57e0f83d, 0x8cc26e74, 0x11a525a2, 0x946934c7, 0x7cd888f0,
	0x8f9d8604, 0x4f86e73b, 0x04520316, 0xdeeea20c, 0xf1def496, 0x67687288, 0xf540c5b2, 0x22401484,
	0x3478658a, 0xc2385746, 0x01979c2c, 0x5dad73c8, 0x0321f58b, 0xf0fedbee, 0x92826ddf, 0x284bec73,
	0x5b1a1975, 0x03df1e11, 0x20963e01, 0xa17cf12b, 0x740d776e, 0xa7a6bf3c, 0x01b5cce4, 0x1118aa76,
	0xfc6fac0a, 0xce927e9b, 0x00bf2567, 0x806f216c, 0xbca69056, 0x795bd3e9, 0xc9dc4557, 0x8929b6c2,
	0x789d52ec, 0x3f3fbf40, 0xb9197368, 0xa38c15b5, 0xc3b44fa8, 0xca8333b0, 0xb7e8d590, 0xbe807feb,
	0xbf5f8360, 0xd99e2f5c, 0x372928e1, 0x7c757c4c, 0x0db5b154, 0xc01ede02, 0x1fc86e78, 0x1f3985be,
	0xb4805c77, 0x00c880fa, 0x974c1b12, 0x35ab0214, 0xb2dc840d, 0x5b00ae37, 0xd313b026, 0xb260969d,
	0x7f4c8879, 0x1734c4d3, 0x49068631, 0xb9f6a021, 0x6b863e6f, 0xcee5debf, 0x29f8c9fb, 0x53dd6880,
	0x72b61223, 0x1f67a9fd, 0x0a0f6993, 0x13e59119, 0x11cca12e, 0xfe6b6766, 0x16b6effc, 0x97918fc4,
	0xc2b8a563, 0x94f2f741, 0x0bfa8c9a, 0xd1537ae8, 0xc1da349c, 0x873c60ca, 0x95005b85, 0x9b5c080e,
	0xbc8abbd9, 0xe1eab1d2, 0x6dac9070, 0x4ea9ebf1, 0xe0cf30d4, 0x1ef5bd7b, 0xd161043e, 0x5d2fa2e2,
	0xff5d3cae, 0x86ed9f87, 0x2aa1daa1, 0xbd731a34, 0x9e8f4b22, 0xb1c2c67a, 0xc21758c9, 0xa182215d,
	0xccb01948, 0x8d168df7, 0x04238cfe, 0x368c3dbc, 0x0aeadca5, 0xbad21c24, 0x0a71fee5, 0x9fc5d872,
	0x54c152c6, 0xfc329483, 0x6783384a, 0xeddb3e1c, 0x65f90e30, 0x884ad098, 0xce81675a, 0x4b372f7d,
	0x68bf9a39, 0x43445f1e, 0x40f8d8cb, 0x90d5acb6, 0x4cd07282, 0x349eeb06, 0x0c9d5332, 0x520b24ef,
	0x80020447, 0x67976491, 0x2f931ca3, 0xfe9b0535, 0xfcd30220, 0x61a9e6cc, 0xa487d8d7, 0x3f7c5dd1,
	0x7d0127c5, 0x48f51d15, 0x60dea871, 0xc9a91cb7, 0x58b53bb3, 0x9d5e0b2d, 0x624a78b4, 0x30dbee1b,
	0x9bdf22e7, 0x1df5c299, 0x2d5643a7, 0xf4dd35ff, 0x03ca8fd6, 0x53b47ed8, 0x6f2c19aa, 0xfeb0c1f4,
	0x49e54438, 0x2f2577e6, 0xbf876969, 0x72440ea9, 0xfa0bafb8, 0x74f5b3a0, 0x7dd357cd, 0x89ce1358,
	0x6ef2cdda, 0x1e7767f3, 0xa6be9fdb, 0x4f5f88f8, 0xba994a3a, 0x08ca6b65, 0xe0893818, 0x9e00a16a,
	0xf42bfc8f, 0x9972eedc, 0x749c8b51, 0x32c05f5e, 0xd706805f, 0x6bfbb7cf, 0xd9210a10, 0x31a1db97,
	0x923a9559, 0x37a7a1f6, 0x059f8861, 0xca493e62, 0x65157e81, 0x8f6467dd, 0xab85ff9f, 0x9331aff2,
	0x8616b9f5, 0xedbd5695, 0xee7e29b1, 0x313ac44f, 0xb903112f, 0x432ef649, 0xdc0a36c0, 0x61cf2bba,
	0x81474925, 0xa8b6c7ad, 0xee5931de, 0xb2f8158d, 0x59fb7409, 0x2e3dfaed, 0x9af25a3f, 0xe1fed4d5}
