// Package ycsb is a Go implementation of the YCSB core workload
// (site.ycsb.workloads.CoreWorkload): its property names and defaults, its
// key choosers (uniform, zipfian, scrambled zipfian, latest, hotspot), its
// operation mix (read, update, insert, scan, read-modify-write), its client
// loop (threads, target rate, operation count, maximum execution time) and
// its output (status lines every status.interval seconds and the
// "[OVERALL], RunTime(ms), ..." summary with HDR-histogram latencies).
//
// A YCSB user should be able to read everything here with YCSB's manual in
// hand: workload property files (-P) and overrides (-p) mean what they mean
// in YCSB, and the summary parses with the same scripts.
//
// # Usage
//
//	props := ycsb.NewProperties()
//	props.Set("recordcount", "1000")
//	w, err := ycsb.NewWorkload(props)
//	res, err := ycsb.Run(ctx, ycsb.RunOptions{Phase: ycsb.Load, Workload: w, Driver: d, Threads: 16, Seed: 1})
//	ycsb.WriteText(os.Stdout, res)
//
// Drivers (bench/drivers) implement Driver and DB; this package knows no
// store.
//
// # Differences from YCSB
//
//   - Read-modify-write is one call (DB.ReadModifyWrite) that drivers run
//     as a real single-row transaction, measured as READ-MODIFY-WRITE only
//     (YCSB measures the read and the update inside it as READ and UPDATE
//     too).
//   - Latencies are recorded in HDR histograms of 3 significant digits up
//     to one minute (longer operations count as one minute); the default
//     hdrhistogram.percentiles are 50,95,99,99.9.
//   - With dataintegrity=true, scanned rows are verified too, and a read of
//     all fields that misses a field is UNEXPECTED_STATE.
//   - Every run is seeded (Seed): client thread i draws from its own
//     generator seeded with Seed and i.
package ycsb
