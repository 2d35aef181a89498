package placementdriver

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Config is the scheduling configuration. Every key can be read and changed
// at runtime (shale ctl config set KEY VALUE); changes are replicated
// through the metadata group and take effect at the next scheduling round.
type Config struct {
	MaxReplicas          int           `json:"max-replicas"`
	LocationLabels       []string      `json:"location-labels"`
	MaxStoreDownTime     time.Duration `json:"max-store-down-time"`
	SplitSize            uint64        `json:"split-size"`
	SplitQPS             float64       `json:"split-qps"`
	SplitQPSWindow       time.Duration `json:"split-qps-window"`
	MergeSize            uint64        `json:"merge-size"`
	SplitMergeInterval   time.Duration `json:"split-merge-interval"`
	MaxSnapshotsPerStore int           `json:"max-snapshots-per-store"`
	TabletScheduleLimit  int           `json:"tablet-schedule-limit"`
	LeaderScheduleLimit  int           `json:"leader-schedule-limit"`
	MaxOperatorsPerSec   float64       `json:"max-operators-per-sec"`
	BalanceTolerance     float64       `json:"balance-tolerance"`
	HotTolerance         float64       `json:"hot-tolerance"`
	LeaderMoveCooldown   time.Duration `json:"leader-move-cooldown"`
	ScheduleInterval     time.Duration `json:"schedule-interval"`
}

func (c Config) withDefaults() Config {
	if c.MaxReplicas <= 0 {
		c.MaxReplicas = 3
	}
	if c.MaxStoreDownTime <= 0 {
		c.MaxStoreDownTime = 30 * time.Minute
	}
	if c.SplitSize == 0 {
		c.SplitSize = 96 << 20
	}
	if c.SplitQPS == 0 {
		c.SplitQPS = 3000
	}
	if c.SplitQPSWindow <= 0 {
		c.SplitQPSWindow = 30 * time.Second
	}
	if c.MergeSize == 0 {
		c.MergeSize = 20 << 20
	}
	if c.SplitMergeInterval <= 0 {
		c.SplitMergeInterval = time.Hour
	}
	if c.MaxSnapshotsPerStore <= 0 {
		c.MaxSnapshotsPerStore = 4
	}
	if c.TabletScheduleLimit <= 0 {
		c.TabletScheduleLimit = 16
	}
	if c.LeaderScheduleLimit <= 0 {
		c.LeaderScheduleLimit = 16
	}
	if c.MaxOperatorsPerSec <= 0 {
		c.MaxOperatorsPerSec = 50
	}
	if c.BalanceTolerance <= 0 {
		c.BalanceTolerance = 0.05
	}
	if c.HotTolerance <= 0 {
		c.HotTolerance = 0.2
	}
	if c.LeaderMoveCooldown <= 0 {
		c.LeaderMoveCooldown = 2 * time.Minute
	}
	if c.ScheduleInterval <= 0 {
		c.ScheduleInterval = time.Second
	}
	return c
}

// configKey describes one settable key.
type configKey struct {
	get func(*Config) string
	set func(*Config, string) error
}

var configKeys = map[string]configKey{
	"max-replicas":            intKey(func(c *Config) *int { return &c.MaxReplicas }, 1),
	"location-labels":         {get: func(c *Config) string { return strings.Join(c.LocationLabels, ",") }, set: setLabels},
	"max-store-down-time":     durationKey(func(c *Config) *time.Duration { return &c.MaxStoreDownTime }),
	"split-size":              sizeKey(func(c *Config) *uint64 { return &c.SplitSize }),
	"split-qps":               floatKey(func(c *Config) *float64 { return &c.SplitQPS }),
	"split-qps-window":        durationKey(func(c *Config) *time.Duration { return &c.SplitQPSWindow }),
	"merge-size":              sizeKey(func(c *Config) *uint64 { return &c.MergeSize }),
	"split-merge-interval":    durationKey(func(c *Config) *time.Duration { return &c.SplitMergeInterval }),
	"max-snapshots-per-store": intKey(func(c *Config) *int { return &c.MaxSnapshotsPerStore }, 1),
	"tablet-schedule-limit":   intKey(func(c *Config) *int { return &c.TabletScheduleLimit }, 0),
	"leader-schedule-limit":   intKey(func(c *Config) *int { return &c.LeaderScheduleLimit }, 0),
	"max-operators-per-sec":   floatKey(func(c *Config) *float64 { return &c.MaxOperatorsPerSec }),
	"balance-tolerance":       floatKey(func(c *Config) *float64 { return &c.BalanceTolerance }),
	"hot-tolerance":           floatKey(func(c *Config) *float64 { return &c.HotTolerance }),
	"leader-move-cooldown":    durationKey(func(c *Config) *time.Duration { return &c.LeaderMoveCooldown }),
	"schedule-interval":       durationKey(func(c *Config) *time.Duration { return &c.ScheduleInterval }),
}

// Set changes one key, validating the value.
func (c *Config) Set(key, value string) error {
	k, ok := configKeys[key]
	if !ok {
		return fmt.Errorf("unknown config key %q; known keys: %s", key, strings.Join(ConfigKeys(), ", "))
	}
	if err := k.set(c, strings.TrimSpace(value)); err != nil {
		return fmt.Errorf("config %s: %w", key, err)
	}
	return nil
}

// Map renders every key as the string Set accepts.
func (c *Config) Map() map[string]string {
	m := make(map[string]string, len(configKeys))
	for name, k := range configKeys {
		m[name] = k.get(c)
	}
	return m
}

// ConfigKeys lists the settable keys in order.
func ConfigKeys() []string {
	keys := make([]string, 0, len(configKeys))
	for k := range configKeys {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func intKey(f func(*Config) *int, min int) configKey {
	return configKey{
		get: func(c *Config) string { return strconv.Itoa(*f(c)) },
		set: func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < min {
				return fmt.Errorf("want an integer >= %d, got %q", min, v)
			}
			*f(c) = n
			return nil
		},
	}
}

func floatKey(f func(*Config) *float64) configKey {
	return configKey{
		get: func(c *Config) string { return strconv.FormatFloat(*f(c), 'g', -1, 64) },
		set: func(c *Config, v string) error {
			x, err := strconv.ParseFloat(v, 64)
			if err != nil || x < 0 {
				return fmt.Errorf("want a non-negative number, got %q", v)
			}
			*f(c) = x
			return nil
		},
	}
}

func durationKey(f func(*Config) *time.Duration) configKey {
	return configKey{
		get: func(c *Config) string { return f(c).String() },
		set: func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return fmt.Errorf("want a positive Go duration such as 15s or 30m, got %q", v)
			}
			*f(c) = d
			return nil
		},
	}
}

func sizeKey(f func(*Config) *uint64) configKey {
	return configKey{
		get: func(c *Config) string { return FormatSize(*f(c)) },
		set: func(c *Config, v string) error {
			n, err := ParseSize(v)
			if err != nil {
				return err
			}
			*f(c) = n
			return nil
		},
	}
}

func setLabels(c *Config, v string) error {
	var labels []string
	for _, l := range strings.Split(v, ",") {
		if l = strings.TrimSpace(l); l != "" {
			labels = append(labels, l)
		}
	}
	c.LocationLabels = labels
	return nil
}

var sizeUnits = []struct {
	suffix string
	mult   uint64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000}, {"TB", 1000 * 1000 * 1000 * 1000},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40}, {"B", 1},
}

// ParseSize parses plain bytes ("1048576") or a number with a unit
// ("256KiB", "96MiB", "1.5GB").
func ParseSize(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	for _, u := range sizeUnits {
		if strings.HasSuffix(s, u.suffix) {
			x, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), 64)
			if err != nil || x <= 0 {
				return 0, fmt.Errorf("want a size such as 1048576, 256KiB or 96MiB, got %q", s)
			}
			return uint64(x * float64(u.mult)), nil
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("want a size such as 1048576, 256KiB or 96MiB, got %q", s)
	}
	return n, nil
}

// FormatSize renders n in the largest binary unit that divides it.
func FormatSize(n uint64) string {
	for _, u := range []struct {
		s string
		m uint64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.m && n%u.m == 0 {
			return strconv.FormatUint(n/u.m, 10) + u.s
		}
	}
	return strconv.FormatUint(n, 10)
}
