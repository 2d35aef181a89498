// Package e2e is the nemesis suite: a Jepsen-style test of a Shale cluster
// running as Docker containers (deploy/docker-compose.secure.yml: 3 PD
// members, 5 tablet servers in 3 zones, the Thrift gateway, mutual TLS on
// every port) on a private network. The clients present root's client
// certificate, which the compose file's certs-client service makes.
//
// The Docker part is behind the e2e build tag, so `make test` runs only the
// checkers' own tests (check_test.go: each checker must reject a history
// with the anomaly it exists for). `make e2e` builds the image and runs
//
//	go test -tags e2e -run TestNemesis ./tests/e2e/
//
// Each run starts a fresh compose project, runs client workers on the host
// (they reach the containers' fixed addresses over the bridge) and injects
// faults on a schedule drawn from a printed seed: container kill -9 and
// restart (tablet server, PD member), pause/unpause, network disconnect of
// one or two nodes (the PD leader, the leader store of the hot tablet),
// rolling restart, forced split and leader transfer. Then it heals every
// fault, reads the final state and checks:
//
//   - registers (read, write, check-and-mutate on 10 rows): linearizable
//     per row (porcupine); a write whose outcome is unknown (ErrAmbiguous)
//     is an operation that never returns, as in Jepsen;
//   - counters (Increment): the final value lies between the acknowledged
//     increments and those plus the unknown ones, and no two increments
//     returned the same value;
//   - sets (ReadModifyWriteRow append of unique elements, and Thrift puts of
//     unique rows): no acknowledged element lost, none duplicated, nothing
//     that was never written;
//   - scans: every full-table scan returns each preloaded row exactly once,
//     in order.
//
// Every run writes report.txt (ops, faults by kind, unknown outcomes,
// verdict) under bin/e2e/, plus on failure the histories, the porcupine
// visualization, the containers' logs and the seed. Settings (env):
// SHALE_E2E_RUNS (default 2), SHALE_E2E_DURATION (fault phase per run,
// default 90s), SHALE_TEST_SEED (first run's seed; run i uses seed+i),
// SHALE_IMAGE (default shale:dev), SHALE_E2E_OUT (report directory).
package e2e
