// Package workloads ships YCSB's six standard core workloads (A to F) as
// the property files workloada..workloadf, with YCSB's own settings, and
// embeds them so `shale bench ycsb --workload a` works without the files
// at hand. The files are plain YCSB property files and work with -P too.
package workloads
