package keys

import (
	"bytes"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestEncodeBytes(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want []byte
	}{
		{"nil", nil, []byte{0x00, 0x01}},
		{"empty", []byte{}, []byte{0x00, 0x01}},
		{"plain", []byte("ab"), []byte{'a', 'b', 0x00, 0x01}},
		{"zero", []byte{0x00}, []byte{0x00, 0xFF, 0x00, 0x01}},
		{"zeros", []byte{0x00, 0x00}, []byte{0x00, 0xFF, 0x00, 0xFF, 0x00, 0x01}},
		{"embedded zero", []byte{'a', 0x00, 'b'}, []byte{'a', 0x00, 0xFF, 'b', 0x00, 0x01}},
		{"escape lookalike", []byte{0x00, 0x01}, []byte{0x00, 0xFF, 0x01, 0x00, 0x01}},
		{"ff", []byte{0xFF, 0xFF}, []byte{0xFF, 0xFF, 0x00, 0x01}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := EncodeBytes(nil, tt.in)
			require.Equal(t, tt.want, got)
			require.Len(t, got, encodedLen(tt.in))
			require.Equal(t, got, appendEscaped(nil, string(tt.in)), "string variant")

			// Appends to dst without disturbing it.
			dst := []byte("prefix")
			require.Equal(t, append([]byte("prefix"), tt.want...), EncodeBytes(dst, tt.in))

			val, rest, err := DecodeBytes(append(got, "tail"...))
			require.NoError(t, err)
			require.Equal(t, string(tt.in), string(val))
			require.Equal(t, []byte("tail"), rest)
		})
	}
}

func TestDecodeBytesDoesNotAlias(t *testing.T) {
	enc := EncodeBytes(nil, []byte("abc"))
	val, _, err := DecodeBytes(enc)
	require.NoError(t, err)
	enc[0] = 'z'
	require.Equal(t, []byte("abc"), val)
}

func TestDecodeBytesCorrupt(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		msg  string
	}{
		{"nil", nil, "unterminated"},
		{"no terminator", []byte("abc"), "unterminated"},
		{"lone escape", []byte{0x00}, "truncated escape"},
		{"truncated terminator", []byte{'a', 0x00}, "truncated escape"},
		{"truncated after escaped zero", []byte{0x00, 0xFF, 0x00}, "truncated escape"},
		{"escaped zero only", []byte{0x00, 0xFF}, "unterminated"},
		{"bad escape 0x00", []byte{0x00, 0x00}, "bad escape byte 0x00"},
		{"bad escape 0x02", []byte{'a', 0x00, 0x02, 0x00, 0x01}, "bad escape byte 0x02"},
		{"bad escape 0xFE", []byte{0x00, 0xFE}, "bad escape byte 0xfe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			val, rest, err := DecodeBytes(tt.in)
			require.ErrorIs(t, err, ErrCorruptKey)
			require.ErrorContains(t, err, tt.msg)
			require.Nil(t, val)
			require.Nil(t, rest)
		})
	}
}

func TestEncodeBytesOrder(t *testing.T) {
	// Sorted, distinct inputs chosen around the escape and terminator bytes.
	sorted := [][]byte{
		{},
		{0x00},
		{0x00, 0x00},
		{0x00, 0x01},
		{0x00, 0xFF},
		{0x01},
		{0x01, 0x00},
		{'a'},
		{'a', 0x00},
		{'a', 0x00, 0x00},
		{'a', 0x01},
		{'a', 'b'},
		{0xFF},
		{0xFF, 0x00},
		{0xFF, 0xFF},
	}
	for i := range sorted {
		for j := range sorted {
			a, b := sorted[i], sorted[j]
			ea, eb := EncodeBytes(nil, a), EncodeBytes(nil, b)
			require.Equal(t, bytes.Compare(a, b), bytes.Compare(ea, eb), "%x vs %x", a, b)
			if i != j {
				require.False(t, bytes.HasPrefix(eb, ea), "%x is a prefix of %x", ea, eb)
			}
		}
	}
}

func TestPrefixEnd(t *testing.T) {
	tests := []struct {
		in, want []byte
	}{
		{nil, nil},
		{[]byte{}, nil},
		{[]byte{0xFF}, nil},
		{[]byte{0xFF, 0xFF, 0xFF}, nil},
		{[]byte{0x00}, []byte{0x01}},
		{[]byte{'a', 'b'}, []byte{'a', 'c'}},
		{[]byte{'a', 0xFF}, []byte{'b'}},
		{[]byte{'a', 0xFE, 0xFF, 0xFF}, []byte{'a', 0xFF}},
		{[]byte{0x03}, []byte{0x04}},
	}
	for _, tt := range tests {
		in := bytes.Clone(tt.in)
		got := PrefixEnd(in)
		require.Equal(t, tt.want, got, "PrefixEnd(%x)", tt.in)
		require.Equal(t, tt.in, in, "input modified")
		if got != nil {
			require.Positive(t, bytes.Compare(got, append(bytes.Clone(in), 0xFF, 0xFF)))
			require.False(t, bytes.HasPrefix(got, in))
		}
	}
}

func TestErrCorruptKeyIsSentinel(t *testing.T) {
	_, _, err := DecodeBytes([]byte{0x00, 0x07})
	require.True(t, errors.Is(err, ErrCorruptKey))
	require.NotEqual(t, ErrCorruptKey.Error(), err.Error(), "error should carry context")
}
