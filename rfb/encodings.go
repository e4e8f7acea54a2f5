package rfb

// Encoding is an RFB encoding or pseudo-encoding number.
type Encoding int32

// Encodings kvmgate knows, by their registered numbers.
const (
	EncodingRaw      Encoding = 0
	EncodingCopyRect Encoding = 1
	EncodingRRE      Encoding = 2
	EncodingHextile  Encoding = 5
	EncodingZlib     Encoding = 6
	EncodingTight    Encoding = 7
	EncodingZlibHex  Encoding = 8
	EncodingTRLE     Encoding = 15
	EncodingZRLE     Encoding = 16
	EncodingTightPNG Encoding = -260

	// Pseudo-encodings.
	EncodingJPEGQuality0        Encoding = -32 // ..-23 for levels 0..9
	EncodingDesktopSize         Encoding = -223
	EncodingLastRect            Encoding = -224
	EncodingPointerPos          Encoding = -232
	EncodingCursor              Encoding = -239
	EncodingXCursor             Encoding = -240
	EncodingCompressLevel0      Encoding = -256 // ..-247 for levels 0..9
	EncodingQEMUPointerMotion   Encoding = -257
	EncodingQEMUExtendedKey     Encoding = -258
	EncodingQEMUAudio           Encoding = -259
	EncodingQEMULEDState        Encoding = -261
	EncodingDesktopName         Encoding = -307
	EncodingExtendedDesktopSize Encoding = -308
	EncodingXVP                 Encoding = -309
	EncodingFence               Encoding = -312
	EncodingContinuousUpdates   Encoding = -313
	EncodingCursorWithAlpha     Encoding = -314
	EncodingVMwareLEDState      Encoding = 0x574d5668
	EncodingExtendedClipboard   Encoding = -1063131698 // 0xC0A1E5CE
	EncodingFineQualityLevel0   Encoding = -512        // ..-412
	EncodingSubsampling1X       Encoding = -768
)

var encodingNames = map[Encoding]string{
	EncodingRaw: "raw", EncodingCopyRect: "copyrect", EncodingRRE: "rre",
	EncodingHextile: "hextile", EncodingZlib: "zlib", EncodingTight: "tight",
	EncodingZlibHex: "zlibhex", EncodingTRLE: "trle", EncodingZRLE: "zrle",
	EncodingTightPNG:    "tightpng",
	EncodingDesktopSize: "desktopsize", EncodingLastRect: "lastrect",
	EncodingPointerPos: "pointerpos", EncodingCursor: "cursor", EncodingXCursor: "xcursor",
	EncodingQEMUPointerMotion: "qemu-pointer-motion", EncodingQEMUExtendedKey: "qemu-extended-key",
	EncodingQEMUAudio: "qemu-audio", EncodingQEMULEDState: "qemu-led-state",
	EncodingDesktopName: "desktopname", EncodingExtendedDesktopSize: "extended-desktopsize",
	EncodingXVP: "xvp", EncodingFence: "fence", EncodingContinuousUpdates: "continuous-updates",
	EncodingCursorWithAlpha: "cursor-alpha", EncodingVMwareLEDState: "vmware-led-state",
	EncodingExtendedClipboard: "extended-clipboard",
}

// String returns the encoding's short name, or its number.
func (e Encoding) String() string {
	if n, ok := encodingNames[e]; ok {
		return n
	}
	switch {
	case e >= EncodingJPEGQuality0 && e <= EncodingJPEGQuality0+9:
		return "jpeg-quality-" + itoa(int(e-EncodingJPEGQuality0))
	case e >= EncodingCompressLevel0 && e <= EncodingCompressLevel0+9:
		return "compress-level-" + itoa(int(e-EncodingCompressLevel0))
	}
	return "encoding(" + itoa(int(e)) + ")"
}

// ParseEncoding returns the pixel encoding with the given short name.
func ParseEncoding(name string) (Encoding, bool) {
	for e, n := range encodingNames {
		if n == name {
			return e, true
		}
	}
	return 0, false
}

func itoa(i int) string {
	if i < 0 {
		return "-" + itoa(-i)
	}
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}
