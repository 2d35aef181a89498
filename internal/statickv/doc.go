// Package statickv is a minimal client for a static cluster's (`shale
// tablet --peers`, no placement driver) raw-KV table, which kvclient cannot
// reach (it routes through the placement driver). Tests of static clusters
// use it; it was tabletserver/node's DebugClient, kept past the command it
// served. Retries follow internal/retry.
package statickv
