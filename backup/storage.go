package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/fileblob" // file://
	_ "gocloud.dev/blob/s3blob"   // s3://
	"gocloud.dev/gcerrors"
)

// storage is one backup's place: a bucket and a key prefix in it.
type storage struct {
	url    string
	bucket *blob.Bucket
}

// openStorage opens a backup URL: file:///dir (the directory is created)
// or s3://bucket/prefix?region=...&endpoint=... (gocloud.dev/blob's S3
// options). The path of an s3 URL is a prefix inside the bucket.
func openStorage(ctx context.Context, raw string, create bool) (*storage, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("backup: %q is not a URL: %w", raw, err)
	}
	switch u.Scheme {
	case "file":
		dir := u.Path
		if dir == "" {
			return nil, fmt.Errorf("backup: %q names no directory (file:///path/to/dir)", raw)
		}
		if create {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, fmt.Errorf("backup: %w", err)
			}
		} else if _, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("backup: no backup at %s: %w", raw, err)
		}
		q := u.Query()
		q.Set("metadata", "skip")
		// Temporary files next to their objects, not in os.TempDir: the
		// rename that publishes an object fails across file systems, and
		// a backup directory is usually a mount of its own.
		q.Set("no_tmp_dir", "true")
		b, err := blob.OpenBucket(ctx, (&url.URL{Scheme: "file", Path: dir, RawQuery: q.Encode()}).String())
		if err != nil {
			return nil, fmt.Errorf("backup: opening %s: %w", raw, err)
		}
		return &storage{url: raw, bucket: b}, nil
	case "s3":
		prefix := strings.Trim(u.Path, "/")
		open := *u
		open.Path = ""
		b, err := blob.OpenBucket(ctx, open.String())
		if err != nil {
			return nil, fmt.Errorf("backup: opening %s: %w", raw, err)
		}
		if prefix != "" {
			b = blob.PrefixedBucket(b, prefix+"/")
		}
		return &storage{url: raw, bucket: b}, nil
	default:
		return nil, fmt.Errorf("backup: unsupported URL scheme %q in %q (want file:// or s3://)", u.Scheme, raw)
	}
}

func (s *storage) close() { _ = s.bucket.Close() }

// maxObjectBytes bounds what read loads into memory (a file of a backup is
// at most the export's 64 MiB; a manifest or record far less).
const maxObjectBytes = 128 << 20

// read returns an object's bytes; a missing one is an error satisfying
// isNotFound.
func (s *storage) read(ctx context.Context, name string) ([]byte, error) {
	r, err := s.bucket.NewReader(ctx, name, nil)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if r.Size() > maxObjectBytes {
		return nil, fmt.Errorf("backup: %s is %d bytes, more than any backup file may be (%d)", name, r.Size(), maxObjectBytes)
	}
	return io.ReadAll(io.LimitReader(r, maxObjectBytes+1))
}

func (s *storage) write(ctx context.Context, name string, data []byte) error {
	return s.bucket.WriteAll(ctx, name, data, nil)
}

func (s *storage) exists(ctx context.Context, name string) (bool, error) {
	return s.bucket.Exists(ctx, name)
}

func (s *storage) delete(ctx context.Context, name string) error {
	err := s.bucket.Delete(ctx, name)
	if isNotFound(err) {
		return nil
	}
	return err
}

// list returns every object name under prefix.
func (s *storage) list(ctx context.Context, prefix string) ([]string, error) {
	var out []string
	it := s.bucket.List(&blob.ListOptions{Prefix: prefix})
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if !obj.IsDir {
			out = append(out, obj.Key)
		}
	}
}

func isNotFound(err error) bool { return err != nil && gcerrors.Code(err) == gcerrors.NotFound }
