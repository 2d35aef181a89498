package kvclient

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/shaledb/shale/internal/cellsum"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/metapb"
)

// End-to-end cell checksums (docs/reliability.md, "End-to-end cell
// checksums"; internal/cellsum defines them). Every cell this client sets
// carries its CRC-32C, which the tablet server checks before proposing
// and at apply. Every cell a read returns carries the CRC-32C of its
// value, checked here before the cell is returned; an answer that fails
// is read again from another replica, at a fixed timestamp, and that
// read names the failed store so that the tablet gets checked.

// withCellSum returns m for row with its cell's checksum: a copy of a
// SetCell, anything else as it is.
func withCellSum(row []byte, m *kvpb.Mutation) *kvpb.Mutation {
	sc := m.GetSetCell()
	if sc == nil {
		return m
	}
	sum := cellsum.Cell(row, sc.Family, sc.Qualifier, sc.Value)
	return &kvpb.Mutation{Mutation: &kvpb.Mutation_SetCell_{SetCell: &kvpb.Mutation_SetCell{
		Family: sc.Family, Qualifier: sc.Qualifier, Timestamp: sc.Timestamp, Value: sc.Value, Crc32C: &sum}}}
}

// badCellsError is an answer with a cell that failed its checksum.
type badCellsError struct {
	row       []byte
	family    string
	qualifier []byte
}

func (e *badCellsError) Error() string {
	return fmt.Sprintf("row %q, column %s:%q failed its CRC-32C", e.row, e.family, e.qualifier)
}

// errReadElsewhere tells a scan to read the tablet again: its last page
// failed its checksums and the read now goes to another replica.
var errReadElsewhere = errors.New("kvclient: reading the tablet from another replica")

// verifyRows checks every cell that carries a checksum.
func verifyRows(rows ...*kvpb.Row) error {
	for _, r := range rows {
		for _, c := range r.GetCells() {
			if c.Crc32C != nil && *c.Crc32C != cellsum.Value(c.Value) {
				return &badCellsError{row: r.Key, family: c.Family, qualifier: c.Qualifier}
			}
		}
	}
	return nil
}

// readGuard is one read operation's record of the stores whose answers
// failed their cell checksums.
type readGuard struct{ bad []uint64 }

// good lists desc's replicas whose answers have not failed.
func (g *readGuard) good(desc *metapb.TabletDescriptor) []*metapb.Replica {
	var out []*metapb.Replica
	for _, rep := range desc.GetReplicas() {
		if !containsStore(g.bad, rep.StoreId) {
			out = append(out, rep)
		}
	}
	return out
}

func containsStore(ids []uint64, id uint64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// badAnswer records that store's answer for loc failed its checksums and
// turns the rest of the read into a read at a fixed timestamp (the one it
// had, or now: still after the read began) that any replica but the
// failed ones may serve, naming the failed store (ReadOptions
// .suspect_store_id) so that the replica serving it has the tablet
// checked.
func (c *Client) badAnswer(loc location, store uint64, ro *kvpb.ReadOptions, g *readGuard, err error) {
	c.metrics.badCell()
	c.log.Warn("kvclient: a replica's answer failed its cell checksums; reading it from another replica", "tablet", loc.tabletID(), "store", store, "err", err)
	g.bad = append(g.bad, store)
	if ro.ReadTimestamp == 0 {
		ro.ReadTimestamp = c.Now()
	}
	ro.AnyReplica = true
	ro.SuspectStoreId = store
}

// attemptRead sends one read attempt: a follower read to a random replica
// (never one whose answer failed its checksums), any other read to the
// leader. An answer that fails its checksums is read again at once from
// each other replica in turn.
func (c *Client) attemptRead(ctx context.Context, loc location, ro *kvpb.ReadOptions, g *readGuard, f sendFunc) (uint64, error) {
	if ro.GetAnyReplica() && ro.GetReadTimestamp() > 0 {
		reps := g.good(loc.desc)
		if len(reps) == 0 && len(g.bad) > 0 {
			return 0, newError(ErrChecksumMismatch, nil, "tablet %d: the answers of stores %v all failed their cell checksums", loc.tabletID(), g.bad)
		}
		if len(reps) > 0 {
			loc.leader = reps[rand.IntN(len(reps))].StoreId
		}
	}
	store, err := c.attempt(ctx, loc, false, f)
	var bad *badCellsError
	for errors.As(err, &bad) {
		c.badAnswer(loc, store, ro, g, err)
		reps := g.good(loc.desc)
		if len(reps) == 0 {
			return store, newError(ErrChecksumMismatch, err, "tablet %d: the answers of stores %v all failed their cell checksums", loc.tabletID(), g.bad)
		}
		loc.leader = reps[0].StoreId
		store, err = c.attempt(ctx, loc, false, f)
	}
	if err == nil {
		ro.SuspectStoreId = 0 // reported by the replica that served this
	}
	return store, err
}
