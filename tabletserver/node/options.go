package node

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shaledb/shale/internal/authz"
	"github.com/shaledb/shale/internal/security"
	"github.com/shaledb/shale/tabletserver/store"
)

// Options configure one tablet server process. The zero value of a field
// means its default.
type Options struct {
	// StoreID identifies this store in the cluster. Required, non-zero.
	StoreID uint64
	// DataDir holds the store's Pebble instance. Required; created if
	// missing.
	DataDir string
	// Addr is the host:port the gRPC server (raft transport and Tablet API)
	// listens on. Required.
	Addr string
	// HTTPAddr is the host:port of the HTTP server serving /metrics,
	// /healthz and Go profiles under /debug/pprof/. Empty: no HTTP server.
	HTTPAddr string
	// PD lists the placement driver's client addresses. With PD set the
	// store registers with it (getting its store ID when StoreID is 0),
	// resolves peers through it, heartbeats it and carries out its
	// commands; Peers and Bootstrap must then be empty.
	PD []string
	// HeartbeatInterval is how often the store reports to the placement
	// driver. Default 10s.
	HeartbeatInterval time.Duration
	// Peers maps every store ID of the cluster (this one included) to its
	// gRPC address; it is the static resolver used until the placement
	// driver exists. Default: {StoreID: Addr}, a single-store cluster.
	Peers map[uint64]string
	// Labels describe the store's failure domains (zone, rack, host). Kept
	// for the placement driver.
	Labels map[string]string
	// Bootstrap creates the first tablet (and the default raw-KV table) when
	// the store holds no tablet yet. See the package doc.
	Bootstrap bool
	// ShutdownTimeout bounds how long in-flight requests get to finish on
	// shutdown, and again how long the gRPC server gets to drain. Default 5s.
	ShutdownTimeout time.Duration
	// TLS is the server's identity: every listener (gRPC, HTTP) serves
	// mutual TLS with it, and connections to PD and to other stores use
	// it. nil: plaintext (--insecure).
	TLS *security.Reloader
	// Logger gets structured logs. Default slog.Default().
	Logger *slog.Logger
	// Store holds advanced store settings (zero: defaults). Run overrides
	// its StoreID, Dir, Resolver, TLS, Logger and Registry.
	Store store.Options
	// Authz is authz.Secure when the node serves TLS (every call is then
	// authenticated and authorized, internal/authz), else authz.Insecure,
	// which cmd/shale sets only with --insecure. Zero: Insecure.
	Authz authz.Mode

	// reopenWait is how long a failed store stays down before its disk is
	// probed (Run sets it; recover.go).
	reopenWait time.Duration
	// onServing, if set, is called once the node is serving, with the
	// addresses it actually listens on (tests pass ":0").
	onServing func(grpcAddr, httpAddr string)
}

// EnsureDefaults returns o with defaults filled in.
func (o Options) EnsureDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 5 * time.Second
	}
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = 10 * time.Second
	}
	if o.Authz == authz.ModeUnset {
		// Serving TLS means authorizing every call: a process is never
		// encrypted yet open to every certificate holder by accident.
		o.Authz = authz.Insecure
		if o.TLS != nil {
			o.Authz = authz.Secure
		}
	}
	if len(o.PD) == 0 && len(o.Peers) == 0 && o.StoreID != 0 && o.Addr != "" {
		o.Peers = map[uint64]string{o.StoreID: o.Addr}
	}
	return o
}

// Validate rejects incomplete or contradictory options.
func (o Options) Validate() error {
	if len(o.PD) > 0 {
		switch {
		case len(o.Peers) > 0:
			return errors.New("node: give either --pd (placement driver) or --peers (static cluster), not both")
		case o.Bootstrap:
			return errors.New("node: --bootstrap is for static clusters; with --pd the placement driver bootstraps the cluster")
		case o.DataDir == "":
			return errors.New("node: a data directory is required (--data-dir)")
		case o.Addr == "":
			return errors.New("node: a listen address is required (--addr)")
		}
		return nil
	}
	switch {
	case o.StoreID == 0:
		return errors.New("node: a store id is required (--store-id) and must be non-zero")
	case o.DataDir == "":
		return errors.New("node: a data directory is required (--data-dir)")
	case o.Addr == "":
		return errors.New("node: a listen address is required (--addr)")
	}
	if _, ok := o.Peers[o.StoreID]; !ok {
		return fmt.Errorf("node: peers %s do not include this store's id %d", FormatPeers(o.Peers), o.StoreID)
	}
	for id, addr := range o.Peers {
		if id == 0 {
			return errors.New("node: peers: store id 0 is not allowed")
		}
		if addr == "" {
			return fmt.Errorf("node: peers: store %d has no address", id)
		}
	}
	return nil
}

// ParsePeers parses "1=host:port,2=host:port" into a store-id → address
// map. Spaces around items are ignored; an empty string gives an empty map.
func ParsePeers(s string) (map[uint64]string, error) {
	out := map[uint64]string{}
	for _, item := range splitList(s) {
		k, v, ok := strings.Cut(item, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || v == "" {
			return nil, fmt.Errorf("peers: %q is not STORE_ID=HOST:PORT", item)
		}
		id, err := strconv.ParseUint(k, 10, 64)
		if err != nil || id == 0 {
			return nil, fmt.Errorf("peers: %q: store id must be a positive integer", item)
		}
		if _, dup := out[id]; dup {
			return nil, fmt.Errorf("peers: store %d is listed twice", id)
		}
		out[id] = v
	}
	return out, nil
}

// FormatPeers is the inverse of ParsePeers, in store-id order.
func FormatPeers(peers map[uint64]string) string {
	var b strings.Builder
	for i, id := range slices.Sorted(maps.Keys(peers)) {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%d=%s", id, peers[id])
	}
	return b.String()
}

// ParseLabels parses "zone=z1,rack=r2" into a map. An empty string gives an
// empty map; keys must be non-empty and unique.
func ParseLabels(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, item := range splitList(s) {
		k, v, ok := strings.Cut(item, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" {
			return nil, fmt.Errorf("labels: %q is not KEY=VALUE", item)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("labels: key %q is listed twice", k)
		}
		out[k] = v
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// staticResolver resolves store IDs from a fixed map.
type staticResolver map[uint64]string

func (r staticResolver) Resolve(storeID uint64) (string, error) {
	addr, ok := r[storeID]
	if !ok {
		return "", fmt.Errorf("no address known for store %d (not in --peers %s)", storeID, FormatPeers(r))
	}
	return addr, nil
}
