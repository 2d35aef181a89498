// Package storetest runs several stores in one process for tests: real
// Pebble instances in temporary directories, real gRPC on loopback, and a
// shared network filter that can partition stores, drop a fraction of
// messages and delay them, or hold every raft message until the test
// delivers or drops it (HoldMessages; the store datadriven harness). Stores
// can be stopped, crashed and restarted on the same directory and address.
package storetest
