package cellvalue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// FormatVersion is the data format of user cells this package writes. A
// store records it at creation (tabletserver/store) and refuses to open
// with any other.
const FormatVersion = 1

// Header bits.
const (
	flagTombstone  byte = 0x01
	flagCRC        byte = 0x02
	flagMasksOlder byte = 0x04
	knownFlags          = flagTombstone | flagCRC | flagMasksOlder
)

// crcBytes is the size of the optional checksum.
const crcBytes = 4

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt marks a value that is not a valid envelope or whose payload
// does not match its CRC.
var ErrCorrupt = errors.New("corrupt cell value")

// Checksum is the CRC-32C (Castagnoli) of a payload, as stored.
func Checksum(payload []byte) uint32 { return crc32.Checksum(payload, castagnoli) }

// Append appends the envelope of a value with its CRC-32C to dst.
func Append(dst, payload []byte) []byte {
	return AppendWithCRC(dst, payload, Checksum(payload))
}

// AppendWithCRC appends the envelope of a value whose CRC-32C the caller
// already has (a client that sent it with the value).
func AppendWithCRC(dst, payload []byte, crc uint32) []byte {
	return appendValue(dst, flagCRC, payload, crc)
}

// EncodeMasking returns the envelope of a value that also deletes every
// older version of its column: a value written at the timestamp (so the
// engine key) of a tombstone, which it replaces — a delete and then a put
// of the column at one commit timestamp.
func EncodeMasking(payload []byte) []byte {
	return appendValue(make([]byte, 0, 1+crcBytes+len(payload)), flagCRC|flagMasksOlder, payload, Checksum(payload))
}

// AsMasking returns v (a value envelope) with the masks-older bit set.
func AsMasking(v []byte) []byte {
	if len(v) == 0 || v[0]&flagTombstone != 0 {
		return v
	}
	out := append([]byte(nil), v...)
	out[0] |= flagMasksOlder
	return out
}

func appendValue(dst []byte, h byte, payload []byte, crc uint32) []byte {
	dst = append(dst, h)
	dst = binary.BigEndian.AppendUint32(dst, crc)
	return append(dst, payload...)
}

// Encode returns the envelope of a value with its CRC-32C.
func Encode(payload []byte) []byte {
	return Append(make([]byte, 0, 1+crcBytes+len(payload)), payload)
}

// Tombstone returns the value of a tombstone version.
func Tombstone() []byte { return []byte{flagTombstone} }

// IsTombstone reports whether v is a tombstone, looking at the header
// only (Decode checks the rest). Cheap: readers call it on every version.
func IsTombstone(v []byte) bool { return len(v) > 0 && v[0]&flagTombstone != 0 }

// MasksOlder reports whether v hides every older version of its column (a
// tombstone or a masking value), looking at the header only.
func MasksOlder(v []byte) bool { return len(v) > 0 && v[0]&(flagTombstone|flagMasksOlder) != 0 }

// Value is a decoded envelope. Payload aliases the decoded bytes.
type Value struct {
	Payload   []byte
	CRC       uint32
	HasCRC    bool
	Tombstone bool
	// MasksOlder: the version hides every older version of its column
	// (always so for a tombstone).
	MasksOlder bool
}

// Decode parses an envelope without checking the CRC (see Verify). It
// fails with ErrCorrupt if v is not a valid envelope.
func Decode(v []byte) (Value, error) {
	if len(v) == 0 {
		return Value{}, fmt.Errorf("%w: empty", ErrCorrupt)
	}
	h := v[0]
	if h&^knownFlags != 0 {
		return Value{}, fmt.Errorf("%w: unknown header %#02x", ErrCorrupt, h)
	}
	if h&flagTombstone != 0 {
		if h != flagTombstone || len(v) != 1 {
			return Value{}, fmt.Errorf("%w: tombstone with header %#02x and %d bytes", ErrCorrupt, h, len(v))
		}
		return Value{Tombstone: true, MasksOlder: true}, nil
	}
	masks := h&flagMasksOlder != 0
	if h&flagCRC == 0 {
		return Value{Payload: v[1:], MasksOlder: masks}, nil
	}
	if len(v) < 1+crcBytes {
		return Value{}, fmt.Errorf("%w: %d bytes, too short for its checksum", ErrCorrupt, len(v))
	}
	return Value{Payload: v[1+crcBytes:], CRC: binary.BigEndian.Uint32(v[1:]), HasCRC: true, MasksOlder: masks}, nil
}

// Verify checks the payload against its CRC, if it has one.
func (x Value) Verify() error {
	if !x.HasCRC {
		return nil
	}
	if got := Checksum(x.Payload); got != x.CRC {
		return fmt.Errorf("%w: payload CRC-32C %08x, stored %08x", ErrCorrupt, got, x.CRC)
	}
	return nil
}

// DecodeVerified is Decode followed by Verify: the payload, its stored
// CRC (0 if none) and whether the version is a tombstone.
func DecodeVerified(v []byte) (payload []byte, crc uint32, tombstone bool, err error) {
	x, err := Decode(v)
	if err == nil {
		err = x.Verify()
	}
	if err != nil {
		return nil, 0, false, err
	}
	return x.Payload, x.CRC, x.Tombstone, nil
}
