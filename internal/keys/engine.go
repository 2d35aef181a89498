package keys

import (
	"encoding/binary"
	"fmt"
)

// Regions of the engine keyspace: the first byte of every engine key.
const (
	regionStore  byte = 0x01 // store-local keys
	regionTablet byte = 0x02 // tablet-local keys
	regionData   byte = 0x03 // user data: 0x03 | logical key
	regionEnd    byte = 0x04 // exclusive upper bound of the data region
)

// Store-local suffixes (the byte after regionStore).
const (
	storeIdentSuffix    byte = 'i'
	tableSchemaSuffix   byte = 's'
	dataFormatSuffix    byte = 'f'
	snapshotStateSuffix byte = 'p'
)

// Tablet-local suffixes: the byte after 0x02 | BE8(tabletID), as returned by
// DecodeTabletLocalKey.
const (
	SuffixAppliedState       byte = 'a'
	SuffixDescriptor         byte = 'd'
	SuffixRaftHardState      byte = 'h'
	SuffixRaftLog            byte = 'l'
	SuffixRaftTruncatedState byte = 't'
	SuffixTombstone          byte = 'x'
)

const (
	tabletPrefixLen = 1 + 8               // 0x02 | BE8(tabletID)
	tabletKeyLen    = tabletPrefixLen + 1 // ... | suffix
	raftLogKeyLen   = tabletKeyLen + 8    // ... 'l' | BE8(index)
	schemaKeyLen    = 2 + 8               // 0x01 's' | BE8(tableID)
	// 0x01 'p' | BE8(tabletID) | BE8(installID) | suffix
	snapshotStateKeyLen = 2 + 8 + 8 + 1
)

// StoreIdentKey returns the key of the store's identity record.
func StoreIdentKey() []byte {
	return []byte{regionStore, storeIdentSuffix}
}

// StoreDataFormatKey returns the key of the store's data format version
// (the encoding of cell values, internal/cellvalue).
func StoreDataFormatKey() []byte {
	return []byte{regionStore, dataFormatSuffix}
}

// TableSchemaPrefix returns the prefix of all table schema keys.
func TableSchemaPrefix() []byte {
	return []byte{regionStore, tableSchemaSuffix}
}

// TableSchemaKey returns the key of the schema record of tableID.
func TableSchemaKey(tableID uint64) []byte {
	return binary.BigEndian.AppendUint64(append(make([]byte, 0, schemaKeyLen), regionStore, tableSchemaSuffix), tableID)
}

// DecodeTableSchemaKey returns the table ID of a key produced by
// TableSchemaKey, or an error wrapping ErrCorruptKey.
func DecodeTableSchemaKey(key []byte) (tableID uint64, err error) {
	if len(key) != schemaKeyLen || key[0] != regionStore || key[1] != tableSchemaSuffix {
		return 0, fmt.Errorf("%w: not a table schema key: %x", ErrCorruptKey, key)
	}
	return binary.BigEndian.Uint64(key[2:]), nil
}

// SnapshotStatePrefix returns 0x01 'p', the prefix of every snapshot state
// key (SnapshotStateKey).
func SnapshotStatePrefix() []byte {
	return []byte{regionStore, snapshotStateSuffix}
}

// SnapshotStateKey returns the key under which one snapshot install
// (installID, unique on the store) carries the tablet-local record suffix
// (applied state, descriptor, hard state or truncated state) until the
// store moves it to its tablet-local key. The key is new to the engine,
// so an SST holding it never overlaps the memtable.
func SnapshotStateKey(tabletID, installID uint64, suffix byte) []byte {
	dst := append(make([]byte, 0, snapshotStateKeyLen), regionStore, snapshotStateSuffix)
	dst = binary.BigEndian.AppendUint64(dst, tabletID)
	return append(binary.BigEndian.AppendUint64(dst, installID), suffix)
}

// SnapshotStateInstallPrefix returns the prefix of the snapshot state keys
// of one install.
func SnapshotStateInstallPrefix(tabletID, installID uint64) []byte {
	k := SnapshotStateKey(tabletID, installID, 0)
	return k[:len(k)-1]
}

// DecodeSnapshotStateKey decodes a key produced by SnapshotStateKey and
// returns the tablet-local key the record belongs under, or an error
// wrapping ErrCorruptKey.
func DecodeSnapshotStateKey(key []byte) (tabletID, installID uint64, local []byte, err error) {
	if len(key) != snapshotStateKeyLen || key[0] != regionStore || key[1] != snapshotStateSuffix {
		return 0, 0, nil, fmt.Errorf("%w: not a snapshot state key: %x", ErrCorruptKey, key)
	}
	tabletID, installID = binary.BigEndian.Uint64(key[2:]), binary.BigEndian.Uint64(key[10:])
	switch suffix := key[18]; suffix {
	case SuffixAppliedState, SuffixDescriptor, SuffixRaftHardState, SuffixRaftTruncatedState:
		return tabletID, installID, tabletLocalKey(tabletID, suffix), nil
	default:
		return 0, 0, nil, fmt.Errorf("%w: unknown snapshot state suffix 0x%02x in %x", ErrCorruptKey, suffix, key)
	}
}

// TabletLocalPrefix returns 0x02 | BE8(tabletID), the prefix of every
// tablet-local key of tabletID.
func TabletLocalPrefix(tabletID uint64) []byte {
	return appendTabletLocalPrefix(make([]byte, 0, tabletPrefixLen), tabletID)
}

func appendTabletLocalPrefix(dst []byte, tabletID uint64) []byte {
	return binary.BigEndian.AppendUint64(append(dst, regionTablet), tabletID)
}

func tabletLocalKey(tabletID uint64, suffix byte) []byte {
	return append(appendTabletLocalPrefix(make([]byte, 0, tabletKeyLen), tabletID), suffix)
}

// AppliedStateKey returns the key of tabletID's applied state.
func AppliedStateKey(tabletID uint64) []byte { return tabletLocalKey(tabletID, SuffixAppliedState) }

// DescriptorKey returns the key of tabletID's descriptor.
func DescriptorKey(tabletID uint64) []byte { return tabletLocalKey(tabletID, SuffixDescriptor) }

// RaftHardStateKey returns the key of tabletID's raft HardState.
func RaftHardStateKey(tabletID uint64) []byte { return tabletLocalKey(tabletID, SuffixRaftHardState) }

// RaftTruncatedStateKey returns the key of tabletID's raft truncated state.
func RaftTruncatedStateKey(tabletID uint64) []byte {
	return tabletLocalKey(tabletID, SuffixRaftTruncatedState)
}

// TombstoneKey returns the key of tabletID's tombstone, written when the
// replica is removed so that it is never recreated from stale messages.
func TombstoneKey(tabletID uint64) []byte { return tabletLocalKey(tabletID, SuffixTombstone) }

// RaftLogPrefix returns 0x02 | BE8(tabletID) | 'l', the prefix of all of
// tabletID's raft log entries.
func RaftLogPrefix(tabletID uint64) []byte { return tabletLocalKey(tabletID, SuffixRaftLog) }

// RaftLogKey returns the key of the raft log entry at index. Entries of one
// tablet sort by index.
func RaftLogKey(tabletID, index uint64) []byte {
	dst := append(appendTabletLocalPrefix(make([]byte, 0, raftLogKeyLen), tabletID), SuffixRaftLog)
	return binary.BigEndian.AppendUint64(dst, index)
}

// DecodeRaftLogKey decodes a key produced by RaftLogKey, or returns an error
// wrapping ErrCorruptKey.
func DecodeRaftLogKey(key []byte) (tabletID, index uint64, err error) {
	if len(key) != raftLogKeyLen || key[0] != regionTablet || key[tabletPrefixLen] != SuffixRaftLog {
		return 0, 0, fmt.Errorf("%w: not a raft log key: %x", ErrCorruptKey, key)
	}
	return binary.BigEndian.Uint64(key[1:]), binary.BigEndian.Uint64(key[tabletKeyLen:]), nil
}

// DecodeTabletLocalKey decodes any tablet-local key, returning its tablet ID
// and suffix (one of the Suffix* constants). It fails with ErrCorruptKey if
// key is not in the tablet-local region, has an unknown suffix, or has the
// wrong length for its suffix (raft log keys carry an 8-byte index; all
// others end at the suffix).
func DecodeTabletLocalKey(key []byte) (tabletID uint64, suffix byte, err error) {
	if len(key) < tabletKeyLen || key[0] != regionTablet {
		return 0, 0, fmt.Errorf("%w: not a tablet-local key: %x", ErrCorruptKey, key)
	}
	suffix = key[tabletPrefixLen]
	want := tabletKeyLen
	switch suffix {
	case SuffixAppliedState, SuffixDescriptor, SuffixRaftHardState, SuffixRaftTruncatedState, SuffixTombstone:
	case SuffixRaftLog:
		want = raftLogKeyLen
	default:
		return 0, 0, fmt.Errorf("%w: unknown tablet-local suffix 0x%02x in %x", ErrCorruptKey, suffix, key)
	}
	if len(key) != want {
		return 0, 0, fmt.Errorf("%w: tablet-local key with suffix %q has %d bytes, want %d", ErrCorruptKey, suffix, len(key), want)
	}
	return binary.BigEndian.Uint64(key[1:]), suffix, nil
}

// DataKey returns the engine key 0x03 | k for a logical key k.
func DataKey(k []byte) []byte {
	return AppendDataKey(make([]byte, 0, 1+len(k)), k)
}

// AppendDataKey appends DataKey(k) to dst and returns the extended slice.
func AppendDataKey(dst, k []byte) []byte {
	return append(append(dst, regionData), k...)
}

// StripDataKey returns the logical key inside an engine data key. The result
// aliases dataKey. It fails with ErrCorruptKey if dataKey is not in the data
// region.
func StripDataKey(dataKey []byte) ([]byte, error) {
	if len(dataKey) == 0 || dataKey[0] != regionData {
		return nil, fmt.Errorf("%w: not a data key: %x", ErrCorruptKey, dataKey)
	}
	return dataKey[1:], nil
}

// DataSpan returns the engine bounds [lo, hi) of the data of a tablet owning
// the logical range [start, end). An empty end means the tablet extends to the
// end of the keyspace, so hi is 0x04, the end of the data region.
func DataSpan(start, end []byte) (lo, hi []byte) {
	lo = DataKey(start)
	if len(end) == 0 {
		return lo, []byte{regionEnd}
	}
	return lo, DataKey(end)
}
