package keys

import (
	"bytes"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestStoreLocalKeys(t *testing.T) {
	require.Equal(t, []byte{0x01, 'i'}, StoreIdentKey())
	require.Equal(t, []byte{0x01, 's'}, TableSchemaPrefix())
	require.Equal(t, []byte{0x01, 's', 0, 0, 0, 0, 0, 0, 0x01, 0x02}, TableSchemaKey(0x0102))
	require.True(t, bytes.HasPrefix(TableSchemaKey(99), TableSchemaPrefix()))
	require.Negative(t, bytes.Compare(TableSchemaKey(1), TableSchemaKey(2)))
	require.Negative(t, bytes.Compare(TableSchemaKey(math.MaxUint64), PrefixEnd(TableSchemaPrefix())))

	id, err := DecodeTableSchemaKey(TableSchemaKey(1234))
	require.NoError(t, err)
	require.Equal(t, uint64(1234), id)
	for _, bad := range [][]byte{nil, StoreIdentKey(), TableSchemaPrefix(), TableSchemaKey(1)[:9], append(TableSchemaKey(1), 0), AppliedStateKey(1)} {
		_, err := DecodeTableSchemaKey(bad)
		require.ErrorIs(t, err, ErrCorruptKey, "%x", bad)
	}
}

func TestSnapshotStateKeys(t *testing.T) {
	k := SnapshotStateKey(0x0A0B, 7, SuffixRaftHardState)
	require.Equal(t, []byte{0x01, 'p', 0, 0, 0, 0, 0, 0, 0x0A, 0x0B, 0, 0, 0, 0, 0, 0, 0, 7, 'h'}, k)
	require.True(t, bytes.HasPrefix(k, SnapshotStateInstallPrefix(0x0A0B, 7)))
	require.True(t, bytes.HasPrefix(k, SnapshotStatePrefix()))
	require.False(t, bytes.HasPrefix(SnapshotStateKey(0x0A0B, 8, SuffixRaftHardState), SnapshotStateInstallPrefix(0x0A0B, 7)))
	// The region sorts apart from the schemas the store loads at open.
	require.False(t, bytes.HasPrefix(k, TableSchemaPrefix()))

	for _, suffix := range []byte{SuffixAppliedState, SuffixDescriptor, SuffixRaftHardState, SuffixRaftTruncatedState} {
		tablet, install, local, err := DecodeSnapshotStateKey(SnapshotStateKey(3, 9, suffix))
		require.NoError(t, err)
		require.Equal(t, uint64(3), tablet)
		require.Equal(t, uint64(9), install)
		gotTablet, gotSuffix, err := DecodeTabletLocalKey(local)
		require.NoError(t, err)
		require.Equal(t, uint64(3), gotTablet)
		require.Equal(t, suffix, gotSuffix)
	}
	// The raft log and the tombstone never travel in a snapshot's state.
	for _, bad := range [][]byte{nil, SnapshotStatePrefix(), SnapshotStateInstallPrefix(3, 9), k[:len(k)-2], append(k, 0),
		SnapshotStateKey(3, 9, SuffixRaftLog), SnapshotStateKey(3, 9, SuffixTombstone), TableSchemaKey(1), RaftHardStateKey(3)} {
		_, _, _, err := DecodeSnapshotStateKey(bad)
		require.ErrorIs(t, err, ErrCorruptKey, "%x", bad)
	}
}

func TestTabletLocalKeys(t *testing.T) {
	const id = 0x0A0B
	prefix := []byte{0x02, 0, 0, 0, 0, 0, 0, 0x0A, 0x0B}
	require.Equal(t, prefix, TabletLocalPrefix(id))

	tests := []struct {
		name   string
		key    []byte
		suffix byte
	}{
		{"applied state", AppliedStateKey(id), 'a'},
		{"descriptor", DescriptorKey(id), 'd'},
		{"hard state", RaftHardStateKey(id), 'h'},
		{"truncated state", RaftTruncatedStateKey(id), 't'},
		{"tombstone", TombstoneKey(id), 'x'},
		{"raft log", RaftLogKey(id, 0x0C), 'l'},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.True(t, bytes.HasPrefix(tt.key, prefix))
			require.Equal(t, tt.suffix, tt.key[len(prefix)])
			gotID, gotSuffix, err := DecodeTabletLocalKey(tt.key)
			require.NoError(t, err)
			require.Equal(t, uint64(id), gotID)
			require.Equal(t, tt.suffix, gotSuffix)
			// Local keys of one tablet never reach the next tablet's.
			require.Negative(t, bytes.Compare(tt.key, TabletLocalPrefix(id+1)))
			require.Negative(t, bytes.Compare(tt.key, PrefixEnd(TabletLocalPrefix(id))))
		})
	}
	require.Equal(t, append(bytes.Clone(prefix), 'l', 0, 0, 0, 0, 0, 0, 0, 0x0C), RaftLogKey(id, 0x0C))
	require.Equal(t, append(bytes.Clone(prefix), 'l'), RaftLogPrefix(id))
}

func TestRaftLogKey(t *testing.T) {
	for _, tc := range []struct{ tablet, index uint64 }{{0, 0}, {1, 1}, {7, 1 << 40}, {math.MaxUint64, math.MaxUint64}} {
		key := RaftLogKey(tc.tablet, tc.index)
		require.True(t, bytes.HasPrefix(key, RaftLogPrefix(tc.tablet)))
		tablet, index, err := DecodeRaftLogKey(key)
		require.NoError(t, err)
		require.Equal(t, tc.tablet, tablet)
		require.Equal(t, tc.index, index)
	}
	// Entries sort by index.
	require.Negative(t, bytes.Compare(RaftLogKey(3, 255), RaftLogKey(3, 256)))
	require.Negative(t, bytes.Compare(RaftLogKey(3, math.MaxUint64), PrefixEnd(RaftLogPrefix(3))))

	for name, bad := range map[string][]byte{
		"empty":       nil,
		"prefix only": RaftLogPrefix(3),
		"truncated":   RaftLogKey(3, 4)[:17],
		"trailing":    append(RaftLogKey(3, 4), 0),
		"wrong suffix": func() []byte {
			k := RaftLogKey(3, 4)
			k[9] = 'a'
			return k
		}(),
		"wrong region": DataKey(RaftLogKey(3, 4)[1:]),
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := DecodeRaftLogKey(bad)
			require.ErrorIs(t, err, ErrCorruptKey)
		})
	}
}

func TestDecodeTabletLocalKeyCorrupt(t *testing.T) {
	for name, bad := range map[string][]byte{
		"empty":            nil,
		"prefix only":      TabletLocalPrefix(1),
		"store local":      StoreIdentKey(),
		"data":             DataKey(RowKey(1, nil)),
		"unknown suffix":   append(TabletLocalPrefix(1), 'z'),
		"trailing":         append(AppliedStateKey(1), 0),
		"short log key":    RaftLogPrefix(1),
		"wrong region 10B": append([]byte{0x03}, AppliedStateKey(1)[1:]...),
	} {
		t.Run(name, func(t *testing.T) {
			id, suffix, err := DecodeTabletLocalKey(bad)
			require.ErrorIs(t, err, ErrCorruptKey)
			require.Zero(t, id)
			require.Zero(t, suffix)
		})
	}
}

func TestDataKeys(t *testing.T) {
	k := CellKey(1, []byte("r"), "f", nil, 3)
	dk := DataKey(k)
	require.Equal(t, append([]byte{0x03}, k...), dk)
	require.Equal(t, []byte{0x03}, DataKey(nil))
	require.Equal(t, append([]byte("ab\x03"), k...), AppendDataKey([]byte("ab"), k))

	got, err := StripDataKey(dk)
	require.NoError(t, err)
	require.Equal(t, k, got)
	got, err = StripDataKey([]byte{0x03})
	require.NoError(t, err)
	require.Empty(t, got)

	for _, bad := range [][]byte{nil, {}, {0x02}, {0x04, 1}, StoreIdentKey(), AppliedStateKey(1)} {
		_, err := StripDataKey(bad)
		require.ErrorIs(t, err, ErrCorruptKey, "%x", bad)
	}
}

func TestDataSpan(t *testing.T) {
	start, end := RowKey(1, []byte("a")), RowKey(1, []byte("m"))
	lo, hi := DataSpan(start, end)
	require.Equal(t, DataKey(start), lo)
	require.Equal(t, DataKey(end), hi)

	lo, hi = DataSpan(nil, nil)
	require.Equal(t, []byte{0x03}, lo)
	require.Equal(t, []byte{0x04}, hi)

	lo, hi = DataSpan(start, nil)
	require.Equal(t, DataKey(start), lo)
	require.Equal(t, []byte{0x04}, hi)

	// A cell in the tablet's range is inside the span; one in the next
	// tablet is not.
	lo, hi = DataSpan(start, end)
	in := DataKey(CellKey(1, []byte("b"), "f", []byte("q"), 0))
	out := DataKey(CellKey(1, []byte("m"), "f", []byte("q"), math.MaxInt64))
	require.True(t, bytes.Compare(lo, in) <= 0 && bytes.Compare(in, hi) < 0)
	require.False(t, bytes.Compare(lo, out) <= 0 && bytes.Compare(out, hi) < 0)
	// Every data key, however large, is below the open-ended bound.
	_, hi = DataSpan(nil, nil)
	require.Negative(t, bytes.Compare(DataKey(CellKey(math.MaxUint64, []byte{0xFF}, "\xff", []byte{0xFF}, 0)), hi))
}

func TestRegionsDoNotOverlap(t *testing.T) {
	sorted := [][]byte{
		StoreIdentKey(),
		SnapshotStateKey(math.MaxUint64, math.MaxUint64, SuffixRaftTruncatedState),
		TableSchemaKey(math.MaxUint64),
		TabletLocalPrefix(0),
		AppliedStateKey(1),
		RaftLogKey(1, math.MaxUint64),
		TombstoneKey(math.MaxUint64),
		DataKey(nil),
		DataKey(TablePrefix(0)),
		DataKey(CellKey(math.MaxUint64, []byte{0xFF, 0xFF}, "\xff", []byte{0xFF}, 0)),
		{0x04},
	}
	for i := 1; i < len(sorted); i++ {
		require.Negative(t, bytes.Compare(sorted[i-1], sorted[i]), "%x !< %x", sorted[i-1], sorted[i])
	}
}
