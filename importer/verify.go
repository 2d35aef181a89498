package importer

import (
	"bytes"
	"context"
	"fmt"

	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/kvclient"
)

// ---- phase 4: verify ----

// cellSum digests cells (row, family, qualifier, value): the wrapping sum
// of keys.CellDigest over them, so the input's digest can be compared with
// the one the tablet servers compute over the table (kvclient.Digest)
// without shipping the data back.
type cellSum struct {
	d   keys.CellDigester
	sum uint64
}

func (c *cellSum) add(row []byte, family string, qualifier, value []byte) {
	c.sum += c.d.CellDigest(row, family, qualifier, value)
}

func (c *cellSum) String() string { return fmt.Sprintf("%016x", c.sum) }

// verifier counts the table's rows that hold a cell at the job's
// timestamp: every imported row does (a later write adds a newer version;
// a row deleted meanwhile, or a version collected by a 1-version family
// after a newer write, would be missing, which is why this is reported and
// not an error unless nothing at all is found). It trails the ingest: each
// key sent on upTo is the last cell of the checkpointed prefix, and the
// rows up to it are scanned while later chunks are still being ingested;
// when upTo closes, the rest of the table is scanned. Scanning in key
// order keeps the digest comparable with the importer's.
type verifier struct {
	upTo chan []byte // capacity 1; the sender replaces an unread key
	done chan struct{}
	n    int64
	sum  uint64 // of the rows' cell digests
	err  error
}

func (j *job) startVerifier(ctx context.Context) *verifier {
	v := &verifier{upTo: make(chan []byte, 1), done: make(chan struct{})}
	err := j.stopper.RunAsyncTask(ctx, "importer.verify", func(ctx context.Context) {
		defer close(v.done)
		v.err = j.runVerifier(ctx, v)
	})
	if err != nil {
		v.err = err
		close(v.done)
	}
	return v
}

// advance tells the verifier that every row up to cell key k is in. Only
// one goroutine calls it at a time (ingestAll's complete, under its lock).
func (v *verifier) advance(k []byte) {
	select {
	case <-v.upTo: // not read yet: replace it
	default:
	}
	v.upTo <- k
}

func (j *job) runVerifier(ctx context.Context, v *verifier) error {
	t, err := j.kv.Table(ctx, j.o.Table)
	if err != nil {
		return err
	}
	ts := j.cp.Timestamp
	var from []byte // row to start the next scan at; nil: the table's first
	scan := func(to []byte) error {
		// The servers digest the cells; only row keys come back. The
		// scan reads the whole table while users may be at work: it runs
		// as a bulk read, paced with the stores' background work.
		sc := t.Scan(ctx, kvclient.ScanOptions{Start: from, End: to, BulkRead: true,
			Read: []kvclient.ReadOption{kvclient.TimeRange(ts, ts+1), kvclient.Digest()}})
		defer sc.Close()
		for sc.Next() {
			row := sc.Row()
			if row.CellCount == 0 {
				continue
			}
			v.n++
			v.sum += row.CellDigest
		}
		return sc.Err()
	}
	for k := range v.upTo {
		d, err := keys.DecodeCellKey(k)
		if err != nil {
			return err
		}
		to := append(bytes.Clone(d.Row), 0) // the first row after d.Row
		if from != nil && bytes.Compare(to, from) <= 0 {
			continue
		}
		if err := scan(to); err != nil {
			return err
		}
		from = to
	}
	return scan(nil)
}

// finishVerify waits for v's last scan (ingestAll is over and closed
// v.upTo) and checks its result.
func (j *job) finishVerify(v *verifier) error {
	<-v.done
	if v.err != nil {
		return fmt.Errorf("importer: verifying: %w", v.err)
	}
	ts := j.cp.Timestamp
	n := v.n
	j.cp.VerifiedRows = n
	j.cp.VerifiedChecksum = fmt.Sprintf("%016x", v.sum)
	switch {
	case n == 0 && j.cp.RowsIngested > 0:
		return fmt.Errorf("importer: verification found none of the %d imported rows at timestamp %d", j.cp.RowsIngested, ts)
	case n == j.cp.RowsIngested && j.cp.Checksum != "" && j.cp.VerifiedChecksum != j.cp.Checksum:
		// Every row is there but some cell differs: never expected.
		return fmt.Errorf("importer: verification: the table's cells at timestamp %d differ from the input (digest %s, expected %s)", ts, j.cp.VerifiedChecksum, j.cp.Checksum)
	}
	return nil
}
