package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/tabletserver/store"
	"github.com/shaledb/shale/tabletserver/storetest"
)

// The raft worker reports its log syncs to the admission controller: with
// every sync over the threshold, the slow fraction rises once a write
// commits.
func TestLogSyncsReachAdmission(t *testing.T) {
	c := storetest.Start(t, 1, func(o *store.Options) {
		o.Admission.LogSyncLatencyThreshold = time.Nanosecond
	})
	c.PutSchema(storetest.TestTable)
	lo, hi := storetest.TableSpan()
	c.Bootstrap(1, lo, hi, 1)
	if err := c.Put(ctxT(t, 30*time.Second), 1, "row", "v"); err != nil {
		t.Fatal(err)
	}
	adm := c.Nodes[1].Store.Admission()
	testutils.SucceedsSoon(t, func() error {
		adm.Tick()
		if adm.State().SlowLogSyncFrac == 0 {
			return errors.New("no slow log sync observed yet")
		}
		return nil
	})
}
