// Package process runs whole clusters of real `shale pd` and `shale tablet`
// processes on loopback and checks the placement driver's behaviour end to
// end: automatic splits, rebalancing onto a new store, repair after a store
// dies, and PD leader failover, with no acknowledged row lost. Processes
// run with --insecure unless the cluster is secure (security_test.go:
// certificates from `shale cert`, each tablet server on its own loopback
// address with its own certificate).
//
// Each test runs its own processes on its own ports and directories. Those
// that mostly wait on PD's scheduling, heartbeats and processes run in
// parallel with each other (-parallel of them at once, GOMAXPROCS by
// default); the two that bound how long something takes
// (TestTableCreateDefaultCluster, TestDiskFullProcess) run alone first.
package process
