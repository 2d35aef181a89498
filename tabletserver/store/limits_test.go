package store_test

// Request size limits (store.Limits): every oversized or empty request is
// refused with InvalidArgument naming the limit, and nothing of it is applied.
// Helpers (newAPIEnv, setC, ...) live in api_test.go.

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/shaledb/shale/internal/limits"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/tabletserver/store"
)

func apiLimitEntry(row string, muts ...*kvpb.Mutation) *kvpb.BatchMutateRequest_Entry {
	return &kvpb.BatchMutateRequest_Entry{RowKey: []byte(row), Mutations: muts}
}

func (e *apiEnv) batchErr(entries ...*kvpb.BatchMutateRequest_Entry) (*kvpb.BatchMutateResponse, error) {
	return e.cl.BatchMutate(e.ctx, &kvpb.BatchMutateRequest{Header: apiHdr(apiTablet), TableId: apiTableID, Entries: entries})
}

func (e *apiEnv) camErr(row string, cond *kvpb.Condition, tm, fm []*kvpb.Mutation) error {
	_, err := e.cl.CheckAndMutateRow(e.ctx, &kvpb.CheckAndMutateRowRequest{Header: apiHdr(apiTablet), TableId: apiTableID, RowKey: []byte(row), Condition: cond, TrueMutations: tm, FalseMutations: fm})
	return err
}

func (e *apiEnv) rmwErr(row string, rules ...*kvpb.ReadModifyWriteRule) error {
	_, err := e.cl.ReadModifyWriteRow(e.ctx, &kvpb.ReadModifyWriteRowRequest{Header: apiHdr(apiTablet), TableId: apiTableID, RowKey: []byte(row), Rules: rules})
	return err
}

// wantRowError fails unless a one-entry batch result carries the code and
// substrings.
func apiWantRowError(t *testing.T, res *kvpb.BatchMutateResponse_Result, code codes.Code, substrs ...string) {
	t.Helper()
	if res == nil || res.Error == nil {
		t.Errorf("batch entry succeeded, want %v", code)
		return
	}
	if codes.Code(res.Error.Code) != code {
		t.Errorf("batch entry: %v %q, want %v", codes.Code(res.Error.Code), res.Error.Message, code)
	}
	for _, s := range substrs {
		if !strings.Contains(res.Error.Message, s) {
			t.Errorf("batch entry error %q does not mention %q", res.Error.Message, s)
		}
	}
}

// unchanged snapshots a row; the returned func fails if it changed since.
func (e *apiEnv) unchanged(t *testing.T, row string) func(what string) {
	t.Helper()
	before := apiCells(e.get(row, apiAllVersions()))
	return func(what string) {
		t.Helper()
		apiEq(t, fmt.Sprintf("row %q after %s", row, what), apiCells(e.get(row, apiAllVersions())), before)
	}
}

var apiIfExists = &kvpb.Condition{Family: "c", Qualifier: []byte("v"), Op: kvpb.Condition_EXISTS}

// Defaults: 4 KiB row keys and 16 KiB qualifiers.
func TestLimitDefaults(t *testing.T) {
	e := newAPIEnv(t, nil)
	okKey := strings.Repeat("k", 4<<10)
	bigKey := okKey + "k"

	t.Run("RowKey", func(t *testing.T) {
		e.mutate(okKey, apiSetTS("c", "v", 1, "max-key"))
		apiEq(t, "row with a 4 KiB key", apiVals(e.get(okKey, nil)), []string{"c:v=max-key"})
		_, err := e.mutateErr(bigKey, apiSetC("c", "v", "x"))
		apiWantCode(t, err, codes.InvalidArgument, "4097 bytes", "limit is 4096")
		_, err = e.getErr(bigKey, nil)
		apiWantCode(t, err, codes.InvalidArgument, "limit is 4096")
		apiWantCode(t, e.camErr(bigKey, apiIfExists, []*kvpb.Mutation{apiSetC("c", "v", "x")}, nil), codes.InvalidArgument, "limit is 4096")
		apiWantCode(t, e.rmwErr(bigKey, apiIncr("c", "n", 1)), codes.InvalidArgument, "limit is 4096")
		resp, err := e.batchErr(apiLimitEntry(bigKey, apiSetC("c", "v", "x")), apiLimitEntry("ok-row", apiSetC("c", "v", "x")))
		if err != nil {
			t.Fatal(err)
		}
		apiWantRowError(t, resp.Results[0], codes.InvalidArgument, "limit is 4096")
		if resp.Results[1].Error != nil {
			t.Errorf("valid entry beside an oversized key failed: %v", resp.Results[1].Error)
		}
	})

	t.Run("Qualifier", func(t *testing.T) {
		okQ := strings.Repeat("q", 16<<10)
		bigQ := okQ + "q"
		e.mutate("dq", apiSetTS("c", "v", 1, "keep"))
		check := e.unchanged(t, "dq")
		_, err := e.mutateErr("dq", apiDelRow(), apiSetC("c", bigQ, "x"))
		apiWantCode(t, err, codes.InvalidArgument, "16385 bytes", "limit is 16384")
		check("oversized qualifier")
		e.mutate("dq2", apiSetTS("c", okQ, 1, "max-qual"))
		apiEq(t, "16 KiB qualifier", apiVals(e.get("dq2", nil)), []string{"c:" + okQ + "=max-qual"})
	})
}

func TestLimitLowered(t *testing.T) {
	lim := store.Limits{MaxRowKeyBytes: 64, MaxQualifierBytes: 32, MaxValueBytes: 1024, MaxMutationBytes: 4096, MaxBatchBytes: 8192, MaxBatchRows: 5}
	e := newAPIEnv(t, func(o *store.Options) { o.Limits = lim })
	const row = "L"
	e.mutate(row, apiSetTS("c", "v", 10, "v10"), apiSetTS("c", "v", 20, "v20"), apiSetTS("a", "x", 10, "ax"), apiSetB("c", "n", 10, apiI64(5)), apiSetTS("c", "s", 10, strings.Repeat("s", 1000)))
	check := e.unchanged(t, row)
	val := func(n int) string { return strings.Repeat("v", n) }

	t.Run("RowKey", func(t *testing.T) {
		ok, big := strings.Repeat("r", 64), strings.Repeat("r", 65)
		e.mutate(ok, apiSetC("c", "v", "x"))
		_, err := e.mutateErr(big, apiSetC("c", "v", "x"))
		apiWantCode(t, err, codes.InvalidArgument, "65 bytes", "limit is 64")
		_, err = e.getErr(big, nil)
		apiWantCode(t, err, codes.InvalidArgument, "limit is 64")
		apiWantCode(t, e.camErr(big, apiIfExists, []*kvpb.Mutation{apiSetC("c", "v", "x")}, nil), codes.InvalidArgument, "limit is 64")
		apiWantCode(t, e.camErr(big, apiIfExists, nil, nil), codes.InvalidArgument, "limit is 64")
		apiWantCode(t, e.rmwErr(big, apiIncr("c", "n", 1)), codes.InvalidArgument, "limit is 64")
		resp, err := e.batchErr(apiLimitEntry(big, apiSetC("c", "v", "x")))
		if err != nil {
			t.Fatal(err)
		}
		apiWantRowError(t, resp.Results[0], codes.InvalidArgument, "limit is 64")
		if r := e.get(big[:64], apiAllVersions()); len(r.Cells) != 1 {
			t.Errorf("row %q touched by rejected requests: %v", big[:64], apiCells(r))
		}
	})

	t.Run("Qualifier", func(t *testing.T) {
		okQ, bigQ := strings.Repeat("q", 32), strings.Repeat("q", 33)
		_, err := e.mutateErr(row, apiDelRow(), apiSetC("c", "v", "new"), apiSetC("c", bigQ, "x"))
		apiWantCode(t, err, codes.InvalidArgument, "33 bytes", "limit is 32")
		check("MutateRow with an oversized qualifier")
		apiWantCode(t, e.camErr(row, apiIfExists, []*kvpb.Mutation{apiDelRow(), apiSetC("c", bigQ, "x")}, nil), codes.InvalidArgument, "limit is 32")
		apiWantCode(t, e.camErr(row, apiIfExists, []*kvpb.Mutation{apiDelRow()}, []*kvpb.Mutation{apiSetC("c", bigQ, "x")}), codes.InvalidArgument, "limit is 32")
		check("CheckAndMutateRow with an oversized qualifier")
		apiWantCode(t, e.rmwErr(row, apiIncr("c", "n", 1), apiAppendR("c", bigQ, "x")), codes.InvalidArgument, "limit is 32")
		check("ReadModifyWriteRow with an oversized qualifier")
		resp, err := e.batchErr(apiLimitEntry(row, apiDelRow(), apiSetC("c", bigQ, "x")))
		if err != nil {
			t.Fatal(err)
		}
		apiWantRowError(t, resp.Results[0], codes.InvalidArgument, "limit is 32")
		check("BatchMutate with an oversized qualifier")
		e.mutate("Lq", apiSetTS("c", okQ, 1, "ok"))
		apiEq(t, "qualifier at the limit", apiVals(e.get("Lq", nil)), []string{"c:" + okQ + "=ok"})
	})

	t.Run("Value", func(t *testing.T) {
		_, err := e.mutateErr(row, apiDelRow(), apiSetC("c", "v", val(1025)))
		apiWantCode(t, err, codes.InvalidArgument, "1025 bytes", "limit is 1024")
		check("MutateRow with an oversized value")
		apiWantCode(t, e.camErr(row, apiIfExists, []*kvpb.Mutation{apiDelRow()}, []*kvpb.Mutation{apiSetC("c", "v", val(1025))}), codes.InvalidArgument, "limit is 1024")
		check("CheckAndMutateRow with an oversized value")
		apiWantCode(t, e.rmwErr(row, apiIncr("c", "n", 1), apiAppendR("c", "new", val(1025))), codes.InvalidArgument, "limit is 1024")
		check("ReadModifyWriteRow with an oversized append")
		resp, err := e.batchErr(apiLimitEntry(row, apiDelRow(), apiSetC("c", "v", val(1025))), apiLimitEntry("Lv-ok", apiSetC("c", "v", val(1024))))
		if err != nil {
			t.Fatal(err)
		}
		apiWantRowError(t, resp.Results[0], codes.InvalidArgument, "limit is 1024")
		if resp.Results[1].Error != nil {
			t.Errorf("value at the limit refused: %v", resp.Results[1].Error)
		}
		check("BatchMutate with an oversized value")
		if r := e.get("Lv-ok", nil); r == nil || len(r.Cells[0].Value) != 1024 {
			t.Errorf("value at the limit not stored: %v", r)
		}
	})

	t.Run("AppendResultOverValueLimit", func(t *testing.T) {
		// c:s holds 1000 bytes; appending 100 would store 1100 > 1024, a
		// value no SetCell could write. (Own row, so a failure here does
		// not cascade into the other subtests.)
		e.mutate("La", apiSetTS("c", "s", 10, val(1000)), apiSetB("c", "n", 10, apiI64(5)))
		checkLa := e.unchanged(t, "La")
		err := e.rmwErr("La", apiIncr("c", "n", 1), apiAppendR("c", "s", val(100)))
		apiWantCode(t, err, codes.InvalidArgument, "limit is 1024")
		checkLa("ReadModifyWriteRow whose append result exceeds the value limit")
	})

	t.Run("MutationBytes", func(t *testing.T) {
		five := []*kvpb.Mutation{apiDelRow()}
		for i := 0; i < 5; i++ {
			five = append(five, apiSetC("c", fmt.Sprint(i), val(1000)))
		}
		_, err := e.mutateErr(row, five...)
		apiWantCode(t, err, codes.InvalidArgument, "limit is 4096")
		check("MutateRow over the mutation limit")
		apiWantCode(t, e.camErr(row, apiIfExists, five, nil), codes.InvalidArgument, "limit is 4096")
		apiWantCode(t, e.camErr(row, apiIfExists, nil, five), codes.InvalidArgument, "limit is 4096")
		check("CheckAndMutateRow over the mutation limit")
		var rules []*kvpb.ReadModifyWriteRule
		for i := 0; i < 5; i++ {
			rules = append(rules, apiAppendR("c", fmt.Sprint(i), val(1000)))
		}
		apiWantCode(t, e.rmwErr(row, rules...), codes.InvalidArgument, "limit is 4096")
		check("ReadModifyWriteRow over the mutation limit")
		resp, err := e.batchErr(apiLimitEntry(row, five...))
		if err != nil {
			t.Fatal(err)
		}
		apiWantRowError(t, resp.Results[0], codes.InvalidArgument, "limit is 4096")
		check("BatchMutate over the mutation limit")
		// Three such cells fit.
		e.mutate("Lm", five[:4]...)
		if r := e.get("Lm", nil); r == nil || len(r.Cells) != 3 {
			t.Errorf("mutations under the limit: %v", r)
		}
	})

	t.Run("BatchRows", func(t *testing.T) {
		var entries []*kvpb.BatchMutateRequest_Entry
		for i := 0; i < 6; i++ {
			entries = append(entries, apiLimitEntry(fmt.Sprintf("Lb%d", i), apiSetC("c", "v", "x")))
		}
		entries[0] = apiLimitEntry(row, apiDelRow())
		_, err := e.batchErr(entries...)
		apiWantCode(t, err, codes.InvalidArgument, "6 rows", "limit is 5")
		check("BatchMutate over the row limit")
		for i := 1; i < 6; i++ {
			if r := e.get(fmt.Sprintf("Lb%d", i), nil); r != nil {
				t.Errorf("entry %d of a rejected batch applied: %v", i, apiCells(r))
			}
		}
		resp, err := e.batchErr(entries[1:]...)
		if err != nil {
			t.Fatalf("batch at the row limit: %v", err)
		}
		for i, res := range resp.Results {
			if res.Error != nil {
				t.Errorf("entry %d: %v", i, res.Error)
			}
		}
	})

	t.Run("BatchBytes", func(t *testing.T) {
		// Each entry is ~3 KiB (under the row limit); three exceed 8 KiB.
		entry := func(r string) *kvpb.BatchMutateRequest_Entry {
			return apiLimitEntry(r, apiSetC("c", "a", val(1000)), apiSetC("c", "b", val(1000)), apiSetC("c", "c", val(1000)))
		}
		_, err := e.batchErr(apiLimitEntry(row, apiDelRow()), entry("LB1"), entry("LB2"), entry("LB3"))
		apiWantCode(t, err, codes.InvalidArgument, "limit is 8192")
		check("BatchMutate over the byte limit")
		for _, r := range []string{"LB1", "LB2", "LB3"} {
			if got := e.get(r, nil); got != nil {
				t.Errorf("entry %q of a rejected batch applied: %v", r, apiCells(got))
			}
		}
		resp, err := e.batchErr(entry("LB1"), entry("LB2"))
		if err != nil || resp.Results[0].Error != nil || resp.Results[1].Error != nil {
			t.Errorf("batch under the byte limit: %v %v", resp, err)
		}
	})

	t.Run("Empty", func(t *testing.T) {
		_, err := e.mutateErr(row)
		apiWantCode(t, err, codes.InvalidArgument, "no mutations")
		_, err = e.mutateErr(row, apiDelRow(), &kvpb.Mutation{})
		apiWantCode(t, err, codes.InvalidArgument, "empty mutation")
		apiWantCode(t, e.rmwErr(row), codes.InvalidArgument, "at least one rule")
		_, err = e.batchErr()
		apiWantCode(t, err, codes.InvalidArgument, "no rows")
		resp, err := e.batchErr(apiLimitEntry(row), apiLimitEntry("Le", apiSetC("c", "v", "x")))
		if err != nil {
			t.Fatal(err)
		}
		apiWantRowError(t, resp.Results[0], codes.InvalidArgument, "no mutations")
		if resp.Results[1].Error != nil {
			t.Errorf("valid entry beside an empty one: %v", resp.Results[1].Error)
		}
		check("empty requests")
	})
}

// Scan pages are bounded in bytes as well as rows: many large rows come in
// several pages, none over ScanPageBytes unless it holds one row, every
// row once and in order, forwards and backwards.
func TestScanPageBytes(t *testing.T) {
	const pageBytes = 64 << 10
	e := newAPIEnv(t, func(o *store.Options) { o.Limits.ScanPageBytes = pageBytes })
	val := strings.Repeat("v", 20<<10)
	var want []string
	for i := range 40 {
		row := fmt.Sprintf("r%03d", i)
		e.mutate(row, apiSetTS("c", "v", 1, val))
		want = append(want, row)
	}
	e.mutate("r999", apiSetTS("c", "v", 1, strings.Repeat("b", pageBytes+1))) // a row over a page
	want = append(want, "r999")
	for _, reverse := range []bool{false, true} {
		out, err := e.scanErr(&kvpb.ScanRequest{Reverse: reverse})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for i, m := range out {
			size := 0
			for _, r := range m.Rows {
				got = append(got, string(r.Key))
				for _, c := range r.Cells {
					size += len(c.Value)
				}
			}
			if size > pageBytes && len(m.Rows) > 1 {
				t.Errorf("reverse=%v: page %d has %d rows of %d bytes; the page limit is %d", reverse, i, len(m.Rows), size, pageBytes)
			}
		}
		w := append([]string(nil), want...)
		if reverse {
			slices.Reverse(w)
		}
		apiEq(t, fmt.Sprintf("reverse=%v rows", reverse), got, w)
		if len(out) < 10 {
			t.Errorf("reverse=%v: %d pages of 40 rows of 20 KiB; want pages of at most 3 rows", reverse, len(out))
		}
	}
}

// A row whose cells exceed MaxReadRowBytes (grown by many writes) fails a
// read with InvalidArgument naming the limit; reading fewer columns works.
func TestReadRowBytes(t *testing.T) {
	e := newAPIEnv(t, func(o *store.Options) { o.Limits.MaxReadRowBytes = 64 << 10 })
	val := strings.Repeat("v", 20<<10)
	for i := range 4 {
		e.mutate("big", apiSetTS("c", fmt.Sprintf("q%d", i), 1, val))
	}
	e.mutate("small", apiSetTS("c", "q", 1, "x"))
	_, err := e.getErr("big", nil)
	apiWantCode(t, err, codes.InvalidArgument, "MaxReadRowBytes", "65536")
	_, err = e.scanErr(&kvpb.ScanRequest{})
	apiWantCode(t, err, codes.InvalidArgument, "MaxReadRowBytes")
	one := &kvpb.ReadOptions{Columns: []*kvpb.Column{{Family: "c", Qualifier: []byte("q1")}}}
	apiEq(t, "one column of the big row", len(e.get("big", one).Cells), 1)
	rows, _, _ := e.scan(&kvpb.ScanRequest{Options: one})
	apiEq(t, "scan of one column", apiRowKeys(rows), []string{"big"})
}

// A server may not be configured with a limit above the shared one: its
// clients could not read what it accepts.
func TestLimitAboveCeilingRefused(t *testing.T) {
	o := store.Options{StoreID: 1, Dir: t.TempDir(), Limits: store.Limits{MaxValueBytes: limits.MaxValueBytes + 1}}
	_, err := store.Open(o)
	if err == nil || !strings.Contains(err.Error(), "MaxValueBytes") {
		t.Fatalf("Open with MaxValueBytes above the ceiling: %v", err)
	}
}
