package spice

import (
	"fmt"

	"kvmgate/framebuffer"
)

// Image types (SPICE_IMAGE_TYPE_*).
const (
	imageBitmap            = 0
	imageQUIC              = 1
	imageLZPLT             = 100
	imageLZRGB             = 101
	imageGLZRGB            = 102
	imageFromCache         = 103
	imageSurface           = 104
	imageJPEG              = 105
	imageFromCacheLossless = 106
	imageZlibGLZRGB        = 107
	imageJPEGAlpha         = 108
	imageLZ4               = 109
)

// Image and bitmap flags.
const (
	imageCacheMe        = 1
	imageCacheReplaceMe = 4
	bitmapPalCacheMe    = 1
	bitmapPalFromCache  = 2
	bitmapTopDown       = 4
	maxPaletteEntries   = 256
	maxCachedPalettes   = 4096
)

// UnsupportedError says that the server sent something this client does not
// decode.
type UnsupportedError string

func (e UnsupportedError) Error() string { return "spice: unsupported: " + string(e) }

// imageCache is the pixmap cache: decoded images the server told the client
// to keep, by id. It holds at most limit pixels.
type imageCache struct {
	entries map[uint64]*framebuffer.Canvas
	pixels  int
	limit   int
}

func (c *imageCache) put(id uint64, img *framebuffer.Canvas) {
	c.remove(id)
	n := img.W * img.H
	for id2 := range c.entries {
		if c.pixels+n <= c.limit {
			break
		}
		// The server keeps the same accounting and should never overflow
		// the cache; if it does, forget entries rather than grow.
		c.remove(id2)
	}
	if c.pixels+n > c.limit {
		return
	}
	c.entries[id] = img
	c.pixels += n
}

func (c *imageCache) get(id uint64) *framebuffer.Canvas { return c.entries[id] }

func (c *imageCache) remove(id uint64) {
	if e := c.entries[id]; e != nil {
		c.pixels -= e.W * e.H
		delete(c.entries, id)
	}
}

func (c *imageCache) clear() {
	clear(c.entries)
	c.pixels = 0
}

// captureImage, when set (by tests), receives every compressed image
// payload the display channel decodes, for seeding tests and benchmarks.
var captureImage func(typ uint8, data []byte)

// image decodes the SpiceImage at offset off of a message body (nil for a
// null pointer), handling the pixmap cache.
func (d *display) image(body []byte, off uint32) (*framebuffer.Canvas, error) {
	if off == 0 {
		return nil, nil
	}
	r := newReader(body).at(off)
	id := r.u64()
	typ := r.u8()
	flags := r.u8()
	w, h := r.u32(), r.u32()
	if r.err != nil {
		return nil, fmt.Errorf("image descriptor: %w", r.err)
	}
	if err := framebuffer.CheckSize(int(w), int(h)); err != nil {
		return nil, FormatError(fmt.Sprintf("image %d of %dx%d", id, w, h))
	}
	if d.counts != nil {
		d.counts[typ].Add(1)
	}
	var img *framebuffer.Canvas
	var err error
	switch typ {
	case imageFromCache, imageFromCacheLossless:
		img = d.images.get(id)
		if img == nil {
			return nil, FormatError(fmt.Sprintf("image %#x is not in the pixmap cache", id))
		}
		return img, nil
	case imageSurface:
		sid := r.u32()
		s := d.surfaces[sid]
		if r.err != nil || s == nil {
			return nil, FormatError(fmt.Sprintf("image from unknown surface %d", sid))
		}
		return s.c, nil
	case imageBitmap:
		img, err = d.bitmapImage(body, r)
	case imageLZRGB:
		n := r.u32()
		data := r.bytes(int(min(n, uint32(len(body)))))
		if r.err != nil {
			return nil, fmt.Errorf("LZ image: %w", r.err)
		}
		if captureImage != nil {
			captureImage(typ, data)
		}
		img, err = DecodeLZ(data, nil)
	case imageLZPLT:
		pflags := r.u8()
		n := r.u32()
		pal, perr := d.palette(body, r, pflags)
		if perr != nil {
			return nil, perr
		}
		data := r.bytes(int(min(n, uint32(len(body)))))
		if r.err != nil {
			return nil, fmt.Errorf("LZ palette image: %w", r.err)
		}
		// The LZ stream carries its own top-down flag.
		img, err = DecodeLZ(data, pal)
	case imageQUIC:
		n := r.u32()
		data := r.bytes(int(min(n, uint32(len(body)))))
		if r.err != nil {
			return nil, fmt.Errorf("QUIC image: %w", r.err)
		}
		if captureImage != nil {
			captureImage(typ, data)
		}
		img, err = DecodeQUIC(data)
	case imageJPEG:
		n := r.u32()
		data := r.bytes(int(min(n, uint32(len(body)))))
		if r.err != nil {
			return nil, fmt.Errorf("JPEG image: %w", r.err)
		}
		if captureImage != nil {
			captureImage(typ, data)
		}
		img, err = DecodeJPEG(data)
	case imageGLZRGB, imageZlibGLZRGB:
		return nil, UnsupportedError("GLZ images (the client offers no GLZ dictionary; ask for another compression)")
	case imageLZ4:
		n := r.u32()
		data := r.bytes(int(min(n, uint32(len(body)))))
		if r.err != nil {
			return nil, fmt.Errorf("LZ4 image: %w", r.err)
		}
		if captureImage != nil {
			captureImage(typ, data)
		}
		img, err = DecodeLZ4(data, int(w), int(h))
	case imageJPEGAlpha:
		jflags := r.u8()
		jsize, n := r.u32(), r.u32()
		data := r.bytes(int(min(n, uint32(len(body)))))
		if r.err != nil {
			return nil, fmt.Errorf("JPEG_ALPHA image: %w", r.err)
		}
		img, err = DecodeJPEGAlpha(data, jsize, jflags)
	default:
		return nil, FormatError(fmt.Sprintf("image type %d", typ))
	}
	if err != nil {
		return nil, err
	}
	if img.W != int(w) || img.H != int(h) {
		return nil, FormatError(fmt.Sprintf("image %#x decoded to %dx%d, descriptor says %dx%d", id, img.W, img.H, w, h))
	}
	if flags&(imageCacheMe|imageCacheReplaceMe) != 0 {
		d.images.put(id, img)
	}
	return img, nil
}

// palette reads a bitmap or LZ_PLT palette field: a cache id or a pointer.
func (d *display) palette(body []byte, r *reader, flags uint8) ([]uint32, error) {
	if flags&bitmapPalFromCache != 0 {
		id := r.u64()
		if r.err != nil {
			return nil, r.err
		}
		p, ok := d.palettes[id]
		if !ok {
			return nil, FormatError(fmt.Sprintf("palette %#x is not in the cache", id))
		}
		return p, nil
	}
	off := r.u32()
	if r.err != nil || off == 0 {
		return nil, r.err
	}
	pr := r.at(off)
	unique := pr.u64()
	n := pr.u16()
	if n > maxPaletteEntries {
		return nil, FormatError(fmt.Sprintf("palette of %d entries", n))
	}
	ents := make([]uint32, n)
	for i := range ents {
		ents[i] = pr.u32()
	}
	if pr.err != nil {
		return nil, fmt.Errorf("palette: %w", pr.err)
	}
	if flags&bitmapPalCacheMe != 0 {
		if len(d.palettes) >= maxCachedPalettes {
			clear(d.palettes)
		}
		d.palettes[unique] = ents
	}
	return ents, nil
}

// bitmapImage reads a SpiceBitmap after the image descriptor.
func (d *display) bitmapImage(body []byte, r *reader) (*framebuffer.Canvas, error) {
	format := r.u8()
	flags := r.u8()
	w, h, stride := r.u32(), r.u32(), r.u32()
	pal, err := d.palette(body, r, flags)
	if err != nil {
		return nil, err
	}
	if r.err != nil {
		return nil, fmt.Errorf("bitmap: %w", r.err)
	}
	if uint64(stride)*uint64(h) > uint64(len(body)) {
		return nil, FormatError(fmt.Sprintf("bitmap of %d rows of %d bytes in a %d-byte message", h, stride, len(body)))
	}
	data := r.bytes(int(stride) * int(h))
	if r.err != nil {
		return nil, fmt.Errorf("bitmap data: %w", r.err)
	}
	return DecodeBitmap(BitmapFormat(format), int(w), int(h), int(stride), flags&bitmapTopDown != 0, data, pal)
}
