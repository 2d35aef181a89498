package importer

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/shaledb/shale/internal/atomicfile"
)

// checkpointName is the checkpoint file inside the work directory.
const checkpointName = "checkpoint.json"

// checkpoint is the job's durable progress. It is rewritten (atomically:
// temp file, fsync, rename) after every phase and every ingested SST, so a
// killed importer resumes where it stopped. Re-ingesting an SST whose
// checkpoint write was lost is harmless: the cells carry the job's one
// timestamp, so the same rows produce the same keys and values.
type checkpoint struct {
	Version     int    `json:"version"`
	Fingerprint string `json:"fingerprint"`
	TableID     uint64 `json:"table_id"`
	// Timestamp is every imported cell's timestamp, from the PD's
	// timestamp oracle when the job first started. It is what makes a
	// resumed job write exactly the keys the killed one did.
	Timestamp int64 `json:"timestamp"`

	// After the sort phase.
	Sorted      bool     `json:"sorted"`
	Runs        []string `json:"runs,omitempty"`
	Samples     []Sample `json:"samples,omitempty"`
	InputRows   int64    `json:"input_rows"`
	InputBytes  int64    `json:"input_bytes"`
	Rejected    int64    `json:"rejected"`
	SortedBytes int64    `json:"sorted_bytes"`

	Split bool `json:"split"`

	// Ingest progress: every cell key <= DoneKey is ingested.
	DoneKey       []byte `json:"done_key,omitempty"`
	RowsIngested  int64  `json:"rows_ingested"`
	CellsIngested int64  `json:"cells_ingested"`
	BytesIngested int64  `json:"bytes_ingested"`
	SSTs          int64  `json:"ssts"`
	Recuts        int64  `json:"recuts"`
	Duplicates    int64  `json:"duplicates"`

	// Checksum digests every imported cell (cellSum).
	Checksum string `json:"checksum,omitempty"`

	Done             bool   `json:"done"`
	VerifiedRows     int64  `json:"verified_rows"`
	VerifiedChecksum string `json:"verified_checksum,omitempty"`
}

func loadCheckpoint(dir string) (*checkpoint, error) {
	data, err := os.ReadFile(filepath.Join(dir, checkpointName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var cp checkpoint
	if err := json.Unmarshal(data, &cp); err != nil {
		return nil, fmt.Errorf("importer: checkpoint %s is damaged (%v); remove the work directory to start over", filepath.Join(dir, checkpointName), err)
	}
	return &cp, nil
}

func (cp *checkpoint) save(dir string) error {
	data, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, checkpointName), data, 0o644)
}

// fingerprint identifies a job: the options that shape its cells and the
// input files (path, size, modification time). Re-running with a different
// fingerprint in the same work directory is refused.
func fingerprint(o *Options, files []inputFile) string {
	// The format's own delimiter is recorded as 0, as it was before
	// EnsureDefaults filled it in, so that older work directories resume.
	delim := o.Source.Delimiter
	if delim == defaultDelimiter(o.Source.Format) {
		delim = 0
	}
	type fileID struct {
		Path  string
		Size  int64
		MTime int64
	}
	v := struct {
		Table       string
		Format      string
		Header      bool
		Columns     []string
		Delimiter   rune
		Null        *string
		RowKey      string
		Mappings    []Mapping
		OnDuplicate string
		EncoderID   string
		Files       []fileID
	}{o.Table, o.Source.Format.String(), o.Source.Header, o.Source.Columns, delim, o.Source.Null, o.RowKey, o.Mappings, o.OnDuplicate, o.EncoderID, nil}
	for _, f := range files {
		v.Files = append(v.Files, fileID{f.path, f.size, f.mtime})
	}
	data, _ := json.Marshal(v)
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:16])
}
