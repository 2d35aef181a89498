package quota

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/proto/pdpb"
)

// The four limits, by the names the CLI, errors and metrics use.
const (
	ReadRPS    = "read-rps"
	WriteRPS   = "write-rps"
	ReadBytes  = "read-bytes"
	WriteBytes = "write-bytes"
)

// Names lists the limits in display order.
var Names = []string{ReadRPS, WriteRPS, ReadBytes, WriteBytes}

// Bounds beyond which a limit is a typo, not a quota: no store serves
// ten million requests or a TiB per second.
const (
	MaxRPS   = 10_000_000
	MaxBytes = 1 << 40
)

// MaxQuotas bounds how many quotas a cluster holds (each costs a bucket on
// every store and a few hundred bytes in every heartbeat answer).
const MaxQuotas = 10_000

// field returns a pointer to the named limit in l.
func field(l *pdpb.QuotaLimits, name string) *uint64 {
	switch name {
	case ReadRPS:
		return &l.ReadRps
	case WriteRPS:
		return &l.WriteRps
	case ReadBytes:
		return &l.ReadBytes
	case WriteBytes:
		return &l.WriteBytes
	}
	return nil
}

// Get returns the named limit of l (0: none).
func Get(l *pdpb.QuotaLimits, name string) uint64 {
	if l == nil {
		return 0
	}
	if f := field(l, name); f != nil {
		return *f
	}
	return 0
}

// ValidateSet checks the limits of a set request: at least one given, each
// within bounds.
func ValidateSet(l *pdpb.QuotaLimits) error {
	if l == nil || proto.Equal(l, &pdpb.QuotaLimits{}) {
		return errs.InvalidArgument("quota: give at least one limit (%s)", strings.Join(Names, ", "))
	}
	for _, n := range Names {
		v, maxV := Get(l, n), uint64(MaxRPS)
		if strings.HasSuffix(n, "-bytes") {
			maxV = MaxBytes
		}
		if v > maxV {
			return errs.InvalidArgument("quota: %s %d is above the largest accepted limit %d", n, v, maxV)
		}
	}
	return nil
}

// ValidateSubject checks that exactly one of table and user is named.
func ValidateSubject(table, user string) error {
	if (table == "") == (user == "") {
		return errs.InvalidArgument("quota: name either a table or a user, not both or neither")
	}
	return nil
}

// ValidateNames checks limit names (for removing some limits only).
func ValidateNames(names []string) error {
	for _, n := range names {
		if !slices.Contains(Names, n) {
			return errs.InvalidArgument("quota: unknown limit %q (want one of %s)", n, strings.Join(Names, ", "))
		}
	}
	return nil
}

// find returns the index of the subject's quota in st, or -1.
func find(st *pdpb.QuotaState, tableID uint64, user string) int {
	return slices.IndexFunc(st.Quotas, func(q *pdpb.Quota) bool {
		return q.TableId == tableID && q.User == user
	})
}

// Set merges the non-zero limits of l into the subject's quota in st
// (creating it) and returns the result. tableName is for display.
func Set(st *pdpb.QuotaState, tableID uint64, tableName, user string, l *pdpb.QuotaLimits) (*pdpb.Quota, error) {
	if err := ValidateSet(l); err != nil {
		return nil, err
	}
	i := find(st, tableID, user)
	if i < 0 {
		if len(st.Quotas) >= MaxQuotas {
			return nil, errs.InvalidArgument("quota: the cluster already has %d quotas, the most it holds", MaxQuotas)
		}
		st.Quotas = append(st.Quotas, &pdpb.Quota{TableId: tableID, User: user, Limits: &pdpb.QuotaLimits{}})
		i = len(st.Quotas) - 1
	}
	q := st.Quotas[i]
	q.TableName = tableName
	for _, n := range Names {
		if v := Get(l, n); v != 0 {
			*field(q.Limits, n) = v
		}
	}
	st.Version++
	return q, nil
}

// Remove drops the named limits (all when names is empty) of the
// subject's quota; a quota left with no limit is deleted. It reports
// whether the subject had a quota.
func Remove(st *pdpb.QuotaState, tableID uint64, user string, names []string) (bool, error) {
	if err := ValidateNames(names); err != nil {
		return false, err
	}
	i := find(st, tableID, user)
	if i < 0 {
		return false, nil
	}
	q := st.Quotas[i]
	if len(names) == 0 {
		names = Names
	}
	for _, n := range names {
		*field(q.Limits, n) = 0
	}
	if proto.Equal(q.Limits, &pdpb.QuotaLimits{}) {
		st.Quotas = slices.Delete(st.Quotas, i, i+1)
	}
	st.Version++
	return true, nil
}

// DropTable removes a dropped table's quota; it reports whether there was
// one.
func DropTable(st *pdpb.QuotaState, tableID uint64) bool {
	i := find(st, tableID, "")
	if i < 0 {
		return false
	}
	st.Quotas = slices.Delete(st.Quotas, i, i+1)
	st.Version++
	return true
}

var rateRE = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)$`)

// units are the byte suffixes ParseBytes accepts (binary and decimal, as
// HBase's set_quota accepts "10M"); "/s" or "/sec" may follow.
var units = map[string]float64{
	"": 1, "b": 1,
	"k": 1 << 10, "kb": 1e3, "kib": 1 << 10,
	"m": 1 << 20, "mb": 1e6, "mib": 1 << 20,
	"g": 1 << 30, "gb": 1e9, "gib": 1 << 30,
	"t": 1 << 40, "tb": 1e12, "tib": 1 << 40,
}

// ParseBytes parses a bytes-per-second limit such as "10MiB", "512k",
// "1.5GB/s" or "4096". A hand-written parser: no library in go.mod parses
// sizes, and this one is a dozen lines with strict errors.
func ParseBytes(s string) (uint64, error) {
	t := trimRate(s)
	if strings.HasPrefix(t, "-") {
		return 0, errs.InvalidArgument("quota: %q is negative; a limit is a positive rate", s)
	}
	m := rateRE.FindStringSubmatch(t)
	if m == nil {
		return 0, errs.InvalidArgument("quota: %q is not a byte rate (e.g. 10MiB, 512KiB, 1GB; no sign)", s)
	}
	mult, ok := units[strings.ToLower(m[2])]
	if !ok {
		return 0, errs.InvalidArgument("quota: unknown unit %q in %q (use B, KiB, MiB, GiB, TiB or KB, MB, GB, TB)", m[2], s)
	}
	return checked(s, m[1], mult, MaxBytes)
}

// ParseRPS parses a requests-per-second limit (a whole number).
func ParseRPS(s string) (uint64, error) {
	t := trimRate(s)
	if strings.HasPrefix(t, "-") {
		return 0, errs.InvalidArgument("quota: %q is negative; a limit is a positive rate", s)
	}
	if _, err := strconv.ParseUint(t, 10, 64); err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, errs.InvalidArgument("quota: %q is above the largest accepted limit %d per second", s, MaxRPS)
		}
		return 0, errs.InvalidArgument("quota: %q is not a request rate (a whole number of requests per second)", s)
	}
	return checked(s, t, 1, MaxRPS)
}

func trimRate(s string) string {
	t := strings.TrimSpace(s)
	return strings.TrimSuffix(strings.TrimSuffix(t, "/sec"), "/s")
}

func checked(orig, num string, mult float64, maxV uint64) (uint64, error) {
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(f) || f < 0 {
		return 0, errs.InvalidArgument("quota: %q is not a valid rate", orig)
	}
	v := f * mult
	switch {
	case v < 1:
		return 0, errs.InvalidArgument("quota: %q is below the smallest limit (1 per second); remove the limit with 'shale ctl quota rm' instead", orig)
	case v > float64(maxV):
		return 0, errs.InvalidArgument("quota: %q is above the largest accepted limit %d per second", orig, maxV)
	}
	return uint64(v), nil
}

// Describe renders limits for people: "write-rps=100 read-bytes=10MiB".
func Describe(l *pdpb.QuotaLimits) string {
	var parts []string
	for _, n := range Names {
		v := Get(l, n)
		if v == 0 {
			continue
		}
		s := strconv.FormatUint(v, 10)
		if strings.HasSuffix(n, "-bytes") {
			s = FormatBytes(v)
		}
		parts = append(parts, fmt.Sprintf("%s=%s", n, s))
	}
	return strings.Join(parts, " ")
}

// FormatBytes renders n exactly with the largest binary unit dividing it
// (so ParseBytes reads it back): 10MiB, 1536KiB, 1000B.
func FormatBytes(n uint64) string {
	for _, u := range []struct {
		s string
		v uint64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.v && n%u.v == 0 {
			return fmt.Sprintf("%d%s", n/u.v, u.s)
		}
	}
	return fmt.Sprintf("%dB", n)
}
