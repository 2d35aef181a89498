package drivers

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/shaledb/shale/bench/ycsb"
	"github.com/shaledb/shale/internal/security"
)

// Names lists the drivers Open knows.
var Names = []string{"shale", "thrift", "etcd"}

// Config is what the drivers need to connect, plus the workload's
// properties (driver settings such as columnfamily, shale.tablets,
// thrift.framed, etcd.timeout live there, as in YCSB bindings).
type Config struct {
	// PD lists the placement driver addresses (shale).
	PD []string
	// Thrift is the gateway's address HOST:PORT (thrift).
	Thrift string
	// Etcd lists the etcd client endpoints (etcd).
	Etcd []string
	// TLS, if set, is the client certificate for a secure cluster (shale,
	// thrift).
	TLS *security.Reloader
	// Props are the run's properties.
	Props *ycsb.Properties
	// Workload gives the table and field names.
	Workload *ycsb.Workload
}

// Open opens the named driver ("shale", "thrift" or "etcd"); shale and
// thrift create the table when it is missing.
func Open(ctx context.Context, name string, cfg Config) (ycsb.Driver, error) {
	if cfg.Props == nil {
		cfg.Props = ycsb.NewProperties()
	}
	if cfg.Workload == nil {
		return nil, fmt.Errorf("drivers: Config.Workload is required")
	}
	switch name {
	case "shale":
		return OpenShale(ctx, cfg)
	case "thrift":
		return OpenThrift(ctx, cfg)
	case "etcd":
		return OpenEtcd(ctx, cfg)
	}
	return nil, fmt.Errorf("unknown target %q: want shale, thrift or etcd", name)
}

// Table settings shared by the shale and thrift drivers.
const (
	defaultFamily  = "f"
	defaultTablets = 8
	maxTablets     = 64
)

// SplitRows returns the row keys that pre-split the YCSB table into n
// tablets: "user<NN>" evenly spaced over 10..92, where the first two
// digits of YCSB's hashed keys fall (see the package doc).
func SplitRows(n int) [][]byte {
	var out [][]byte
	last := ""
	for i := 1; i < n; i++ {
		s := "user" + strconv.Itoa(10+i*83/n)
		if s != last {
			out = append(out, []byte(s))
			last = s
		}
	}
	return out
}

// tableSettings reads columnfamily and shale.tablets.
func tableSettings(p *ycsb.Properties) (family string, tablets int, err error) {
	family = p.String("columnfamily", defaultFamily)
	if family == "" {
		return "", 0, &ycsb.PropertyError{Key: "columnfamily", Value: family, Want: "a column family name"}
	}
	n, err := p.Int64("shale.tablets", defaultTablets)
	if err != nil {
		return "", 0, err
	}
	if n < 1 || n > maxTablets {
		return "", 0, &ycsb.PropertyError{Key: "shale.tablets", Value: strconv.FormatInt(n, 10), Want: fmt.Sprintf("between 1 and %d", maxTablets)}
	}
	return family, int(n), nil
}

// readStaleness reads shale.readstaleness: 0 (the default) reads the
// latest data from each tablet's leader; a positive duration makes YCSB
// reads (and scans) read as of that long ago from any replica (follower
// reads, docs/decisions.md "Closed timestamps"), e.g. 5s.
func readStaleness(p *ycsb.Properties) (time.Duration, error) {
	v := p.String("shale.readstaleness", "0s")
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > time.Hour {
		return 0, &ycsb.PropertyError{Key: "shale.readstaleness", Value: v, Want: "a duration between 0s and 1h such as 5s (0s: read the latest from leaders)"}
	}
	return d, nil
}

// opTimeout reads a per-operation timeout property (default 10s).
func opTimeout(p *ycsb.Properties, key string) (time.Duration, error) {
	v := p.String(key, "10s")
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, &ycsb.PropertyError{Key: key, Value: v, Want: "a positive duration such as 10s"}
	}
	return d, nil
}

// maxRMWAttempts bounds the read-modify-write retry loops: each failed
// attempt means another writer changed the record in between, which under
// a zipfian key choice is frequent for the hottest keys but never lasts.
const maxRMWAttempts = 100

// errRMWConflict is returned when a read-modify-write lost its race
// maxRMWAttempts times in a row.
type errRMWConflict struct{ key string }

func (e errRMWConflict) Error() string {
	return fmt.Sprintf("read-modify-write of %s: record changed between read and write %d times in a row", e.key, maxRMWAttempts)
}

// onlyFields keeps the named fields of rec (all when fields is nil).
func onlyFields(rec ycsb.Record, fields []string) ycsb.Record {
	if fields == nil {
		return rec
	}
	out := rec[:0:0]
	for _, f := range rec {
		for _, want := range fields {
			if f.Name == want {
				out = append(out, f)
				break
			}
		}
	}
	return out
}
