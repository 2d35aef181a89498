// Package pdclient talks to a placement driver cluster. Give it every PD
// member's client address: it finds the leader, follows NotPDLeader
// redirects, retries while no leader is elected (until the caller's
// deadline), and stamps every request with the cluster ID it learned, so
// a process never silently joins another cluster.
package pdclient
