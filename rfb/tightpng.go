package rfb

// TightPNG encoding (-260) is Tight with PNG pictures in place of basic
// compression: the compression-control method 1010 carries a compact length
// and a PNG image. Fill and JPEG are as in Tight, and so is the handling of
// the zlib reset bits. The decoding lives in tight.go.

func init() {
	register(EncodingTightPNG, func() decoder { return &tightDecoder{png: true} })
}
