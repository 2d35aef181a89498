package kvnemesis

import (
	"fmt"
	"time"
)

const (
	// numRows is how many rows the workload writes at a time: few, so
	// that operations contend, over several tablets.
	numRows = 24
	// epochLen is how long the workload uses one set of rows. A soak
	// moves to fresh rows every epoch, so that each row's history stays
	// short enough for the linearizability check; a `make test` run stays
	// in its first epoch.
	epochLen = 2 * time.Minute
)

// keyspace names the rows of each epoch: "e000.r00" .. "e000.r23", then
// "e001.r00" and so on, in key order.
type keyspace struct {
	start    time.Time
	epochLen time.Duration
}

func (k keyspace) epoch() int { return int(time.Since(k.start) / k.epochLen) }

func (k keyspace) rows(epoch int) []string {
	out := make([]string, numRows)
	for i := range out {
		out[i] = fmt.Sprintf("e%03d.r%02d", epoch, i)
	}
	return out
}

// current is the rows operations use now.
func (k keyspace) current() []string { return k.rows(k.epoch()) }

// upTo is every row of epochs 0..last.
func (k keyspace) upTo(last int) []string {
	var out []string
	for e := 0; e <= last; e++ {
		out = append(out, k.rows(e)...)
	}
	return out
}
