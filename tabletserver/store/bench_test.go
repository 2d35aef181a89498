package store_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/tabletserver/store"
	"github.com/shaledb/shale/tabletserver/storetest"
)

// BenchmarkRaftWrites measures replicated row writes (one 100-byte cell per
// row) through gRPC on a 3-store in-process cluster with production raft
// timings, with 1 and 64 concurrent writers. It reports writes/s and the
// leader store's raft-log fsyncs per second: with group commit the latter
// stays well below the former under concurrency.
//
//	go test ./tabletserver/store/ -run '^$' -bench BenchmarkRaftWrites -benchtime 5000x
func BenchmarkRaftWrites(b *testing.B) {
	for _, writers := range []int{1, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			c := storetest.Start(b, 3, func(o *store.Options) {
				o.TickInterval = 100 * time.Millisecond
				o.ElectionTicks = 10
				o.HeartbeatTicks = 2
			})
			c.PutSchema(storetest.TestTable)
			lo, hi := storetest.TableSpan()
			c.Bootstrap(1, lo, hi, 1, 2, 3)
			leader := c.WaitLeader(1)
			client := c.Nodes[leader].Client
			ls := c.Nodes[leader].Store
			value := make([]byte, 100)
			ctx := context.Background()

			syncs0, props0 := ls.Syncs(), ls.Proposals()
			var next atomic.Int64
			var failed atomic.Int64
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						_, err := client.MutateRow(ctx, &kvpb.MutateRowRequest{
							Header: &kvpb.RequestHeader{TabletId: 1}, TableId: storetest.TestTable.TableId,
							RowKey:    []byte(fmt.Sprintf("row%09d", i)),
							Mutations: []*kvpb.Mutation{{Mutation: &kvpb.Mutation_SetCell_{SetCell: &kvpb.Mutation_SetCell{Family: "f", Qualifier: []byte("q"), Value: value}}}},
						})
						if err != nil {
							failed.Add(1)
						}
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			if n := failed.Load(); n > 0 {
				b.Fatalf("%d writes failed", n)
			}
			syncs := ls.Syncs() - syncs0
			props := ls.Proposals() - props0
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "writes/s")
			b.ReportMetric(syncs/elapsed.Seconds(), "leader-fsyncs/s")
			b.ReportMetric(props/syncs, "writes/fsync")
		})
	}
}

// BenchmarkGetNewest measures a Get of the newest version of a row of four
// 100-byte columns, straight from the store (no gRPC), on a row with no
// history and on one whose columns were written and deleted (whole-row
// deletes) `deletes` times before the last write: with tombstones that
// history stays until GC, and the read must step over or seek past it.
//
//	go test ./tabletserver/store/ -run '^$' -bench BenchmarkGetNewest -benchtime 2000x
func BenchmarkGetNewest(b *testing.B) {
	for _, deletes := range []int{0, 100} {
		b.Run(fmt.Sprintf("deletes=%d", deletes), func(b *testing.B) {
			c := storetest.Start(b, 1, func(o *store.Options) { o.GCInterval = -1 })
			c.PutSchema(storetest.TestTable)
			lo, hi := storetest.TableSpan()
			c.Bootstrap(1, lo, hi, 1)
			c.WaitLeader(1)
			s := c.Nodes[1].Store
			ctx := context.Background()
			value := make([]byte, 100)
			mutate := func(muts ...*kvpb.Mutation) {
				_, err := s.MutateRow(ctx, &kvpb.MutateRowRequest{Header: &kvpb.RequestHeader{TabletId: 1}, TableId: storetest.TestTable.TableId, RowKey: []byte("row"), Mutations: muts})
				if err != nil {
					b.Fatal(err)
				}
			}
			var puts []*kvpb.Mutation
			for q := 0; q < 4; q++ {
				puts = append(puts, &kvpb.Mutation{Mutation: &kvpb.Mutation_SetCell_{SetCell: &kvpb.Mutation_SetCell{Family: "f", Qualifier: []byte(fmt.Sprint("q", q)), Value: value}}})
			}
			for i := 0; i < deletes; i++ {
				mutate(puts...)
				mutate(&kvpb.Mutation{Mutation: &kvpb.Mutation_DeleteFromRow_{DeleteFromRow: &kvpb.Mutation_DeleteFromRow{}}})
			}
			mutate(puts...)
			req := &kvpb.GetRequest{Header: &kvpb.RequestHeader{TabletId: 1}, TableId: storetest.TestTable.TableId, RowKey: []byte("row")}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				resp, err := s.Get(ctx, req)
				if err != nil || len(resp.GetRow().GetCells()) != 4 {
					b.Fatalf("Get: %v, %v", resp, err)
				}
			}
		})
	}
}
