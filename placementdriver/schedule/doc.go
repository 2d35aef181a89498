// Package schedule is the placement driver's scheduling library, modelled on
// TiKV PD's pkg/schedule: checkers, schedulers and operators as pure
// functions of a cluster snapshot. It starts no goroutines, does no I/O and
// reads no clock (time is passed in), so every decision is a table test.
//
// # Flow
//
//	store heartbeat  ──► PD server: Cluster.PutStore(StoreFromProto(info, sinceLastHeartbeat))
//	tablet heartbeat ──► PD server: t := TabletFromProto(report, hotReports)
//	                                Cluster.PutTablet(t)           (ErrStaleTablet: drop the report)
//	                                cmd := Controller.Dispatch(t, now)
//	                     ◄── TabletHeartbeatResponse{commands: [cmd]} (if cmd != nil)
//	every few seconds:   Coordinator.Round(cluster, now)
//	                       Controller.Expire(now)
//	                       for each tablet without an operator, in key order:
//	                         ReplicaChecker → PlacementChecker → SplitChecker → MergeChecker
//	                         (the first *Operator wins) → Controller.AddOperator
//	                       BalanceLeaderScheduler, HotScheduler, BalanceTabletScheduler
//	                         .Schedule(cluster, cfg) → Controller.AddOperator
//
// An Operator is data: a tablet ID, a kind and a list of Steps (AddLearner,
// PromoteLearner, RemoveReplica, ChangeReplicas for the joint promote+remove
// of a move, TransferLeader, Split, Merge). The Controller holds at most one
// running operator per tablet. On every report of that tablet, Dispatch
// skips the steps the report shows finished (IsFinished looks only at the
// reported tablet: replica present and not pending, voter, gone, leader
// moved, epoch version grown), ends the operator when none is left or its
// Timeout passed, ends it as stale when the tablet's epoch moved in a way
// its steps cannot explain (a split, or a membership change it did not make,
// such as another learner on the store it is adding one to), and otherwise
// returns the current step's TabletCommand,
// which the server sends back in the heartbeat response. PD never calls a
// tablet server; progress is judged only from later heartbeats.
//
// # Invariants
//
//   - One operator per tablet (a merge also locks its right neighbour). A
//     higher-priority kind (admin > repair > placement > split/merge > hot >
//     balance) replaces a running lower-priority one.
//   - A replica is never removed while it leads: operators transfer
//     leadership first. A move is AddLearner, then one ChangeReplicas that
//     promotes the learner and removes the old replica (joint consensus).
//   - Targets of new replicas are Up, hold no replica of the tablet, have
//     snapshot room (MaxSnapshotsPerStore counts unfinished AddLearner steps
//     on the receiving store and on the sending leader's store), and never
//     lower the tablet's isolation (PD's distinct score over LocationLabels).
//   - A voter that must be replaced is replaced by promoting a caught-up
//     learner when one is as well placed as the best new store (no
//     snapshot needed); otherwise by a move.
//   - Replicas on Disconnected stores, or Down for less than
//     MaxStoreDownTime, are not replaced.
//   - Concurrency per kind is bounded (Config *ScheduleLimit); schedulers
//     count the influence of unfinished steps so they do not overshoot.
//   - Output is deterministic for the same input and seeded *rand.Rand.
//
// # Cost
//
// Cluster keeps per-store counts, leader counts, sizes, leader QPS and
// tablet lists, and tablets sorted by start key. A Round is one pass over
// the tablets (checkers skip well-placed tablets without scoring) plus, per
// scheduler decision, work bounded by the number of stores and a fixed
// number of candidate tablets (maxTabletTries). See package sim for the
// simulator and BenchmarkScheduleRound.
//
// # Usage sketch
//
//	cfg := schedule.Config{LocationLabels: []string{"zone", "rack", "host"}}.EnsureDefaults()
//	co := schedule.NewCoordinator(cfg, idAllocator, rand.New(rand.NewSource(seed)))
//	cluster := schedule.NewCluster(stores, tablets)
//	// heartbeat handler (under the PD lock):
//	if _, err := cluster.PutTablet(t); err == nil {
//		if cmd := co.Controller.Dispatch(t, now); cmd != nil { resp.Commands = append(resp.Commands, cmd) }
//	}
//	// scheduling loop (under the same lock):
//	co.Round(cluster, now)
package schedule
