package main

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shaledb/shale/placementdriver"
)

func init() { subcommands = append(subcommands, newPDCommand) }

// pdConfig is the `pd` section of the config: flags, SHALE_PD_* env vars,
// or the config file's pd table (see bindConfig).
type pdConfig struct {
	Name                 string        `mapstructure:"name"`
	DataDir              string        `mapstructure:"data-dir"`
	ClientAddr           string        `mapstructure:"client-addr"`
	PeerAddr             string        `mapstructure:"peer-addr"`
	HTTPAddr             string        `mapstructure:"http-addr"`
	InitialCluster       []string      `mapstructure:"initial-cluster"`
	InitialClusterClient []string      `mapstructure:"initial-cluster-client"`
	MaxReplicas          int           `mapstructure:"max-replicas"`
	LocationLabels       []string      `mapstructure:"location-labels"`
	SplitSize            string        `mapstructure:"split-size"`
	MaxStoreDownTime     time.Duration `mapstructure:"max-store-down-time"`
	// Schedule holds the file's other scheduling keys (split-qps,
	// merge-size, ...): every key of placementdriver.ConfigKeys may appear
	// in the pd section.
	Schedule map[string]any `mapstructure:",remain"`
}

// runPD runs the member; tests replace it to inspect the options.
var runPD = placementdriver.Run

func newPDCommand() *cobra.Command {
	def := placementdriver.Options{}.EnsureDefaults().Schedule
	cmd := &cobra.Command{
		Use:   "pd",
		Short: "Run a placement driver (PD) member",
		Long: `Run one placement driver member. PD keeps the cluster's metadata (stores,
tablets, tables, IDs, timestamps) in a raft group of 1 or 3 members; the
leader serves the PD API over gRPC on --client-addr (tablet servers,
clients and 'shale ctl' connect there) and the JSON API, /metrics and
/healthz over HTTP on --http-addr. Followers redirect to the leader.

Every member is started with the same --initial-cluster (member name to
peer address, this member included); --initial-cluster-client gives the
members' client addresses so a follower can point clients at the leader.

--max-replicas, --location-labels, --split-size and --max-store-down-time
are the initial scheduling configuration of a new cluster; the config file's
pd section may set any other key 'shale ctl config show' lists. Once the
cluster exists its configuration lives in PD: change it with
'shale ctl config set KEY VALUE'.

Every flag can also be set as SHALE_PD_<FLAG> (e.g. SHALE_PD_DATA_DIR) or in
the "pd" section of the --config file. The member runs until SIGINT or
SIGTERM, then shuts down cleanly.`,
		Example: `  # a single member
  shale pd --name pd1 --data-dir /var/lib/shale/pd1

  # one of three members
  shale pd --name pd1 --data-dir /var/lib/shale/pd1 \
    --client-addr 10.0.0.1:2379 --peer-addr 10.0.0.1:2380 --http-addr 10.0.0.1:2381 \
    --initial-cluster pd1=10.0.0.1:2380,pd2=10.0.0.2:2380,pd3=10.0.0.3:2380 \
    --initial-cluster-client pd1=10.0.0.1:2379,pd2=10.0.0.2:2379,pd3=10.0.0.3:2379`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := pdOptions(cmd)
			if err != nil {
				return err
			}
			return runPD(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.String("name", "pd1", "this member's name; it must appear in --initial-cluster")
	f.String("data-dir", "", `data directory (default "shale-data/pd-<name>")`)
	f.String("client-addr", "127.0.0.1:2379", "gRPC listen address of the PD API (tablet servers, clients, shale ctl)")
	f.String("peer-addr", "127.0.0.1:2380", "listen address for raft traffic between PD members")
	f.String("http-addr", "127.0.0.1:2381", `HTTP listen address for the JSON API, /metrics and /healthz ("" disables)`)
	f.StringSlice("initial-cluster", nil, "every member as NAME=PEER_HOST:PORT,... (default: this member alone at --peer-addr)")
	f.StringSlice("initial-cluster-client", nil, "the members' client addresses NAME=HOST:PORT,... so followers can redirect clients")
	f.Int("max-replicas", def.MaxReplicas, "initial config: replicas per tablet")
	f.StringSlice("location-labels", def.LocationLabels, "initial config: store label keys to spread replicas over, most general first (e.g. zone,rack,host)")
	f.String("split-size", placementdriver.FormatSize(def.SplitSize), "initial config: split tablets larger than this (e.g. 96MiB, 256KiB)")
	f.Duration("max-store-down-time", def.MaxStoreDownTime, "initial config: a store silent for this long is Down and its replicas are repaired elsewhere")
	addServerTLSFlags(f)
	return cmd
}

// pdOptions resolves the command's settings into placementdriver.Options.
func pdOptions(cmd *cobra.Command) (placementdriver.Options, error) {
	var cfg pdConfig
	if err := bindConfig(cmd, "pd", &cfg); err != nil {
		return placementdriver.Options{}, err
	}
	o := placementdriver.Options{
		Name:       strings.TrimSpace(cfg.Name),
		DataDir:    cfg.DataDir,
		ClientAddr: cfg.ClientAddr,
		PeerAddr:   cfg.PeerAddr,
		HTTPAddr:   cfg.HTTPAddr,
		Logger:     slog.Default(),
	}
	var err error
	if o.TLS, err = serverTLS(cmd, "shale pd"); err != nil {
		return o, err
	}
	if o.DataDir == "" && o.Name != "" {
		o.DataDir = filepath.Join("shale-data", "pd-"+o.Name)
	}
	if ic := strings.Join(cfg.InitialCluster, ","); strings.TrimSpace(ic) != "" {
		if o.InitialCluster, err = placementdriver.ParseInitialCluster(ic); err != nil {
			return o, fmt.Errorf("--initial-cluster: %w", err)
		}
	}
	if icc := strings.Join(cfg.InitialClusterClient, ","); strings.TrimSpace(icc) != "" {
		if o.ClientAddrs, err = placementdriver.ParseInitialCluster(icc); err != nil {
			return o, fmt.Errorf("--initial-cluster-client: %w", err)
		}
	}

	sched, err := pdSchedule(cfg)
	if err != nil {
		return o, err
	}
	o.Schedule = sched
	o = o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return o, err
	}
	for name := range o.ClientAddrs {
		if _, ok := o.InitialCluster[name]; !ok {
			return o, fmt.Errorf("--initial-cluster-client: member %q is not in --initial-cluster", name)
		}
	}
	return o, nil
}

// pdSchedule builds the initial scheduling configuration: the file's extra
// schedule keys first, then the four flags (which hold their defaults
// unless set).
func pdSchedule(cfg pdConfig) (placementdriver.Config, error) {
	var sc placementdriver.Config
	known := placementdriver.ConfigKeys()
	extra := make([]string, 0, len(cfg.Schedule))
	for k := range cfg.Schedule {
		extra = append(extra, k)
	}
	sort.Strings(extra)
	for _, k := range extra {
		if isSecurityFlag(k) {
			continue // read from the security section (security.go)
		}
		if !slices.Contains(known, k) {
			slog.Warn("config: unknown key ignored", "key", "pd."+k)
			continue
		}
		if err := sc.Set(k, scheduleValue(cfg.Schedule[k])); err != nil {
			return sc, fmt.Errorf("config pd.%s: %w", k, err)
		}
	}
	if cfg.MaxReplicas < 1 {
		return sc, fmt.Errorf("--max-replicas: want at least 1, got %d", cfg.MaxReplicas)
	}
	sc.MaxReplicas = cfg.MaxReplicas
	var labels []string
	for _, l := range cfg.LocationLabels {
		if l = strings.TrimSpace(l); l != "" {
			labels = append(labels, l)
		}
	}
	sc.LocationLabels = labels
	size, err := placementdriver.ParseSize(cfg.SplitSize)
	if err != nil {
		return sc, fmt.Errorf("--split-size: %w", err)
	}
	sc.SplitSize = size
	if cfg.MaxStoreDownTime <= 0 {
		return sc, fmt.Errorf("--max-store-down-time: want a positive duration such as 30m, got %s", cfg.MaxStoreDownTime)
	}
	sc.MaxStoreDownTime = cfg.MaxStoreDownTime
	return sc, nil
}

// scheduleValue renders a config file value as Config.Set expects it.
func scheduleValue(v any) string {
	switch x := v.(type) {
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = fmt.Sprint(e)
		}
		return strings.Join(parts, ",")
	case []string:
		return strings.Join(x, ",")
	}
	return fmt.Sprint(v)
}
