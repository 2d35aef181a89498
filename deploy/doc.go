// Package deploy holds no code: it is the home of the deployment files
// (Dockerfile, docker-compose.yml, the example config shale.yaml, k8s/ and
// systemd/) and of the test that checks them without a cluster.
//
// manifests_test.go (part of `make test`) decodes every Kubernetes
// manifest strictly into the Kubernetes API types (an unknown or misspelt
// field fails), checks the references between them (services and
// selectors, ports, volumes, the ConfigMap), and checks that every setting
// the compose file, the manifests and the systemd units pass to a server
// is a real flag of that `shale` subcommand, as `--help` lists them. It also
// runs `shale health`, the probe the scratch image's health checks use.
//
// grafana/ holds Grafana dashboards (cluster overview, tablet server, raft,
// Pebble, PD, gateway, SQL) and prometheus/ a scrape configuration and
// alert rules. metrics_test.go runs every kind of process and checks that
// docs/metrics.md lists exactly the metrics they export and that every
// metric a dashboard or rule names is exported; `make deploy-check` runs
// promtool on the Prometheus files.
//
// The Docker nemesis suite that runs these files lives in tests/e2e.
package deploy
