// Package importer is the client half of `shale import`: it turns CSV, TSV
// or JSONL files into sorted SSTs of cells and ingests them into a table's
// tablets through their raft logs (tabletserver/store/ingest.go is the
// server half).
package importer
