// Package process runs whole clusters of real `shale pd` and `shale tablet`
// processes on loopback and checks the placement driver's behaviour end to
// end: automatic splits, rebalancing onto a new store, repair after a store
// dies, and PD leader failover, with no acknowledged row lost.
package process
