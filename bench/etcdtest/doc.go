// Package etcdtest starts a real single-member etcd server (Debian's
// etcd-server binary) for the etcd driver's tests. A missing binary fails
// the test with instructions instead of skipping it: the etcd baseline is
// part of what the benchmark promises.
package etcdtest
