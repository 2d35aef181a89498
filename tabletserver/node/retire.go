package node

// A store whose data is corrupt at open (a flipped byte in its WAL, or the
// raft log missing entries it acknowledged) cannot be trusted and cannot
// be partly repaired: the WAL is shared by every replica of the store, and
// a replica that forgot what it voted for or acknowledged could break
// raft's safety if it kept its identity. So the node retires the store,
// as CockroachDB and TiKV ask an operator to do by hand (decommission,
// wipe, rejoin as a new store), but on its own and without stopping:
//
//  1. identity.json records the retirement (the old store ID, no store
//     ID), durably, before anything else: an interrupted retirement is
//     finished at the next start.
//  2. The store's files are moved to DATA_DIR/corrupt-<unix time> for a
//     person to look at (one such directory is kept; docs/reliability.md).
//  3. PD drains the old store: every tablet gets a new replica on another
//     store, rebuilt from its healthy replicas by snapshot, and the old
//     one is removed; the old store becomes a tombstone.
//  4. The node joins as a new, empty store, which PD fills by rebalancing.
//
// Meanwhile the node serves nothing and its health check says not ready;
// the process neither exits nor loops.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/placementdriver/pdclient"
	"github.com/shaledb/shale/proto/pdpb"
	"github.com/shaledb/shale/tabletserver/store"
)

// errRetired says run retired a corrupt store: run again as a new one.
var errRetired = errors.New("node: the store's data is corrupt; it was retired")

// retirePoll is how often the node asks PD whether the retired store is
// drained.
const retirePoll = time.Second

// retire records that store id is retired (step 1 above).
func retire(o Options, id identity, cause error, log *slog.Logger) error {
	log.Error("the store's data is corrupt: retiring it; its tablets are rebuilt from their other replicas and this node rejoins as a new store",
		"store", id.StoreID, "data_dir", o.DataDir, "err", cause)
	return writeIdentity(o.DataDir, identity{ClusterID: id.ClusterID, Retired: id.StoreID})
}

// finishRetire carries out steps 2-3 for a retirement identity.json
// records, waiting until PD made the old store a tombstone, and returns
// the identity to join with (no store ID).
func finishRetire(ctx context.Context, o Options, cl *pdclient.Client, id identity, log *slog.Logger) (identity, error) {
	if err := quarantine(o.DataDir); err != nil {
		return id, fmt.Errorf("node: moving the corrupt store's files aside: %w", err)
	}
	log.Warn("waiting for the placement driver to rebuild the retired store's replicas elsewhere", "retired_store", id.Retired)
	for {
		done, err := drained(ctx, cl, id.Retired)
		if done {
			break
		}
		if err != nil {
			log.Warn("retired store not drained yet", "retired_store", id.Retired, "err", err)
		}
		select {
		case <-ctx.Done():
			return id, ctx.Err()
		case <-time.After(retirePoll):
		}
	}
	log.Warn("retired store is a tombstone; joining as a new store", "retired_store", id.Retired)
	id = identity{ClusterID: id.ClusterID}
	return id, writeIdentity(o.DataDir, id)
}

// drained asks PD to drain store id (again: idempotent) and reports
// whether it is a tombstone.
func drained(ctx context.Context, cl *pdclient.Client, id uint64) (bool, error) {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := cl.GetStore(rctx, &pdpb.GetStoreRequest{StoreId: id})
	switch {
	case status.Code(err) == codes.NotFound:
		return true, nil // never registered: nothing to drain
	case err != nil:
		return false, err
	case resp.GetStore().GetState() == pdpb.StoreState_TOMBSTONE:
		return true, nil
	case resp.GetStore().GetState() != pdpb.StoreState_OFFLINE:
		_, err = cl.DrainStore(rctx, &pdpb.DrainStoreRequest{StoreId: id})
	}
	return false, err
}

// quarantine moves the store's files (store.DataSubdirs) into a new
// DATA_DIR/corrupt-<unix time>, removing older such directories so that
// at most one copy of a corrupt store takes disk space. Idempotent: with
// no store files left it does nothing.
func quarantine(dir string) error {
	var present []string
	for _, name := range store.DataSubdirs {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			present = append(present, name)
		}
	}
	if len(present) == 0 {
		return nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "corrupt-") {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	aside := filepath.Join(dir, fmt.Sprintf("corrupt-%d", time.Now().Unix()))
	if err := os.Mkdir(aside, 0o755); err != nil {
		return err
	}
	for _, name := range present {
		if err := os.Rename(filepath.Join(dir, name), filepath.Join(aside, name)); err != nil {
			return err
		}
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
