package workloads

import (
	"embed"
	"fmt"
	"strings"

	"github.com/shaledb/shale/bench/ycsb"
)

//go:embed workloada workloadb workloadc workloadd workloade workloadf
var files embed.FS

// Names lists the shipped workloads' short names.
var Names = []string{"a", "b", "c", "d", "e", "f"}

// FileName returns the property file name of a shipped workload: "a" or
// "workloada" gives "workloada".
func FileName(name string) (string, error) {
	n := strings.TrimPrefix(strings.ToLower(name), "workload")
	for _, s := range Names {
		if n == s {
			return "workload" + s, nil
		}
	}
	return "", fmt.Errorf("unknown workload %q: want one of a, b, c, d, e, f", name)
}

// Load reads a shipped workload's properties into p.
func Load(p *ycsb.Properties, name string) error {
	fn, err := FileName(name)
	if err != nil {
		return err
	}
	f, err := files.Open(fn)
	if err != nil {
		return err
	}
	defer f.Close()
	return p.Load(f, fn)
}
