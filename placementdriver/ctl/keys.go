package ctl

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/shaledb/shale/internal/keys"
)

// Printable renders bytes for a terminal or a web page: printable UTF-8 as
// is, a backslash as \\, and every other byte as \xNN, so binary keys and
// values stay on one line and can be told apart.
func Printable(b []byte) string {
	var sb strings.Builder
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		switch {
		case r == '\\':
			sb.WriteString(`\\`)
		case r == utf8.RuneError && n <= 1, !unicode.IsPrint(r):
			for _, c := range b[:n] {
				fmt.Fprintf(&sb, `\x%02x`, c)
			}
		default:
			sb.Write(b[:n])
		}
		b = b[n:]
	}
	return sb.String()
}

// KeyLabel names an encoded row key (a tablet boundary) for people: the
// table (its name when names knows its ID, else "table N") and the row
// (Printable; "" for the table's start). The bare prefix of an unknown
// table ID right after a known table's is that table's end ("users
// (end)"), since each table's tablets end there. The empty key is the start of
// the key space ("(min)"). A key truncated inside its row (the heat map
// keeps key prefixes) is shown with as much of the row as it holds,
// followed by "…".
func KeyLabel(key []byte, names map[uint64]string) (table, row string) {
	if len(key) == 0 {
		return "(min)", ""
	}
	if len(key) < 8 {
		return "(min)", Printable(key)
	}
	id := binary.BigEndian.Uint64(key)
	table = names[id]
	if len(key) == 8 && table == "" && names[id-1] != "" {
		// The boundary after a table is the next ID's prefix.
		return names[id-1] + " (end)", ""
	}
	if table == "" {
		table = fmt.Sprintf("table %d", id)
	}
	if len(key) == 8 {
		return table, ""
	}
	_, r, err := keys.DecodeRowKey(key)
	if err != nil {
		return table, Printable(unescapePrefix(key[8:])) + "…"
	}
	return table, Printable(r)
}

// unescapePrefix undoes the row encoding of a truncated row (0x00 0xFF is
// an escaped 0x00; a lone trailing 0x00 is dropped).
func unescapePrefix(b []byte) []byte {
	var out []byte
	for i := 0; i < len(b); i++ {
		if b[i] == 0 {
			if i+1 < len(b) && b[i+1] == 0xFF {
				out = append(out, 0)
				i++
			}
			continue
		}
		out = append(out, b[i])
	}
	return out
}

// HotTablets returns up to limit tablets with the highest read (write
// false) or write rate, by bytes (byBytes) or by operations, highest
// first, ties by tablet ID; idle tablets are left out.
func HotTablets(tablets []Tablet, write, byBytes bool, limit int) []Tablet {
	rate := func(t Tablet) float64 {
		switch {
		case write && byBytes:
			return t.WriteBytesPerSec
		case write:
			return t.WriteQPS
		case byBytes:
			return t.ReadBytesPerSec
		}
		return t.ReadQPS
	}
	var out []Tablet
	for _, t := range tablets {
		if rate(t) > 0 {
			out = append(out, t)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if a, b := rate(out[i]), rate(out[j]); a != b {
			return a > b
		}
		return out[i].ID < out[j].ID
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}
