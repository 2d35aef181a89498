package placementdriver

import (
	"testing"
	"time"
)

func TestConfigSetAndRender(t *testing.T) {
	c := Config{}.withDefaults()
	for _, tc := range []struct{ key, value, want string }{
		{"split-size", "256KiB", "256KiB"},
		{"split-size", "1048576", "1MiB"},
		{"split-size", "1000", "1000"},
		{"merge-size", "1.5MiB", "1536KiB"},
		{"max-store-down-time", "15s", "15s"},
		{"max-replicas", "5", "5"},
		{"location-labels", "zone, rack,host", "zone,rack,host"},
		{"split-qps", "250", "250"},
	} {
		if err := c.Set(tc.key, tc.value); err != nil {
			t.Fatalf("set %s=%s: %v", tc.key, tc.value, err)
		}
		if got := c.Map()[tc.key]; got != tc.want {
			t.Fatalf("%s after setting %q renders %q, want %q", tc.key, tc.value, got, tc.want)
		}
	}
	if c.MaxStoreDownTime != 15*time.Second || c.SplitSize != 1000 {
		t.Fatalf("fields not updated: %+v", c)
	}
	for _, bad := range [][2]string{{"split-size", "-1"}, {"split-size", "lots"}, {"max-store-down-time", "5"}, {"max-replicas", "0"}, {"no-such-key", "1"}, {"split-qps", "x"}} {
		if err := c.Set(bad[0], bad[1]); err == nil {
			t.Fatalf("set %s=%s accepted", bad[0], bad[1])
		}
	}
}

func TestParseInitialCluster(t *testing.T) {
	m, err := ParseInitialCluster("b=127.0.0.1:2,a=127.0.0.1:1")
	if err != nil || len(m) != 2 {
		t.Fatal(m, err)
	}
	ids := memberIDs(m)
	if ids["a"] != 1 || ids["b"] != 2 {
		t.Fatalf("member ids %v", ids)
	}
	for _, bad := range []string{"", "a", "a=", "=x", "a=1,a=2"} {
		if _, err := ParseInitialCluster(bad); err == nil {
			t.Fatalf("accepted %q", bad)
		}
	}
}
