package quota

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/proto/errorpb"
	"github.com/shaledb/shale/proto/pdpb"
)

func TestParseRates(t *testing.T) {
	for _, tc := range []struct {
		in    string
		bytes bool
		want  uint64
		err   string
	}{
		{in: "100", want: 100},
		{in: "100/s", want: 100},
		{in: "10MiB", bytes: true, want: 10 << 20},
		{in: "10M", bytes: true, want: 10 << 20},
		{in: "1.5GB/s", bytes: true, want: 1_500_000_000},
		{in: "512kib", bytes: true, want: 512 << 10},
		{in: "4096", bytes: true, want: 4096},
		{in: "-5", err: "negative"},
		{in: "-1MiB", bytes: true, err: "negative"},
		{in: "0", err: "below the smallest limit"},
		{in: "0.5B", bytes: true, err: "below the smallest limit"},
		{in: "1.5", err: "not a request rate"},
		{in: "ten", err: "not a request rate"},
		{in: "99999999999999999999999", err: "above the largest"},
		{in: "20000000", err: "above the largest"},
		{in: "2PiB", bytes: true, err: "unknown unit"},
		{in: "2TiB", bytes: true, err: "above the largest"},
		{in: "5 parsecs", bytes: true, err: "unknown unit"},
		{in: "", bytes: true, err: "not a byte rate"},
	} {
		parse := ParseRPS
		if tc.bytes {
			parse = ParseBytes
		}
		got, err := parse(tc.in)
		if tc.err != "" {
			require.ErrorContains(t, err, tc.err, tc.in)
			require.Equal(t, codes.InvalidArgument, status.Code(err), tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got, tc.in)
	}
	for _, n := range []uint64{1, 1000, 10 << 20, 1536 << 10, 3 << 40} {
		got, err := ParseBytes(FormatBytes(n))
		if n > MaxBytes {
			require.Error(t, err)
			continue
		}
		require.NoError(t, err)
		require.Equal(t, n, got, "FormatBytes round trip")
	}
}

func TestValidateAndEdit(t *testing.T) {
	require.ErrorContains(t, ValidateSubject("", ""), "either a table or a user")
	require.ErrorContains(t, ValidateSubject("t", "alice"), "either a table or a user")
	require.NoError(t, ValidateSubject("t", ""))
	require.ErrorContains(t, ValidateSet(nil), "at least one limit")
	require.ErrorContains(t, ValidateSet(&pdpb.QuotaLimits{WriteRps: MaxRPS + 1}), "above the largest")
	require.ErrorContains(t, ValidateSet(&pdpb.QuotaLimits{ReadBytes: MaxBytes + 1}), "above the largest")
	require.ErrorContains(t, ValidateNames([]string{"write-qps"}), `unknown limit "write-qps"`)

	st := &pdpb.QuotaState{}
	q, err := Set(st, 7, "t", "", &pdpb.QuotaLimits{WriteRps: 100})
	require.NoError(t, err)
	require.Equal(t, uint64(100), q.Limits.WriteRps)
	// Set merges: the write limit stays.
	q, err = Set(st, 7, "t", "", &pdpb.QuotaLimits{ReadBytes: 10 << 20})
	require.NoError(t, err)
	require.Equal(t, "write-rps=100 read-bytes=10MiB", Describe(q.Limits))
	_, err = Set(st, 0, "", "alice", &pdpb.QuotaLimits{ReadRps: 5})
	require.NoError(t, err)
	require.Len(t, st.Quotas, 2)
	require.Equal(t, uint64(3), st.Version)

	found, err := Remove(st, 7, "", []string{WriteRPS})
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, "read-bytes=10MiB", Describe(st.Quotas[0].Limits))
	found, err = Remove(st, 7, "", []string{ReadBytes})
	require.NoError(t, err)
	require.True(t, found)
	require.Len(t, st.Quotas, 1, "a quota with no limit left is deleted")
	found, err = Remove(st, 7, "", nil)
	require.NoError(t, err)
	require.False(t, found)
	_, err = Remove(st, 0, "alice", []string{"bogus"})
	require.Error(t, err)
	require.False(t, DropTable(st, 7))
	_, _ = Set(st, 9, "u", "", &pdpb.QuotaLimits{ReadRps: 1})
	require.True(t, DropTable(st, 9))
	require.Len(t, st.Quotas, 1)
}

func TestShares(t *testing.T) {
	st := &pdpb.QuotaState{Quotas: []*pdpb.Quota{
		{TableId: 7, TableName: "t", Limits: &pdpb.QuotaLimits{WriteRps: 300, ReadBytes: 900}},
		{TableId: 8, TableName: "new", Limits: &pdpb.QuotaLimits{ReadRps: 90}},
		{User: "alice", Limits: &pdpb.QuotaLimits{ReadRps: 30}},
	}}
	p := Placement{
		Stores: []uint64{1, 2, 3},
		Leaders: map[uint64]map[uint64]int{
			// Store 4 is not serving: its leader does not count.
			7: {1: 2, 2: 1, 4: 5},
		},
	}
	got := Shares(st, p)
	find := func(store uint64, table uint64, user string) *pdpb.QuotaShare {
		for _, s := range got[store] {
			if s.TableId == table && s.User == user {
				return s
			}
		}
		return nil
	}
	// Table 7 by leaders: 2/3 on store 1, 1/3 on store 2, none on 3.
	require.InDelta(t, 200, find(1, 7, "").WriteRps, 1e-9)
	require.InDelta(t, 600, find(1, 7, "").ReadBytes, 1e-9)
	require.InDelta(t, 100, find(2, 7, "").WriteRps, 1e-9)
	require.Nil(t, find(3, 7, ""), "a store leading none of the table gets no share")
	require.Nil(t, got[4])
	// Table 8 has no leader known yet: even split.
	for _, s := range []uint64{1, 2, 3} {
		require.InDelta(t, 30, find(s, 8, "").ReadRps, 1e-9)
		require.InDelta(t, 10, find(s, 0, "alice").ReadRps, 1e-9, "a user's quota is split evenly")
		require.Equal(t, "alice", find(s, 0, "alice").Name)
	}
	// The shares of each quota add up to its limit.
	sum := 0.0
	for _, s := range []uint64{1, 2, 3} {
		if sh := find(s, 7, ""); sh != nil {
			sum += sh.WriteRps
		}
	}
	require.InDelta(t, 300, sum, 1e-9)
	require.Empty(t, Shares(st, Placement{}), "no serving store: no share")
}

// fakeClock is a settable clock for the limiter.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func newTestLimiter(shares ...*pdpb.QuotaShare) (*Limiter, *fakeClock) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	l := NewLimiter(nil)
	l.now = clk.now
	l.Update(&pdpb.QuotaShares{Shares: shares})
	return l, clk
}

func TestLimiterRequests(t *testing.T) {
	l, clk := newTestLimiter(&pdpb.QuotaShare{TableId: 7, Name: "t", WriteRps: 10})
	// The bucket holds one second's worth: 10 writes pass, the 11th waits.
	for i := range 10 {
		_, err := l.Admit(7, "", true, 100)
		require.NoError(t, err, "write %d", i)
	}
	_, err := l.Admit(7, "", true, 100)
	qe, ok := errs.As[*errorpb.QuotaExceeded](err)
	require.True(t, ok, "%v", err)
	require.True(t, proto.Equal(&errorpb.QuotaExceeded{Scope: ScopeTable, Name: "t", Limit: WriteRPS, RetryAfterMs: 100}, qe), "%v", qe)
	// Reads and other tables are not limited.
	_, err = l.Admit(7, "", false, 0)
	require.NoError(t, err)
	_, err = l.Admit(8, "", true, 0)
	require.NoError(t, err)
	// After the wait it asked for, the request passes.
	clk.t = clk.t.Add(100 * time.Millisecond)
	tk, err := l.Admit(7, "", true, 100)
	require.NoError(t, err)
	_, err = l.Admit(7, "", true, 100)
	require.Error(t, err)
	// A refunded request (not served here) gives its token back.
	tk.Done(0, true)
	_, err = l.Admit(7, "", true, 100)
	require.NoError(t, err)
}

func TestLimiterBytesAndUsers(t *testing.T) {
	l, clk := newTestLimiter(
		&pdpb.QuotaShare{TableId: 7, Name: "t", ReadBytes: 8 << 10},
		&pdpb.QuotaShare{User: "alice", Name: "alice", WriteBytes: 8 << 10, ReadRps: 1},
	)
	// A read is admitted while the bucket is not in debt, then charged
	// with what it returned, into debt: 24KiB at 8KiB/s is 2s of debt.
	tk, err := l.Admit(7, "", false, 0)
	require.NoError(t, err)
	tk.Done(32<<10, false)
	_, err = l.Admit(7, "", false, 0)
	qe, ok := errs.As[*errorpb.QuotaExceeded](err)
	require.True(t, ok, "%v", err)
	require.Equal(t, ReadBytes, qe.Limit)
	require.Equal(t, uint64(3000), qe.RetryAfterMs)
	clk.t = clk.t.Add(3 * time.Second)
	_, err = l.Admit(7, "", false, 0)
	require.NoError(t, err)

	// A user's limits apply to whatever table it uses; others are free.
	_, err = l.Admit(9, "alice", true, 64<<10) // larger than the bucket: debt
	require.NoError(t, err)
	_, err = l.Admit(9, "alice", true, 1)
	qe, ok = errs.As[*errorpb.QuotaExceeded](err)
	require.True(t, ok, "%v", err)
	require.True(t, proto.Equal(&errorpb.QuotaExceeded{Scope: ScopeUser, Name: "alice", Limit: WriteBytes, RetryAfterMs: 7000}, qe), "%v", qe)
	_, err = l.Admit(9, "bob", true, 64<<10)
	require.NoError(t, err)
	_, err = l.Admit(9, "alice", false, 0)
	require.NoError(t, err)
	_, err = l.Admit(9, "alice", false, 0)
	require.Error(t, err, "alice's read-rps")
}

func TestLimiterUpdate(t *testing.T) {
	l, _ := newTestLimiter(&pdpb.QuotaShare{TableId: 7, Name: "t", WriteRps: 1})
	_, err := l.Admit(7, "", true, 0)
	require.NoError(t, err)
	_, err = l.Admit(7, "", true, 0)
	require.Error(t, err)
	// Nil (PD said nothing) keeps the quotas.
	l.Update(nil)
	require.Equal(t, 1, l.Len())
	// An unchanged limit keeps its (empty) bucket.
	l.Update(&pdpb.QuotaShares{Shares: []*pdpb.QuotaShare{{TableId: 7, Name: "t", WriteRps: 1}}})
	_, err = l.Admit(7, "", true, 0)
	require.Error(t, err)
	// Removal frees the table at once and forgets its bucket.
	l.Update(&pdpb.QuotaShares{})
	require.Equal(t, 0, l.Len())
	for range 100 {
		_, err = l.Admit(7, "", true, 0)
		require.NoError(t, err)
	}
}

// Concurrent refusals must not eat tokens: admitted requests match the
// rate (plus the initial burst) however many callers contend.
func TestLimiterContention(t *testing.T) {
	l := NewLimiter(nil)
	const r = 200
	l.Update(&pdpb.QuotaShares{Shares: []*pdpb.QuotaShare{{TableId: 7, Name: "t", ReadRps: r}}})
	var admitted atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	stop := start.Add(500 * time.Millisecond)
	for range 8 {
		wg.Add(1)
		go func() { //stop:joined below
			defer wg.Done()
			for time.Now().Before(stop) {
				if _, err := l.Admit(7, "", false, 0); err == nil {
					admitted.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	want := r*time.Since(start).Seconds() + r // the rate, plus one second's burst
	require.InDelta(t, want, float64(admitted.Load()), 0.1*want)
}
