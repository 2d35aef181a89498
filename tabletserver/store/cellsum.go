package store

// End-to-end cell checksums (docs/reliability.md, "End-to-end cell
// checksums"; the definition is internal/cellsum's).
//
// A write's cells carry the client's CRC-32C. It is checked twice: by the
// leader before it proposes (a bit flipped between the client and the
// server: refused, nothing proposed) and by every replica when it applies
// the entry (a bit flipped in the proposal's encoding, the raft log or the
// transport). Apply refuses a mismatch the same way on every replica that
// sees it and writes nothing of that row; a replica alone in seeing it
// (its own log copy went bad) diverges by that refusal, which the next
// consistency check finds, and its group rebuilds it.
//
// A read returns each cell's CRC-32C, from cellChecksum. kvclient checks
// it; on a mismatch it reads from another replica, naming the first in
// ReadOptions.suspect_store_id, and the replica that serves that read has
// the tablet's leader run a consistency check (noteSuspect).

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/shaledb/shale/internal/cellsum"
	"github.com/shaledb/shale/internal/cellvalue"
	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/transportpb"
)

// cellChecksum is the CRC-32C a read returns with a cell: the one stored
// with it in the engine (cellvalue's envelope, kept since the write's
// apply and checked by the read), so a bit flipped at rest or on the way
// back is caught by the client too; computed from the payload for a value
// stored without one.
func cellChecksum(x cellvalue.Value) *uint32 {
	if x.HasCRC {
		return proto.Uint32(x.CRC)
	}
	return proto.Uint32(cellsum.Value(x.Payload))
}

// checkCellSum checks a SetCell's checksum, if it has one. tabletID is 0
// before the tablet is known (at proposal).
func checkCellSum(tabletID, storeID uint64, row []byte, c *kvpb.Mutation_SetCell, where string) error {
	if c.Crc32C == nil || *c.Crc32C == cellsum.Cell(row, c.Family, c.Qualifier, c.Value) {
		return nil
	}
	return errs.ChecksumMismatch(tabletID, storeID, fmt.Sprintf("%s (row %q, column %s:%q)", where, truncate(row), c.Family, truncate(c.Qualifier)))
}

func truncate(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

// suspectInterval is the least time between two checks asked of a tablet
// by clients' reports: a client retrying many reads of a bad replica asks
// for one check, not one per read.
const suspectInterval = 10 * time.Second

// suspects rate-limits the checks clients' reports ask for.
type suspects struct {
	mu   sync.Mutex
	last map[uint64]time.Time // tablet → when a check was last asked
}

// due reports whether a check of tablet may be asked now, and notes it.
// The map stays bounded: entries older than the interval are dropped
// when it grows.
func (sp *suspects) due(tablet uint64, now time.Time) bool {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.last == nil {
		sp.last = map[uint64]time.Time{}
	}
	if t, ok := sp.last[tablet]; ok && now.Sub(t) < suspectInterval {
		return false
	}
	if len(sp.last) >= 1024 {
		for id, t := range sp.last {
			if now.Sub(t) >= suspectInterval {
				delete(sp.last, id)
			}
		}
	}
	sp.last[tablet] = now
	return true
}

// forget drops tablet's last ask: the check it asked for did not run.
func (sp *suspects) forget(tablet uint64) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	delete(sp.last, tablet)
}

// noteSuspectRead handles a read that names a store whose answer to it
// failed its cell checksums at the client (0: none).
func (s *Store) noteSuspectRead(tabletID, suspect uint64) {
	if suspect != 0 {
		s.noteSuspect(tabletID, fmt.Sprintf("a client's read from store %d failed its cell checksums", suspect))
	}
}

// noteSuspect has the tablet's leader run a consistency check, in the
// background: a replica whose data is bad is then marked bad and rebuilt;
// a flip on the network leaves a consistent check behind.
func (s *Store) noteSuspect(tabletID uint64, why string) {
	if !s.suspects.due(tabletID, s.opts.Clock.Now()) {
		return
	}
	r := s.getReplica(tabletID)
	if r == nil {
		return
	}
	s.event(tabletID, "%s; checking the tablet", why)
	r.mu.Lock()
	isLeader, leader := r.mu.isLeader, r.mu.peers[r.mu.leaderID]
	r.mu.Unlock()
	err := s.stopper.RunAsyncTask(context.Background(), "store.suspect-check", func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, s.opts.ConsistencyCheckTimeout)
		defer cancel()
		var err error
		switch {
		case isLeader:
			_, err = s.CheckTablet(ctx, tabletID)
		case leader != 0:
			var cl transportpb.RaftTransportClient
			if cl, err = s.transport.Client(leader); err == nil {
				_, err = cl.ReportBadReplica(ctx, &transportpb.ReportBadReplicaRequest{TabletId: tabletID, FromStore: s.opts.StoreID, Suspect: true,
					Reason: why})
			}
		default:
			err = fmt.Errorf("no leader known")
		}
		if err != nil {
			// Lost (no leader known, the leader moved, the report did not
			// arrive): the next client report asks again at once rather
			// than suspectInterval later.
			s.suspects.forget(tabletID)
			s.log.Warn("could not have a suspect tablet checked", "tablet", tabletID, "why", why, "err", err)
		}
	})
	if err != nil {
		s.log.Debug("suspect check not started", "err", err)
	}
}
