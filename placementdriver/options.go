package placementdriver

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/shaledb/shale/internal/authz"
	"github.com/shaledb/shale/internal/security"
)

// Options configure one PD member.
type Options struct {
	// Name identifies this member; it must appear in InitialCluster.
	Name string
	// DataDir holds the member's metadata replica. Required.
	DataDir string
	// ClientAddr serves the PD API to tablet servers, clients and ctl.
	ClientAddr string
	// PeerAddr serves raft traffic between PD members.
	PeerAddr string
	// HTTPAddr serves /metrics, /healthz and the JSON API. Empty: none.
	HTTPAddr string
	// InitialCluster lists every member as name → peer address. Member IDs
	// are the 1-based positions of the names in sorted order, so every
	// member derives the same IDs. Default: {Name: PeerAddr}.
	InitialCluster map[string]string
	// ClientAddrs maps member names to client addresses, so a follower can
	// tell clients where the leader serves. Members learn the others' client
	// addresses from the metadata group; this seeds it. Optional.
	ClientAddrs map[string]string

	// Schedule holds the initial values of the runtime-changeable
	// scheduling configuration (see Config). Zero fields: defaults.
	Schedule Config

	// TickInterval is the metadata group's raft tick. Default 100ms.
	TickInterval time.Duration
	// StoreHeartbeatTimeout: a store not heard from for this long is
	// Disconnected. Default 20s.
	StoreHeartbeatTimeout time.Duration
	// TLS is the member's identity: its client, peer and HTTP listeners
	// serve mutual TLS with it, and it connects to members and stores
	// with it. nil: plaintext (--insecure).
	TLS *security.Reloader
	// Logger gets structured logs. Default slog.Default().
	Logger *slog.Logger
	// Authz is authz.Secure when the member serves TLS (every call is
	// then authenticated and authorized, internal/authz), else
	// authz.Insecure, which cmd/shale sets only with --insecure. Zero:
	// Secure with TLS, else Insecure.
	Authz authz.Mode
	// GCLifeTime is how far the cluster GC safe point trails the clock
	// when no service holds it back (safepoint.go): versions younger than
	// this survive the stores' version GC. Default 0: policies apply at once.
	GCLifeTime time.Duration
}

// EnsureDefaults returns o with defaults filled in.
func (o Options) EnsureDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.TickInterval <= 0 {
		o.TickInterval = 100 * time.Millisecond
	}
	if o.StoreHeartbeatTimeout <= 0 {
		o.StoreHeartbeatTimeout = 20 * time.Second
	}
	if len(o.InitialCluster) == 0 && o.Name != "" {
		o.InitialCluster = map[string]string{o.Name: o.PeerAddr}
	}
	o.Schedule = o.Schedule.withDefaults()
	if o.Authz == authz.ModeUnset {
		// Serving TLS means authorizing every call: a process is never
		// encrypted yet open to every certificate holder by accident.
		o.Authz = authz.Insecure
		if o.TLS != nil {
			o.Authz = authz.Secure
		}
	}
	return o
}

// Validate rejects incomplete options.
func (o Options) Validate() error {
	switch {
	case o.Name == "":
		return errors.New("pd: a member name is required (--name)")
	case o.DataDir == "":
		return errors.New("pd: a data directory is required (--data-dir)")
	case o.ClientAddr == "":
		return errors.New("pd: a client address is required (--client-addr)")
	case o.PeerAddr == "":
		return errors.New("pd: a peer address is required (--peer-addr)")
	}
	if _, ok := o.InitialCluster[o.Name]; !ok {
		return fmt.Errorf("pd: member %q is not in --initial-cluster", o.Name)
	}
	return nil
}

// memberIDs assigns IDs 1..n to the sorted member names.
func memberIDs(cluster map[string]string) map[string]uint64 {
	names := make([]string, 0, len(cluster))
	for n := range cluster {
		names = append(names, n)
	}
	sort.Strings(names)
	ids := make(map[string]uint64, len(names))
	for i, n := range names {
		ids[n] = uint64(i + 1)
	}
	return ids
}

// ParseInitialCluster parses "a=HOST:PORT,b=HOST:PORT".
func ParseInitialCluster(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, addr, ok := strings.Cut(part, "=")
		if !ok || name == "" || addr == "" {
			return nil, fmt.Errorf("initial cluster entry %q is not NAME=HOST:PORT", part)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("initial cluster names member %q twice", name)
		}
		out[name] = addr
	}
	if len(out) == 0 {
		return nil, errors.New("initial cluster is empty")
	}
	return out, nil
}
