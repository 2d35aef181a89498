package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"gocloud.dev/blob"
)

// VerifyResult is what Verify checked.
type VerifyResult struct {
	URL    string
	Files  int
	Bytes  int64
	Chain  int
	Errors []error // one per bad file (*CorruptFileError, *MissingFileError)
}

// Verify checks every file of a backup, and of its chain, against the
// manifest's sizes and SHA-256 checksums, and that the chain holds
// together. It returns the problems found in the result and, when there
// are any, an error naming the first.
func Verify(ctx context.Context, url string) (*VerifyResult, error) {
	chain, err := openChain(ctx, url)
	if err != nil {
		return nil, err
	}
	defer closeChain(chain)
	res := &VerifyResult{URL: url, Chain: len(chain)}
	for _, l := range chain {
		for _, t := range l.m.Tables {
			if _, err := t.schema(); err != nil {
				res.Errors = append(res.Errors, &CorruptFileError{URL: l.st.url, File: manifestName, Reason: err.Error()})
			}
			for _, p := range t.Pieces {
				for _, f := range p.Files {
					if err := ctx.Err(); err != nil {
						return res, err
					}
					res.Files++
					data, err := readFile(ctx, l.st, f)
					res.Bytes += int64(len(data))
					var ce *CorruptFileError
					var me *MissingFileError
					switch {
					case err == nil:
					case errors.As(err, &ce), errors.As(err, &me):
						res.Errors = append(res.Errors, err)
					default:
						return res, err
					}
				}
			}
		}
	}
	if len(res.Errors) > 0 {
		return res, fmt.Errorf("%w (%d bad files in all)", res.Errors[0], len(res.Errors))
	}
	return res, nil
}

// Info is a backup as `shale backup ls` shows it.
type Info struct {
	URL      string
	Manifest *Manifest
	Files    int
	Bytes    int64
	Cells    uint64
	Unfinish bool
	Duration time.Duration
}

// Describe reads a backup's manifest.
func Describe(ctx context.Context, url string) (*Info, error) {
	st, err := openStorage(ctx, url, false)
	if err != nil {
		return nil, err
	}
	defer st.close()
	m, err := readManifest(ctx, st)
	if err != nil {
		return nil, err
	}
	in := &Info{URL: url, Manifest: m, Duration: m.Finished.Sub(m.Started)}
	for _, t := range m.Tables {
		in.Cells += t.Cells
		for _, p := range t.Pieces {
			for _, f := range p.Files {
				in.Files++
				in.Bytes += f.Size
			}
		}
	}
	return in, nil
}

// List describes the backup at url, or, when url holds none, every backup
// in its immediate subdirectories (a place that collects backups:
// file:///backups/{mon,tue,...}).
func List(ctx context.Context, url string) ([]*Info, error) {
	in, err := Describe(ctx, url)
	if err == nil {
		return []*Info{in}, nil
	}
	var nb *NotABackupError
	if !errors.As(err, &nb) || nb.Unfinished {
		return nil, err
	}
	st, err := openStorage(ctx, url, false)
	if err != nil {
		return nil, err
	}
	defer st.close()
	it := st.bucket.List(&blob.ListOptions{Delimiter: "/"})
	var subs []string
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if obj.IsDir {
			subs = append(subs, obj.Key)
		}
	}
	var out []*Info
	for _, s := range subs {
		sub := joinURL(url, s)
		if in, err := Describe(ctx, sub); err == nil {
			out = append(out, in)
		}
	}
	if len(out) == 0 {
		return nil, &NotABackupError{URL: url}
	}
	return out, nil
}

// joinURL appends a sub-path (ending in "/") to a backup URL, before its
// query.
func joinURL(base, sub string) string {
	q := ""
	for i := 0; i < len(base); i++ {
		if base[i] == '?' {
			base, q = base[:i], base[i:]
			break
		}
	}
	for len(base) > 0 && base[len(base)-1] == '/' {
		base = base[:len(base)-1]
	}
	for len(sub) > 0 && sub[len(sub)-1] == '/' {
		sub = sub[:len(sub)-1]
	}
	return base + "/" + sub + q
}
