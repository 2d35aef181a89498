// Package freeport picks free loopback ports for servers that are told their
// address before they bind it (the playground's layout, test clusters).
//
// A port taken from ":0" lies in the kernel's ephemeral range (32768-60999
// on Linux by default), which every outgoing connection also draws from:
// between closing the probe listener and the server binding the port,
// another process's connection can take it, and the server then fails with
// "address already in use" (seen in CI with many test binaries running at
// once). Ports are therefore drawn at random below that range, never twice
// in one process, and never while another live process on the machine
// holds them (a reservation file per port under $TMPDIR/shale-freeport):
// test binaries running at once drew the same port before either bound it.
package freeport
