package cellvalue

import (
	"bytes"
	"errors"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	for _, p := range [][]byte{nil, {}, []byte("v"), bytes.Repeat([]byte{0xff}, 1000)} {
		v := Encode(p)
		got, crc, tomb, err := DecodeVerified(v)
		if err != nil || tomb || !bytes.Equal(got, p) || crc != Checksum(p) {
			t.Fatalf("%x: got %x crc %08x tomb %v err %v", p, got, crc, tomb, err)
		}
		if IsTombstone(v) {
			t.Fatalf("%x: value reads as a tombstone", p)
		}
	}
	got, _, tomb, err := DecodeVerified(Tombstone())
	if err != nil || !tomb || got != nil || !IsTombstone(Tombstone()) {
		t.Fatalf("tombstone: %x %v %v", got, tomb, err)
	}
	m, err := Decode(EncodeMasking([]byte("m")))
	if err != nil || m.Tombstone || !m.MasksOlder || string(m.Payload) != "m" || m.Verify() != nil || !MasksOlder(EncodeMasking(nil)) || MasksOlder(Encode(nil)) {
		t.Fatalf("masking value: %+v %v", m, err)
	}
	if !bytes.Equal(AsMasking(Encode([]byte("m"))), EncodeMasking([]byte("m"))) {
		t.Fatal("AsMasking differs from EncodeMasking")
	}
	x, err := Decode([]byte{0x00, 'a', 'b'})
	if err != nil || x.HasCRC || string(x.Payload) != "ab" || x.Verify() != nil {
		t.Fatalf("value without CRC: %+v %v", x, err)
	}
}

func TestCorrupt(t *testing.T) {
	flipped := Encode([]byte("payload"))
	flipped[len(flipped)-1] ^= 1
	for name, v := range map[string][]byte{
		"empty":             {},
		"reserved bit":      {0x08, 'a'},
		"tombstone masks":   {0x05},
		"tombstone payload": {0x01, 'a'},
		"tombstone crc":     {0x03},
		"short crc":         {0x02, 1, 2},
		"flipped payload":   flipped,
	} {
		if _, _, _, err := DecodeVerified(v); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %x decoded, err %v", name, v, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(Encode([]byte("x")))
	f.Add(Tombstone())
	f.Fuzz(func(t *testing.T, v []byte) {
		x, err := Decode(v)
		if err != nil {
			return
		}
		if x.Tombstone {
			if !bytes.Equal(v, Tombstone()) {
				t.Fatalf("%x decoded as a tombstone", v)
			}
			return
		}
		var re []byte
		if x.HasCRC {
			re = AppendWithCRC(nil, x.Payload, x.CRC)
		} else {
			re = append([]byte{0}, x.Payload...)
		}
		if x.MasksOlder {
			re[0] |= flagMasksOlder
		}
		if !bytes.Equal(re, v) {
			t.Fatalf("%x re-encodes as %x", v, re)
		}
	})
}
