package main

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shaledb/shale/tabletserver/node"
)

func init() { subcommands = append(subcommands, newTabletCommand) }

// tabletConfig is the `tablet` section of the config: flags, SHALE_TABLET_*
// env vars, or the config file's tablet table (see bindConfig).
type tabletConfig struct {
	StoreID           uint64        `mapstructure:"store-id"`
	DataDir           string        `mapstructure:"data-dir"`
	Addr              string        `mapstructure:"addr"`
	HTTPAddr          string        `mapstructure:"http-addr"`
	PD                []string      `mapstructure:"pd"`
	HeartbeatInterval time.Duration `mapstructure:"heartbeat-interval"`
	Peers             []string      `mapstructure:"peers"`
	Labels            []string      `mapstructure:"labels"`
	Bootstrap         bool          `mapstructure:"bootstrap"`
	IngestBytesPerSec int64         `mapstructure:"ingest-bytes-per-sec"`
	// Consistency checks (docs/reliability.md).
	ConsistencyCheckInterval    time.Duration `mapstructure:"consistency-check-interval"`
	ConsistencyCheckBytesPerSec int64         `mapstructure:"consistency-check-bytes-per-sec"`
	MinFreeBytes                int64         `mapstructure:"min-free-bytes"`
	BallastBytes                int64         `mapstructure:"ballast-bytes"`
	DiskProbeInterval           time.Duration `mapstructure:"disk-probe-interval"`
	// Admission control (docs/qos.md): on or off.
	Admission string `mapstructure:"admission"`
}

// admissionUsage is the --admission flag's help, shared with playground.
const admissionUsage = "admission control (docs/qos.md): on, or off to admit every request and run background work at fixed rates (for A/B benchmarks)"

// admissionOff parses --admission.
func admissionOff(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "on", "":
		return false, nil
	case "off":
		return true, nil
	}
	return false, fmt.Errorf("--admission must be on or off, got %q", v)
}

// runTabletNode runs the server; tests replace it to inspect the options.
var runTabletNode = node.Run

func newTabletCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tablet",
		Short: "Run a tablet server (a store hosting tablet replicas)",
		Long: `Run a tablet server: one store holding replicas of many tablets, serving
the raft transport and the Tablet API over gRPC on --addr, and /metrics and
/healthz over HTTP on --http-addr. It runs until SIGINT or SIGTERM, then
shuts down cleanly.

With --pd the store joins the cluster of that placement driver: it
registers (getting a store id unless --store-id is given), remembers the
cluster and its id in DATA_DIR/identity.json, reports to PD every
--heartbeat-interval and carries out its commands (add or remove replicas,
move leaders, split, merge). PD creates the first tablet once enough
stores have joined.

Without --pd the cluster is static: every store is started with the same
--peers (store id to gRPC address, this store included), and a new cluster
is created by starting every store with --bootstrap, which creates tablet
1 over the whole key space with one replica per store, and the raw
key/value table 1 ("kv", family "v"). --bootstrap on a store that already
holds tablets does nothing.

Every flag can also be set as SHALE_TABLET_<FLAG> (e.g. SHALE_TABLET_STORE_ID)
or in the "tablet" section of the --config file.`,
		Example: `  shale tablet --data-dir /tmp/s1 --addr 127.0.0.1:20161 --http-addr 127.0.0.1:20181 \
    --pd 127.0.0.1:2379 --labels zone=z1,host=h1

  shale tablet --store-id 1 --data-dir /tmp/s1 --addr 127.0.0.1:20161 \
    --http-addr 127.0.0.1:20181 --bootstrap \
    --peers 1=127.0.0.1:20161,2=127.0.0.1:20162,3=127.0.0.1:20163`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := tabletOptions(cmd)
			if err != nil {
				return err
			}
			return runTabletNode(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.Uint64("store-id", 0, "this store's id, unique in the cluster (required without --pd; with --pd, PD assigns one)")
	f.String("data-dir", "", `data directory (default "shale-data/store-<store-id>")`)
	f.String("addr", "127.0.0.1:20160", "gRPC listen address (raft transport and Tablet API)")
	f.String("http-addr", "127.0.0.1:20180", `HTTP listen address for /metrics and /healthz ("" disables)`)
	f.StringSlice("pd", nil, "placement driver client addresses HOST:PORT,... (any or all members)")
	f.Duration("heartbeat-interval", 10*time.Second, "how often to report to the placement driver")
	f.StringSlice("peers", nil, "static store map STORE_ID=HOST:PORT,... including this store (default: this store alone)")
	f.StringSlice("labels", nil, "store labels KEY=VALUE,... (e.g. zone=z1,rack=r1)")
	f.Bool("bootstrap", false, "create the first tablet and the kv table if this store has no tablet yet")
	f.Int64("ingest-bytes-per-sec", 0, "how fast this store takes in SSTs uploaded by shale import (0: 256 MiB/s; negative: unlimited)")
	f.Duration("consistency-check-interval", 24*time.Hour, "how often the leader of each tablet compares its replicas (negative: only on demand, shale ctl check)")
	f.Int64("consistency-check-bytes-per-sec", 8<<20, "how fast this store hashes its replicas for consistency checks (negative: unlimited)")
	f.Int64("min-free-bytes", 0, "below this much free space on the data directory's file system the store refuses writes with DiskFull (0: 2% of the disk, between 64 MiB and 2 GiB; negative: only on ENOSPC)")
	f.Int64("ballast-bytes", 0, "size of the ballast file reserved in the data directory and released when the disk fills (0: 1% of the disk, at most 1 GiB; negative: none)")
	f.Duration("disk-probe-interval", time.Second, "how often the store checks its free space")
	f.String("admission", "on", admissionUsage)
	addServerTLSFlags(f)
	return cmd
}

// tabletOptions resolves the command's settings into node.Options.
func tabletOptions(cmd *cobra.Command) (node.Options, error) {
	var cfg tabletConfig
	if err := bindConfig(cmd, "tablet", &cfg); err != nil {
		return node.Options{}, err
	}
	peers, err := node.ParsePeers(strings.Join(cfg.Peers, ","))
	if err != nil {
		return node.Options{}, fmt.Errorf("--peers: %w", err)
	}
	labels, err := node.ParseLabels(strings.Join(cfg.Labels, ","))
	if err != nil {
		return node.Options{}, fmt.Errorf("--labels: %w", err)
	}
	if len(cfg.PD) > 0 && cfg.DataDir == "" {
		return node.Options{}, fmt.Errorf("--data-dir is required with --pd")
	}
	dataDir := cfg.DataDir
	if dataDir == "" && cfg.StoreID != 0 {
		dataDir = filepath.Join("shale-data", "store-"+strconv.FormatUint(cfg.StoreID, 10))
	}
	opts := node.Options{
		StoreID:           cfg.StoreID,
		DataDir:           dataDir,
		Addr:              cfg.Addr,
		HTTPAddr:          cfg.HTTPAddr,
		PD:                cfg.PD,
		HeartbeatInterval: cfg.HeartbeatInterval,
		Peers:             peers,
		Labels:            labels,
		Bootstrap:         cfg.Bootstrap,
		Logger:            slog.Default(),
	}
	opts.Store.IngestBytesPerSec = cfg.IngestBytesPerSec
	opts.Store.ConsistencyCheckInterval = cfg.ConsistencyCheckInterval
	opts.Store.ConsistencyCheckBytesPerSec = cfg.ConsistencyCheckBytesPerSec
	opts.Store.MinFreeBytes = cfg.MinFreeBytes
	opts.Store.BallastBytes = cfg.BallastBytes
	opts.Store.DiskProbeInterval = cfg.DiskProbeInterval
	if opts.Store.Admission.Disabled, err = admissionOff(cfg.Admission); err != nil {
		return node.Options{}, err
	}
	if opts.TLS, err = serverTLS(cmd, "shale tablet"); err != nil {
		return node.Options{}, err
	}
	opts = opts.EnsureDefaults()
	return opts, opts.Validate()
}
