package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/shaledb/shale/proto/metapb"
)

// Object names inside a backup.
const (
	manifestName  = "backupmeta.json"
	jobName       = "checkpoint/job.json"
	piecesPrefix  = "checkpoint/pieces/"
	dataPrefix    = "data/"
	formatVersion = 1
)

// Manifest describes a finished backup.
type Manifest struct {
	Format       int    `json:"format"`
	ID           string `json:"id"`
	ShaleVersion string `json:"shale_version"`
	// Timestamp: the backup holds the cells a read at it sees.
	Timestamp int64 `json:"timestamp"`
	// Since > 0: an incremental backup of the versions in (Since,
	// Timestamp] on top of Parent (its URL as given) with ID ParentID.
	Since    int64     `json:"since_timestamp,omitempty"`
	Parent   string    `json:"parent,omitempty"`
	ParentID string    `json:"parent_id,omitempty"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Tables   []*Table  `json:"tables"`
}

// Table is one table of a backup.
type Table struct {
	Name string `json:"name"`
	ID   uint64 `json:"id"`
	// Schema is the table's metapb.TableSchema in protobuf JSON.
	Schema json.RawMessage `json:"schema"`
	// Since > 0: this table's files are incremental on top of the
	// parent's (versions in (Since, Timestamp] and key lists); 0: a full
	// copy of the table.
	Since int64 `json:"since_timestamp,omitempty"`
	// Cells and Digest (keys.CellDigest summed, hex) describe the whole
	// state at Timestamp, older cells of an incremental included.
	Cells  uint64   `json:"cells"`
	Digest string   `json:"digest"`
	Pieces []*Piece `json:"pieces"`
}

// Piece is a key range of a table exported by one replica, and its files.
type Piece struct {
	// Start and End are row keys (keys.RowKey of the table) of [Start, End).
	Start  []byte  `json:"start"`
	End    []byte  `json:"end"`
	Tablet uint64  `json:"tablet"`
	Store  uint64  `json:"store"`
	Cells  uint64  `json:"cells"`
	Digest uint64  `json:"digest"`
	Files  []*File `json:"files"`
}

// File is one SST of a backup.
type File struct {
	Name string `json:"name"`
	// Kind is "data" (cells) or "keys" (an incremental's older visible
	// cell keys, values empty).
	Kind         string `json:"kind"`
	Size         int64  `json:"size"`
	SHA256       string `json:"sha256"`
	Cells        uint64 `json:"cells"`
	Smallest     []byte `json:"smallest"`
	Largest      []byte `json:"largest"`
	MaxTimestamp int64  `json:"max_timestamp"`
}

// CorruptFileError: a backup file's bytes do not match the manifest.
type CorruptFileError struct {
	URL, File string
	Reason    string
}

func (e *CorruptFileError) Error() string {
	return fmt.Sprintf("backup: file %s of the backup at %s is corrupt: %s", e.File, e.URL, e.Reason)
}

// MissingFileError: a file the manifest lists is not in the backup.
type MissingFileError struct{ URL, File string }

func (e *MissingFileError) Error() string {
	return fmt.Sprintf("backup: file %s of the backup at %s is missing", e.File, e.URL)
}

// NotABackupError: the URL holds no finished backup.
type NotABackupError struct {
	URL        string
	Unfinished bool
}

func (e *NotABackupError) Error() string {
	if e.Unfinished {
		return fmt.Sprintf("backup: the backup at %s is unfinished (run the same shale backup again to resume it)", e.URL)
	}
	return fmt.Sprintf("backup: no backup at %s (no %s)", e.URL, manifestName)
}

// readManifest loads and checks a backup's manifest.
func readManifest(ctx context.Context, st *storage) (*Manifest, error) {
	data, err := st.read(ctx, manifestName)
	if isNotFound(err) {
		unfinished, _ := st.exists(ctx, jobName)
		return nil, &NotABackupError{URL: st.url, Unfinished: unfinished}
	}
	if err != nil {
		return nil, fmt.Errorf("backup: reading the manifest of %s: %w", st.url, err)
	}
	m := &Manifest{}
	if err := json.Unmarshal(data, m); err != nil {
		return nil, &CorruptFileError{URL: st.url, File: manifestName, Reason: err.Error()}
	}
	if m.Format != formatVersion {
		return nil, fmt.Errorf("backup: the backup at %s has format %d; this shale reads format %d", st.url, m.Format, formatVersion)
	}
	if m.Timestamp <= 0 || m.ID == "" || (m.Since != 0 && (m.Since >= m.Timestamp || m.Parent == "")) {
		return nil, &CorruptFileError{URL: st.url, File: manifestName, Reason: "inconsistent timestamps or ids"}
	}
	return m, nil
}

// schema decodes a table's schema.
func (t *Table) schema() (*metapb.TableSchema, error) {
	s := &metapb.TableSchema{}
	if err := protojson.Unmarshal(t.Schema, s); err != nil {
		return nil, fmt.Errorf("backup: the schema of table %q in the manifest: %w", t.Name, err)
	}
	return s, nil
}

// checkFile compares bytes read for f with the manifest.
func checkFile(url string, f *File, data []byte) error {
	if int64(len(data)) != f.Size {
		return &CorruptFileError{URL: url, File: f.Name, Reason: fmt.Sprintf("%d bytes, the manifest says %d", len(data), f.Size)}
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != f.SHA256 {
		return &CorruptFileError{URL: url, File: f.Name, Reason: fmt.Sprintf("SHA-256 %x, the manifest says %s", sum, f.SHA256)}
	}
	return nil
}

// readFile reads one listed file and checks it.
func readFile(ctx context.Context, st *storage, f *File) ([]byte, error) {
	data, err := st.read(ctx, f.Name)
	if isNotFound(err) {
		return nil, &MissingFileError{URL: st.url, File: f.Name}
	}
	if err != nil {
		return nil, fmt.Errorf("backup: reading %s of %s: %w", f.Name, st.url, err)
	}
	return data, checkFile(st.url, f, data)
}
