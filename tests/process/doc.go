// Package process runs whole clusters of real `shale pd` and `shale tablet`
// processes on loopback and checks the placement driver's behaviour end to
// end: automatic splits, rebalancing onto a new store, repair after a store
// dies, and PD leader failover, with no acknowledged row lost. Processes
// run with --insecure unless the cluster is secure (security_test.go:
// certificates from `shale cert`, each tablet server on its own loopback
// address with its own certificate).
package process
