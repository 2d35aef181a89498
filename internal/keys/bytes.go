package keys

import (
	"bytes"
	"errors"
	"fmt"
)

// ErrCorruptKey is returned (wrapped, with context) by every Decode*
// function, RowPrefix and StripDataKey when the input is not a well-formed
// key of the expected kind. Test for it with errors.Is.
var ErrCorruptKey = errors.New("keys: corrupt key")

const (
	escapeByte     byte = 0x00 // starts every two-byte escape sequence
	escapedZero    byte = 0xFF // 0x00 0xFF encodes a literal 0x00
	terminatorByte byte = 0x01 // 0x00 0x01 ends an encoded byte string
)

// EncodeBytes appends the order-preserving, prefix-free encoding of b to dst
// and returns the extended slice. Every 0x00 in b becomes 0x00 0xFF, and the
// result is terminated by 0x00 0x01.
func EncodeBytes(dst, b []byte) []byte {
	return appendEscaped(dst, b)
}

// appendEscaped is EncodeBytes for either strings or byte slices, so that
// family names can be encoded without converting (and allocating).
func appendEscaped[T string | []byte](dst []byte, s T) []byte {
	for {
		i := indexZero(s)
		if i < 0 {
			break
		}
		dst = append(dst, s[:i]...)
		dst = append(dst, escapeByte, escapedZero)
		s = s[i+1:]
	}
	dst = append(dst, s...)
	return append(dst, escapeByte, terminatorByte)
}

func indexZero[T string | []byte](s T) int {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return i
		}
	}
	return -1
}

// encodedLen returns the length of the encoding of s.
func encodedLen[T string | []byte](s T) int {
	n := len(s) + 2
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			n++
		}
	}
	return n
}

// DecodeBytes decodes one byte string encoded by EncodeBytes from the front of
// b. It returns the decoded value (a fresh copy that never aliases b) and the
// remaining bytes of b after the terminator. It fails with ErrCorruptKey if
// the terminator is missing or an escape byte is followed by anything other
// than 0xFF or 0x01.
func DecodeBytes(b []byte) (value, rest []byte, err error) {
	n, vlen, err := scanEscaped(b)
	if err != nil {
		return nil, nil, err
	}
	value = appendUnescaped(make([]byte, 0, vlen), b[:n])
	return value, b[n:], nil
}

// scanEscaped validates the encoded byte string at the front of b. It returns
// the length of the encoding including the terminator and the length of the
// decoded value.
func scanEscaped(b []byte) (n, vlen int, err error) {
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], escapeByte)
		if j < 0 {
			return 0, 0, fmt.Errorf("%w: unterminated byte string (%d bytes, no 0x00 0x01)", ErrCorruptKey, len(b))
		}
		i += j
		vlen += j
		if i+1 >= len(b) {
			return 0, 0, fmt.Errorf("%w: truncated escape sequence at offset %d", ErrCorruptKey, i)
		}
		switch b[i+1] {
		case terminatorByte:
			return i + 2, vlen, nil
		case escapedZero:
			vlen++
			i += 2
		default:
			return 0, 0, fmt.Errorf("%w: bad escape byte 0x%02x at offset %d", ErrCorruptKey, b[i+1], i+1)
		}
	}
}

// appendUnescaped appends the value of enc, a complete encoding already
// validated by scanEscaped, to dst.
func appendUnescaped(dst, enc []byte) []byte {
	enc = enc[:len(enc)-2] // drop the terminator
	for {
		i := bytes.IndexByte(enc, escapeByte)
		if i < 0 {
			return append(dst, enc...)
		}
		dst = append(dst, enc[:i]...)
		dst = append(dst, 0)
		enc = enc[i+2:]
	}
}

// PrefixEnd returns the smallest key that is greater than every key having
// prefix as a prefix, for use as an exclusive scan bound. It returns nil if no
// such key exists (prefix is empty or consists only of 0xFF bytes). The result
// never aliases prefix.
func PrefixEnd(prefix []byte) []byte {
	for i := len(prefix) - 1; i >= 0; i-- {
		if prefix[i] != 0xFF {
			end := make([]byte, i+1)
			copy(end, prefix)
			end[i]++
			return end
		}
	}
	return nil
}
