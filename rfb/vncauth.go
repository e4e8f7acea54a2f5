package rfb

import (
	"crypto/des"
	"math/bits"
)

// vncAuthResponse encrypts the 16-byte VNC authentication challenge with the
// password as a DES key, ECB, the way RFB defines it: the password is cut or
// zero-padded to 8 bytes and each key byte is bit-reversed, because RFB
// takes the lowest bit of each byte as DES's first key bit.
func vncAuthResponse(password string, challenge [16]byte) [16]byte {
	var key [8]byte
	copy(key[:], password)
	for i, b := range key {
		key[i] = bits.Reverse8(b)
	}
	block, err := des.NewCipher(key[:])
	if err != nil {
		// des.NewCipher fails only for a key that is not 8 bytes long.
		panic("rfb: DES key: " + err.Error())
	}
	var out [16]byte
	block.Encrypt(out[:8], challenge[:8])
	block.Encrypt(out[8:], challenge[8:])
	return out
}
