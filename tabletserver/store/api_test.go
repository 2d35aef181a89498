package store_test

// Behaviour tests of the Tablet data API (proto/kvpb/kv.proto) against a
// one-store cluster over real gRPC.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/proto/errorpb"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/tabletserver/store"
	"github.com/shaledb/shale/tabletserver/storetest"
)

const (
	apiTableID    = 42 // served whole by apiTablet
	apiSubTableID = 43 // only rows [r10, r20) are served, by apiSubTablet
	apiTablet     = 1
	apiSubTablet  = 2
)

// apiSchema: "a" keeps 2 versions, "ab" shares a prefix with "a" and is
// unlimited, "b" expires after a minute, "c" is unlimited, "d" has both rules.
func apiSchema(id uint64) *metapb.TableSchema {
	return &metapb.TableSchema{TableId: id, Name: fmt.Sprintf("api%d", id), Version: 1, Families: []*metapb.FamilySchema{
		{Name: "a", MaxVersions: 2},
		{Name: "ab"},
		{Name: "b", MaxAgeMs: 60_000},
		{Name: "c"},
		{Name: "d", MaxVersions: 3, MaxAgeMs: 60_000},
	}}
}

type apiEnv struct {
	t   *testing.T
	c   *storetest.Cluster
	cl  kvpb.TabletClient
	ctx context.Context
}

// newAPIEnv starts one store with background GC disabled (reads must hide
// garbage themselves), table 42 on a whole-table tablet and table 43 on a
// tablet that covers only rows [r10, r20).
func newAPIEnv(t *testing.T, tweak func(*store.Options)) *apiEnv {
	t.Helper()
	c := storetest.Start(t, 1, func(o *store.Options) {
		o.GCInterval = -1
		if tweak != nil {
			tweak(o)
		}
	})
	c.PutSchema(apiSchema(apiTableID))
	c.PutSchema(apiSchema(apiSubTableID))
	p := keys.TablePrefix(apiTableID)
	c.Bootstrap(apiTablet, p, keys.PrefixEnd(p), 1)
	c.Bootstrap(apiSubTablet, keys.RowKey(apiSubTableID, []byte("r10")), keys.RowKey(apiSubTableID, []byte("r20")), 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return &apiEnv{t: t, c: c, cl: c.Nodes[1].Client, ctx: ctx}
}

func apiHdr(tablet uint64) *kvpb.RequestHeader { return &kvpb.RequestHeader{TabletId: tablet} }

// ---- mutation builders ----

func apiSetC(fam, qual, val string) *kvpb.Mutation { return apiSetTS(fam, qual, 0, val) }

func apiSetTS(fam, qual string, ts int64, val string) *kvpb.Mutation {
	return apiSetB(fam, qual, ts, []byte(val))
}

func apiSetB(fam, qual string, ts int64, val []byte) *kvpb.Mutation {
	return &kvpb.Mutation{Mutation: &kvpb.Mutation_SetCell_{SetCell: &kvpb.Mutation_SetCell{Family: fam, Qualifier: []byte(qual), Timestamp: ts, Value: val}}}
}

func apiDelCol(fam, qual string, tr *kvpb.TimeRange) *kvpb.Mutation {
	return &kvpb.Mutation{Mutation: &kvpb.Mutation_DeleteFromColumn_{DeleteFromColumn: &kvpb.Mutation_DeleteFromColumn{Family: fam, Qualifier: []byte(qual), TimeRange: tr}}}
}

func apiDelFam(fam string) *kvpb.Mutation {
	return &kvpb.Mutation{Mutation: &kvpb.Mutation_DeleteFromFamily_{DeleteFromFamily: &kvpb.Mutation_DeleteFromFamily{Family: fam}}}
}

func apiDelRow() *kvpb.Mutation {
	return &kvpb.Mutation{Mutation: &kvpb.Mutation_DeleteFromRow_{DeleteFromRow: &kvpb.Mutation_DeleteFromRow{}}}
}

func apiIncr(fam, qual string, n int64) *kvpb.ReadModifyWriteRule {
	return &kvpb.ReadModifyWriteRule{Family: fam, Qualifier: []byte(qual), Rule: &kvpb.ReadModifyWriteRule_IncrementAmount{IncrementAmount: n}}
}

func apiAppendR(fam, qual, v string) *kvpb.ReadModifyWriteRule {
	return &kvpb.ReadModifyWriteRule{Family: fam, Qualifier: []byte(qual), Rule: &kvpb.ReadModifyWriteRule_AppendValue{AppendValue: []byte(v)}}
}

func apiI64(n int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(n)) }

func apiAllVersions() *kvpb.ReadOptions { return &kvpb.ReadOptions{MaxVersions: 1000} }

// ---- calls ----

func (e *apiEnv) mutateErr(row string, muts ...*kvpb.Mutation) (int64, error) {
	resp, err := e.cl.MutateRow(e.ctx, &kvpb.MutateRowRequest{Header: apiHdr(apiTablet), TableId: apiTableID, RowKey: []byte(row), Mutations: muts})
	if err != nil {
		return 0, err
	}
	return resp.Timestamp, nil
}

func (e *apiEnv) mutate(row string, muts ...*kvpb.Mutation) int64 {
	e.t.Helper()
	ts, err := e.mutateErr(row, muts...)
	if err != nil {
		e.t.Fatalf("MutateRow %q: %v", row, err)
	}
	if ts <= 0 {
		e.t.Fatalf("MutateRow %q: timestamp %d", row, ts)
	}
	return ts
}

func (e *apiEnv) getErr(row string, o *kvpb.ReadOptions) (*kvpb.Row, error) {
	resp, err := e.cl.Get(e.ctx, &kvpb.GetRequest{Header: apiHdr(apiTablet), TableId: apiTableID, RowKey: []byte(row), Options: o})
	if err != nil {
		return nil, err
	}
	if resp.Row != nil && string(resp.Row.Key) != row {
		return nil, fmt.Errorf("Get %q returned row %q", row, resp.Row.Key)
	}
	return resp.Row, nil
}

func (e *apiEnv) get(row string, o *kvpb.ReadOptions) *kvpb.Row {
	e.t.Helper()
	r, err := e.getErr(row, o)
	if err != nil {
		e.t.Fatalf("Get %q: %v", row, err)
	}
	return r
}

// cells renders a row as "fam:qual@ts=value" strings (nil row: nil).
func apiCells(r *kvpb.Row) []string {
	if r == nil {
		return nil
	}
	var out []string
	for _, c := range r.Cells {
		out = append(out, fmt.Sprintf("%s:%s@%d=%s", c.Family, c.Qualifier, c.Timestamp, c.Value))
	}
	return out
}

// vals renders a row as "fam:qual=value" strings, ignoring timestamps.
func apiVals(r *kvpb.Row) []string {
	if r == nil {
		return nil
	}
	var out []string
	for _, c := range r.Cells {
		out = append(out, fmt.Sprintf("%s:%s=%s", c.Family, c.Qualifier, c.Value))
	}
	return out
}

func apiEq[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got  %#v\n want %#v", what, got, want)
	}
}

// wantCode fails unless err has the gRPC code and its message contains
// every substring.
func apiWantCode(t *testing.T, err error, code codes.Code, substrs ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("got no error, want %v", code)
		return
	}
	st := status.Convert(err)
	if st.Code() != code {
		t.Errorf("got %v (%v), want code %v", st.Code(), st.Message(), code)
		return
	}
	for _, s := range substrs {
		if !strings.Contains(st.Message(), s) {
			t.Errorf("error %q does not mention %q", st.Message(), s)
		}
	}
}

func (e *apiEnv) scanErr(req *kvpb.ScanRequest) ([]*kvpb.ScanResponse, error) {
	if req.Header == nil {
		req.Header = apiHdr(apiTablet)
	}
	if req.TableId == 0 {
		req.TableId = apiTableID
	}
	st, err := e.cl.Scan(e.ctx, req)
	if err != nil {
		return nil, err
	}
	var out []*kvpb.ScanResponse
	for {
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, m)
	}
}

// scan runs a scan and checks the paging protocol: exactly the final
// message has last set, tablet_exhausted appears only on it, and no page
// exceeds pageRows (when set). It returns the rows, the number of messages
// and the final tablet_exhausted.
func (e *apiEnv) scan(req *kvpb.ScanRequest) (rows []*kvpb.Row, msgs int, exhausted bool) {
	e.t.Helper()
	out, err := e.scanErr(req)
	if err != nil {
		e.t.Fatalf("Scan %v: %v", req, err)
	}
	if len(out) == 0 {
		e.t.Fatalf("Scan %v: no messages", req)
	}
	for i, m := range out {
		final := i == len(out)-1
		if m.Last != final {
			e.t.Errorf("Scan message %d/%d: last=%v", i+1, len(out), m.Last)
		}
		if !final && m.TabletExhausted {
			e.t.Errorf("Scan message %d/%d: tablet_exhausted on a non-final page", i+1, len(out))
		}
		if req.PageRows > 0 && len(m.Rows) > int(req.PageRows) {
			e.t.Errorf("Scan message %d has %d rows; page_rows %d", i+1, len(m.Rows), req.PageRows)
		}
		if !final && req.PageRows > 0 && len(m.Rows) != int(req.PageRows) {
			e.t.Errorf("Scan non-final message %d has %d rows; want a full page of %d", i+1, len(m.Rows), req.PageRows)
		}
		for _, r := range m.Rows {
			if len(r.Cells) == 0 {
				e.t.Errorf("Scan returned row %q with no cells", r.Key)
			}
		}
		rows = append(rows, m.Rows...)
	}
	return rows, len(out), out[len(out)-1].TabletExhausted
}

func apiRowKeys(rows []*kvpb.Row) []string {
	out := []string{}
	for _, r := range rows {
		out = append(out, string(r.Key))
	}
	return out
}

func apiRowNames(prefix string, from, to, step int) []string {
	out := []string{}
	if step > 0 {
		for i := from; i < to; i += step {
			out = append(out, fmt.Sprintf("%s%02d", prefix, i))
		}
	} else {
		for i := from; i > to; i += step {
			out = append(out, fmt.Sprintf("%s%02d", prefix, i))
		}
	}
	return out
}

func apiMustTableNotFound(t *testing.T, err error, table uint64) {
	t.Helper()
	apiWantCode(t, err, codes.NotFound)
	d, ok := errs.As[*errorpb.TableNotFound](err)
	if !ok {
		t.Errorf("error %v carries no TableNotFound detail", err)
	} else if d.TableId != table {
		t.Errorf("TableNotFound.table_id = %d, want %d", d.TableId, table)
	}
}

func apiMustKeyNotInTablet(t *testing.T, err error) {
	t.Helper()
	apiWantCode(t, err, codes.FailedPrecondition)
	if _, ok := errs.As[*errorpb.KeyNotInTablet](err); !ok {
		t.Errorf("error %v carries no KeyNotInTablet detail", err)
	}
}

// MutateRow and Get are scripted: testdata/scripts/api_mutate_row.txt and
// api_get.txt (datadriven_test.go), as is ReadModifyWriteRow below.

// ==================== Scan ====================

// Scans both ways return the newest versions of rows whose columns hold
// many more (the reader seeks past the rest of each column: read.go,
// skipDoneColumn), and the row after them whole.
func TestAPIScanOverManyVersions(t *testing.T) {
	e := newAPIEnv(t, nil)
	batch := &kvpb.BatchMutateRequest{Header: apiHdr(apiTablet), TableId: apiTableID}
	for i := 0; i < 3; i++ {
		var muts []*kvpb.Mutation
		for ts := int64(1); ts <= 30; ts++ {
			muts = append(muts, apiSetTS("a", "x", ts, fmt.Sprintf("x%d", ts)), apiSetTS("c", "y", ts, fmt.Sprintf("y%d", ts)))
		}
		batch.Entries = append(batch.Entries, &kvpb.BatchMutateRequest_Entry{RowKey: []byte(fmt.Sprintf("row%02d", i)), Mutations: muts})
	}
	resp, err := e.cl.BatchMutate(e.ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range resp.Results {
		if r.Error != nil {
			t.Fatalf("row %d: %v", i, r.Error)
		}
	}
	for _, reverse := range []bool{false, true} {
		for _, versions := range []uint32{1, 2} {
			rows, _, _ := e.scan(&kvpb.ScanRequest{Reverse: reverse, Options: &kvpb.ReadOptions{MaxVersions: versions}})
			want := []string{"row00", "row01", "row02"}
			if reverse {
				want = []string{"row02", "row01", "row00"}
			}
			apiEq(t, fmt.Sprintf("rows (reverse %v)", reverse), apiRowKeys(rows), want)
			cells := []string{"a:x@30=x30", "c:y@30=y30"}
			if versions == 2 {
				cells = []string{"a:x@30=x30", "a:x@29=x29", "c:y@30=y30", "c:y@29=y29"}
			}
			for _, r := range rows {
				apiEq(t, fmt.Sprintf("cells of %s (reverse %v, %d versions)", r.Key, reverse, versions), apiCells(r), cells)
			}
		}
	}
}

func TestAPIScan(t *testing.T) {
	e := newAPIEnv(t, nil)
	// 50 rows; every row has a:x in 3 versions (one is garbage) and c:y;
	// even rows also have ab:e.
	batch := &kvpb.BatchMutateRequest{Header: apiHdr(apiTablet), TableId: apiTableID}
	for i := 0; i < 50; i++ {
		muts := []*kvpb.Mutation{
			apiSetTS("c", "y", 5, fmt.Sprintf("y%02d", i)),
			apiSetTS("a", "x", 1, "x1"), apiSetTS("a", "x", 3, "x3"), apiSetTS("a", "x", 2, "x2"),
		}
		if i%2 == 0 {
			muts = append(muts, apiSetTS("ab", "e", 7, "e"))
		}
		batch.Entries = append(batch.Entries, &kvpb.BatchMutateRequest_Entry{RowKey: []byte(fmt.Sprintf("row%02d", i)), Mutations: muts})
	}
	resp, err := e.cl.BatchMutate(e.ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range resp.Results {
		if r.Error != nil {
			t.Fatalf("row %d: %v", i, r.Error)
		}
	}
	wantCells := func(i int) []string {
		out := []string{"a:x@3=x3", "a:x@2=x2"}
		if i%2 == 0 {
			out = append(out, "ab:e@7=e")
		}
		return append(out, fmt.Sprintf("c:y@5=y%02d", i))
	}
	checkRows := func(t *testing.T, rows []*kvpb.Row) {
		t.Helper()
		for _, r := range rows {
			var i int
			if _, err := fmt.Sscanf(string(r.Key), "row%02d", &i); err != nil {
				t.Fatalf("unexpected row %q", r.Key)
			}
			apiEq(t, "cells of "+string(r.Key), apiCells(r), wantCells(i))
		}
	}
	all := &kvpb.ReadOptions{MaxVersions: 10}

	t.Run("ForwardWhole", func(t *testing.T) {
		rows, _, ex := e.scan(&kvpb.ScanRequest{Options: all})
		apiEq(t, "rows", apiRowKeys(rows), apiRowNames("row", 0, 50, 1))
		checkRows(t, rows)
		if !ex {
			t.Error("whole-table scan did not report tablet_exhausted")
		}
	})

	t.Run("ReverseWhole", func(t *testing.T) {
		rows, _, ex := e.scan(&kvpb.ScanRequest{Options: all, Reverse: true})
		apiEq(t, "rows", apiRowKeys(rows), apiRowNames("row", 49, -1, -1))
		checkRows(t, rows)
		if !ex {
			t.Error("reverse whole-table scan did not report tablet_exhausted")
		}
	})

	t.Run("StartEndRows", func(t *testing.T) {
		rows, _, ex := e.scan(&kvpb.ScanRequest{StartRow: []byte("row10"), EndRow: []byte("row20"), Options: all})
		apiEq(t, "forward [row10,row20)", apiRowKeys(rows), apiRowNames("row", 10, 20, 1))
		checkRows(t, rows)
		if !ex {
			t.Error("bounded scan did not report tablet_exhausted")
		}
		rows, _, ex = e.scan(&kvpb.ScanRequest{StartRow: []byte("row10"), EndRow: []byte("row20"), Reverse: true, Options: all})
		apiEq(t, "reverse [row10,row20)", apiRowKeys(rows), apiRowNames("row", 19, 9, -1))
		checkRows(t, rows)
		if !ex {
			t.Error("bounded reverse scan did not report tablet_exhausted")
		}
		rows, _, _ = e.scan(&kvpb.ScanRequest{StartRow: []byte("row4"), Options: all})
		apiEq(t, "forward [row4,∞)", apiRowKeys(rows), apiRowNames("row", 40, 50, 1))
		rows, _, _ = e.scan(&kvpb.ScanRequest{EndRow: []byte("row03"), Reverse: true})
		apiEq(t, "reverse [,row03)", apiRowKeys(rows), apiRowNames("row", 2, -1, -1))
		// Start between rows; end is exclusive even for a prefix-extended key.
		rows, _, _ = e.scan(&kvpb.ScanRequest{StartRow: []byte("row055"), EndRow: []byte("row08")})
		apiEq(t, "forward [row055,row08)", apiRowKeys(rows), apiRowNames("row", 6, 8, 1))
		rows, _, _ = e.scan(&kvpb.ScanRequest{StartRow: []byte("row05"), EndRow: []byte("row05\x00")})
		apiEq(t, "single row", apiRowKeys(rows), []string{"row05"})
		rows, _, ex = e.scan(&kvpb.ScanRequest{StartRow: []byte("zzz")})
		apiEq(t, "past the last row", apiRowKeys(rows), []string{})
		if !ex {
			t.Error("empty scan did not report tablet_exhausted")
		}
	})

	t.Run("Limit", func(t *testing.T) {
		rows, _, ex := e.scan(&kvpb.ScanRequest{Limit: 7, Options: all})
		apiEq(t, "forward limit 7", apiRowKeys(rows), apiRowNames("row", 0, 7, 1))
		checkRows(t, rows)
		if ex {
			t.Error("scan stopped by its limit reported tablet_exhausted")
		}
		rows, _, ex = e.scan(&kvpb.ScanRequest{Limit: 7, Reverse: true, Options: all})
		apiEq(t, "reverse limit 7", apiRowKeys(rows), apiRowNames("row", 49, 42, -1))
		checkRows(t, rows)
		if ex {
			t.Error("reverse scan stopped by its limit reported tablet_exhausted")
		}
		rows, _, ex = e.scan(&kvpb.ScanRequest{Limit: 100})
		if len(rows) != 50 || !ex {
			t.Errorf("limit 100: %d rows, exhausted=%v", len(rows), ex)
		}
		rows, _, ex = e.scan(&kvpb.ScanRequest{StartRow: []byte("row45"), Limit: 10, Reverse: false})
		if len(rows) != 5 || !ex {
			t.Errorf("limit beyond the rows left: %d rows, exhausted=%v", len(rows), ex)
		}
		// The limit counts returned rows, not rows skipped by the filter.
		rows, _, _ = e.scan(&kvpb.ScanRequest{Limit: 5, Options: &kvpb.ReadOptions{Families: []string{"ab"}}})
		apiEq(t, "filtered limit 5", apiRowKeys(rows), apiRowNames("row", 0, 10, 2))
		rows, _, _ = e.scan(&kvpb.ScanRequest{Limit: 3, Reverse: true, Options: &kvpb.ReadOptions{Families: []string{"ab"}}})
		apiEq(t, "filtered reverse limit 3", apiRowKeys(rows), apiRowNames("row", 48, 42, -2))
	})

	t.Run("Pages", func(t *testing.T) {
		rows, msgs, ex := e.scan(&kvpb.ScanRequest{PageRows: 3, Options: all})
		apiEq(t, "paged rows", apiRowKeys(rows), apiRowNames("row", 0, 50, 1))
		checkRows(t, rows)
		if msgs < 17 || !ex {
			t.Errorf("page_rows 3 over 50 rows: %d messages, exhausted=%v", msgs, ex)
		}
		rows, msgs, ex = e.scan(&kvpb.ScanRequest{PageRows: 3, Reverse: true, Options: all})
		apiEq(t, "reverse paged rows", apiRowKeys(rows), apiRowNames("row", 49, -1, -1))
		checkRows(t, rows)
		if msgs < 17 || !ex {
			t.Errorf("reverse page_rows 3 over 50 rows: %d messages, exhausted=%v", msgs, ex)
		}
		rows, msgs, ex = e.scan(&kvpb.ScanRequest{PageRows: 3, Limit: 10})
		apiEq(t, "paged limit 10", apiRowKeys(rows), apiRowNames("row", 0, 10, 1))
		if msgs < 4 || ex {
			t.Errorf("page_rows 3 limit 10: %d messages, exhausted=%v", msgs, ex)
		}
		rows, _, ex = e.scan(&kvpb.ScanRequest{PageRows: 3, Limit: 10, Reverse: true, StartRow: []byte("row20"), EndRow: []byte("row40")})
		apiEq(t, "reverse paged limit 10", apiRowKeys(rows), apiRowNames("row", 39, 29, -1))
		if ex {
			t.Error("reverse paged scan stopped by its limit reported tablet_exhausted")
		}
	})

	t.Run("Filters", func(t *testing.T) {
		rows, _, _ := e.scan(&kvpb.ScanRequest{Options: &kvpb.ReadOptions{Families: []string{"ab"}}})
		apiEq(t, "rows with family ab", apiRowKeys(rows), apiRowNames("row", 0, 50, 2))
		for _, r := range rows {
			apiEq(t, "cells of "+string(r.Key), apiCells(r), []string{"ab:e@7=e"})
		}
		rows, _, _ = e.scan(&kvpb.ScanRequest{EndRow: []byte("row02"), Options: &kvpb.ReadOptions{TimeRange: &kvpb.TimeRange{StartTs: 1, EndTs: 3}, MaxVersions: 10}})
		for _, r := range rows {
			apiEq(t, "time range [1,3) of "+string(r.Key), apiCells(r), []string{"a:x@2=x2"})
		}
		apiEq(t, "time range rows", apiRowKeys(rows), []string{"row00", "row01"})
		rows, _, _ = e.scan(&kvpb.ScanRequest{EndRow: []byte("row02"), Reverse: true})
		apiEq(t, "newest only, reverse", [][]string{apiCells(rows[0]), apiCells(rows[1])},
			[][]string{{"a:x@3=x3", "c:y@5=y01"}, {"a:x@3=x3", "ab:e@7=e", "c:y@5=y00"}})
	})

	t.Run("Errors", func(t *testing.T) {
		_, err := e.scanErr(&kvpb.ScanRequest{Options: &kvpb.ReadOptions{Families: []string{"nope"}}})
		apiWantCode(t, err, codes.InvalidArgument, "nope")
		_, err = e.scanErr(&kvpb.ScanRequest{TableId: 999})
		apiMustTableNotFound(t, err, 999)
		_, err = e.scanErr(&kvpb.ScanRequest{Options: &kvpb.ReadOptions{TimeRange: &kvpb.TimeRange{StartTs: 5, EndTs: 5}}})
		apiWantCode(t, err, codes.InvalidArgument)
	})

	t.Run("DeletedRowsSkipped", func(t *testing.T) {
		e.mutate("row25", apiDelRow())
		e.mutate("row26", apiDelFam("a"), apiDelFam("ab"), apiDelFam("c"))
		rows, _, _ := e.scan(&kvpb.ScanRequest{StartRow: []byte("row24"), EndRow: []byte("row28")})
		apiEq(t, "rows", apiRowKeys(rows), []string{"row24", "row27"})
		rows, _, _ = e.scan(&kvpb.ScanRequest{StartRow: []byte("row24"), EndRow: []byte("row28"), Reverse: true})
		apiEq(t, "reverse rows", apiRowKeys(rows), []string{"row27", "row24"})
	})

	t.Run("ClippedToTablet", func(t *testing.T) {
		sub := func(req *kvpb.ScanRequest) *kvpb.ScanRequest {
			req.Header, req.TableId = apiHdr(apiSubTablet), apiSubTableID
			return req
		}
		for i := 10; i < 20; i++ {
			_, err := e.cl.MutateRow(e.ctx, &kvpb.MutateRowRequest{Header: apiHdr(apiSubTablet), TableId: apiSubTableID, RowKey: []byte(fmt.Sprintf("r%02d", i)),
				Mutations: []*kvpb.Mutation{apiSetTS("c", "v", 1, fmt.Sprint(i))}})
			if err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct {
			name      string
			req       *kvpb.ScanRequest
			want      []string
			exhausted bool
		}{
			{"whole table", &kvpb.ScanRequest{}, apiRowNames("r", 10, 20, 1), true},
			{"whole table reverse", &kvpb.ScanRequest{Reverse: true}, apiRowNames("r", 19, 9, -1), true},
			{"whole table paged", &kvpb.ScanRequest{PageRows: 3}, apiRowNames("r", 10, 20, 1), true},
			{"whole table reverse paged", &kvpb.ScanRequest{PageRows: 3, Reverse: true}, apiRowNames("r", 19, 9, -1), true},
			{"start inside", &kvpb.ScanRequest{StartRow: []byte("r15")}, apiRowNames("r", 15, 20, 1), true},
			{"start inside reverse", &kvpb.ScanRequest{StartRow: []byte("r15"), Reverse: true}, apiRowNames("r", 19, 14, -1), true},
			{"end inside", &kvpb.ScanRequest{EndRow: []byte("r13")}, apiRowNames("r", 10, 13, 1), true},
			{"end inside reverse", &kvpb.ScanRequest{EndRow: []byte("r13"), Reverse: true}, apiRowNames("r", 12, 9, -1), true},
			{"start before", &kvpb.ScanRequest{StartRow: []byte("r05"), EndRow: []byte("r12")}, apiRowNames("r", 10, 12, 1), true},
			{"end after", &kvpb.ScanRequest{StartRow: []byte("r18"), EndRow: []byte("r99")}, apiRowNames("r", 18, 20, 1), true},
			{"end after reverse", &kvpb.ScanRequest{StartRow: []byte("r18"), EndRow: []byte("r99"), Reverse: true}, apiRowNames("r", 19, 17, -1), true},
			{"limit", &kvpb.ScanRequest{Limit: 3, PageRows: 2}, apiRowNames("r", 10, 13, 1), false},
			{"limit reverse", &kvpb.ScanRequest{Limit: 3, PageRows: 2, Reverse: true}, apiRowNames("r", 19, 16, -1), false},
			{"limit beyond", &kvpb.ScanRequest{Limit: 30, PageRows: 4}, apiRowNames("r", 10, 20, 1), true},
		} {
			rows, _, ex := e.scan(sub(tc.req))
			apiEq(t, tc.name, apiRowKeys(rows), tc.want)
			if ex != tc.exhausted {
				t.Errorf("%s: tablet_exhausted=%v, want %v", tc.name, ex, tc.exhausted)
			}
		}
		// A scan whose near end lies outside the tablet was misrouted.
		_, err := e.scanErr(sub(&kvpb.ScanRequest{StartRow: []byte("r30")}))
		apiMustKeyNotInTablet(t, err)
		_, err = e.scanErr(sub(&kvpb.ScanRequest{EndRow: []byte("r05"), Reverse: true}))
		apiMustKeyNotInTablet(t, err)
	})

	t.Run("InvertedRange", func(t *testing.T) {
		// start_row after end_row: no rows (or an InvalidArgument), never
		// a crash or rows outside the range.
		for _, rev := range []bool{false, true} {
			out, err := e.scanErr(&kvpb.ScanRequest{StartRow: []byte("row30"), EndRow: []byte("row20"), Reverse: rev})
			if err != nil {
				apiWantCode(t, err, codes.InvalidArgument)
				continue
			}
			var n int
			for _, m := range out {
				n += len(m.Rows)
			}
			if n != 0 {
				t.Errorf("inverted range (reverse=%v) returned %d rows", rev, n)
			}
		}
		// Reverse scan starting past the sub-tablet's end.
		out, err := e.scanErr(&kvpb.ScanRequest{Header: apiHdr(apiSubTablet), TableId: apiSubTableID, StartRow: []byte("r30"), Reverse: true})
		if err == nil {
			var n int
			for _, m := range out {
				n += len(m.Rows)
			}
			if n != 0 {
				t.Errorf("reverse scan from r30 returned %d rows", n)
			}
		} else if status.Code(err) != codes.FailedPrecondition && status.Code(err) != codes.InvalidArgument {
			t.Errorf("reverse scan from past the tablet: %v", err)
		}
	})
}

// ==================== CheckAndMutateRow ====================

func TestAPICheckAndMutate(t *testing.T) {
	e := newAPIEnv(t, nil)
	cam := func(row string, cond *kvpb.Condition, tm, fm []*kvpb.Mutation) (*kvpb.CheckAndMutateRowResponse, error) {
		return e.cl.CheckAndMutateRow(e.ctx, &kvpb.CheckAndMutateRowRequest{Header: apiHdr(apiTablet), TableId: apiTableID, RowKey: []byte(row), Condition: cond, TrueMutations: tm, FalseMutations: fm})
	}
	cond := func(fam, q string, op kvpb.Condition_Op, v string) *kvpb.Condition {
		return &kvpb.Condition{Family: fam, Qualifier: []byte(q), Op: op, Value: []byte(v)}
	}
	type opCase struct {
		op    kvpb.Condition_Op
		value string
		want  bool
	}
	const (
		EX  = kvpb.Condition_EXISTS
		NEX = kvpb.Condition_NOT_EXISTS
		EQ  = kvpb.Condition_EQUAL
		NE  = kvpb.Condition_NOT_EQUAL
		LT  = kvpb.Condition_LESS
		LE  = kvpb.Condition_LESS_OR_EQUAL
		GT  = kvpb.Condition_GREATER
		GE  = kvpb.Condition_GREATER_OR_EQUAL
	)
	// The cell's newest version is "m"; an older version "z" must be ignored.
	present := []opCase{
		{EX, "", true}, {NEX, "", false},
		{EQ, "m", true}, {EQ, "z", false}, {EQ, "", false},
		{NE, "m", false}, {NE, "z", true},
		{LT, "n", true}, {LT, "mm", true}, {LT, "m", false}, {LT, "l", false}, {LT, "z", true},
		{LE, "m", true}, {LE, "n", true}, {LE, "l", false},
		{GT, "l", true}, {GT, "", true}, {GT, "m", false}, {GT, "n", false},
		{GE, "m", true}, {GE, "l", true}, {GE, "n", false}, {GE, "mm", false},
	}
	missing := []opCase{
		{EX, "", false}, {NEX, "", true},
		{EQ, "", false}, {EQ, "m", false}, {NE, "m", false}, {NE, "", false},
		{LT, "m", false}, {LE, "m", false}, {LE, "", false}, {GT, "", false}, {GT, "m", false}, {GE, "", false},
	}
	run := func(t *testing.T, kind string, cases []opCase, setup func(row string)) {
		for i, tc := range cases {
			row := fmt.Sprintf("%s-%d", kind, i)
			setup(row)
			before := apiCells(e.get(row, apiAllVersions()))
			resp, err := cam(row, cond("c", "v", tc.op, tc.value),
				[]*kvpb.Mutation{apiSetC("c", "branch", "true")},
				[]*kvpb.Mutation{apiSetC("c", "branch", "false")})
			if err != nil {
				t.Fatalf("%s %v %q: %v", kind, tc.op, tc.value, err)
			}
			if resp.PredicateMatched != tc.want {
				t.Errorf("%s: cell %v %q: predicate_matched=%v, want %v", kind, tc.op, tc.value, resp.PredicateMatched, tc.want)
			}
			branch := e.get(row, &kvpb.ReadOptions{Columns: []*kvpb.Column{{Family: "c", Qualifier: []byte("branch")}}, MaxVersions: 10})
			apiEq(t, fmt.Sprintf("%s %v %q branch", kind, tc.op, tc.value), apiCells(branch), []string{fmt.Sprintf("c:branch@%d=%v", resp.Timestamp, tc.want)})
			var rest []string
			for _, c := range apiCells(e.get(row, apiAllVersions())) {
				if !strings.HasPrefix(c, "c:branch@") {
					rest = append(rest, c)
				}
			}
			apiEq(t, fmt.Sprintf("%s %v %q other cells", kind, tc.op, tc.value), rest, before)
		}
	}
	t.Run("PresentCell", func(t *testing.T) {
		run(t, "present", present, func(row string) {
			e.mutate(row, apiSetTS("c", "v", 100, "z"), apiSetTS("c", "v", 200, "m"))
		})
	})
	t.Run("MissingCell", func(t *testing.T) {
		// Other columns of the row and family exist, but not c:v.
		run(t, "missing", missing, func(row string) {
			e.mutate(row, apiSetTS("c", "v2", 100, "m"), apiSetTS("c", "u", 100, "m"), apiSetTS("ab", "v", 100, "m"))
		})
	})
	t.Run("MissingRow", func(t *testing.T) {
		run(t, "norow", missing, func(string) {})
	})
	t.Run("DeletedCellIsMissing", func(t *testing.T) {
		run(t, "deleted", missing, func(row string) {
			e.mutate(row, apiSetTS("c", "v", 100, "m"))
			e.mutate(row, apiDelCol("c", "v", nil), apiSetTS("c", "w", 1, "w"))
		})
	})
	t.Run("GarbageVersionsAreInvisible", func(t *testing.T) {
		// The newest version of b:v is older than b's max age: reads hide
		// it, so the condition must treat the cell as missing, or a client
		// that read "no cell" and then conditions on NOT_EXISTS would fail.
		old := time.Now().UnixMicro() - 2*int64(time.Hour/time.Microsecond)
		e.mutate("cam-expired", apiSetTS("b", "v", old, "m"))
		if r := e.get("cam-expired", apiAllVersions()); r != nil {
			t.Fatalf("expired cell visible: %v", apiCells(r))
		}
		for _, tc := range []opCase{{EX, "", false}, {NEX, "", true}, {EQ, "m", false}} {
			resp, err := cam("cam-expired", cond("b", "v", tc.op, tc.value), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.PredicateMatched != tc.want {
				t.Errorf("expired cell %v %q: predicate_matched=%v, want %v (reads do not show the cell)", tc.op, tc.value, resp.PredicateMatched, tc.want)
			}
		}
	})

	t.Run("BranchMutations", func(t *testing.T) {
		row := "cam-branch"
		e.mutate(row, apiSetTS("c", "v", 10, "1"), apiSetTS("a", "x", 10, "ax"), apiSetTS("ab", "y", 10, "aby"))
		// True branch: several mutations, applied in order, atomically.
		resp, err := cam(row, cond("c", "v", EQ, "1"),
			[]*kvpb.Mutation{apiDelFam("a"), apiSetC("c", "v", "2"), apiSetTS("c", "w", 5, "w5"), apiSetC("a", "x", "new")},
			[]*kvpb.Mutation{apiDelRow()})
		if err != nil || !resp.PredicateMatched {
			t.Fatalf("resp %v err %v", resp, err)
		}
		ts := resp.Timestamp
		apiEq(t, "after true branch", apiCells(e.get(row, apiAllVersions())), []string{
			fmt.Sprintf("a:x@%d=new", ts), "ab:y@10=aby", fmt.Sprintf("c:v@%d=2", ts), "c:v@10=1", "c:w@5=w5",
		})
		// False branch: DeleteFromRow.
		resp, err = cam(row, cond("c", "v", EQ, "1"), []*kvpb.Mutation{apiSetC("c", "never", "x")}, []*kvpb.Mutation{apiDelRow()})
		if err != nil || resp.PredicateMatched {
			t.Fatalf("resp %v err %v", resp, err)
		}
		if r := e.get(row, apiAllVersions()); r != nil {
			t.Errorf("false branch DeleteFromRow left %v", apiCells(r))
		}
		// An empty branch is a no-op.
		e.mutate(row, apiSetTS("c", "v", 10, "1"))
		resp, err = cam(row, cond("c", "v", EX, ""), nil, []*kvpb.Mutation{apiDelRow()})
		if err != nil || !resp.PredicateMatched {
			t.Fatalf("resp %v err %v", resp, err)
		}
		resp, err = cam(row, cond("c", "v", NEX, ""), []*kvpb.Mutation{apiDelRow()}, nil)
		if err != nil || resp.PredicateMatched {
			t.Fatalf("resp %v err %v", resp, err)
		}
		apiEq(t, "after empty branches", apiCells(e.get(row, apiAllVersions())), []string{"c:v@10=1"})
		// The condition sees the effects of earlier writes (the branch wrote
		// c:v=2 at a newer timestamp).
		e.mutate(row, apiSetC("c", "v", "2"))
		resp, err = cam(row, cond("c", "v", EQ, "2"), []*kvpb.Mutation{apiSetC("c", "seen", "yes")}, nil)
		if err != nil || !resp.PredicateMatched {
			t.Fatalf("condition did not see the newest write: %v %v", resp, err)
		}
	})

	t.Run("Errors", func(t *testing.T) {
		row := "cam-err"
		e.mutate(row, apiSetTS("c", "v", 10, "1"))
		before := apiCells(e.get(row, apiAllVersions()))
		_, err := cam(row, nil, []*kvpb.Mutation{apiDelRow()}, nil)
		apiWantCode(t, err, codes.InvalidArgument, "condition")
		_, err = cam(row, cond("nope", "v", EX, ""), []*kvpb.Mutation{apiDelRow()}, nil)
		apiWantCode(t, err, codes.InvalidArgument, "nope")
		// An invalid mutation in either branch rejects the whole request.
		_, err = cam(row, cond("c", "v", EX, ""), []*kvpb.Mutation{apiDelRow(), apiSetC("nope", "q", "v")}, nil)
		apiWantCode(t, err, codes.InvalidArgument, "nope")
		_, err = cam(row, cond("c", "v", EX, ""), []*kvpb.Mutation{apiDelRow()}, []*kvpb.Mutation{apiSetC("nope", "q", "v")})
		apiWantCode(t, err, codes.InvalidArgument, "nope")
		_, err = cam(row, cond("c", "v", EX, ""), []*kvpb.Mutation{apiDelRow(), {}}, nil)
		apiWantCode(t, err, codes.InvalidArgument)
		_, err = cam("", cond("c", "v", EX, ""), []*kvpb.Mutation{apiDelRow()}, nil)
		apiWantCode(t, err, codes.InvalidArgument)
		_, err = e.cl.CheckAndMutateRow(e.ctx, &kvpb.CheckAndMutateRowRequest{Header: apiHdr(apiTablet), TableId: 999, RowKey: []byte(row), Condition: cond("c", "v", EX, "")})
		apiMustTableNotFound(t, err, 999)
		_, err = e.cl.CheckAndMutateRow(e.ctx, &kvpb.CheckAndMutateRowRequest{Header: apiHdr(apiSubTablet), TableId: apiSubTableID, RowKey: []byte("r30"), Condition: cond("c", "v", EX, ""), TrueMutations: []*kvpb.Mutation{apiDelRow()}})
		apiMustKeyNotInTablet(t, err)
		apiEq(t, "row after rejected requests", apiCells(e.get(row, apiAllVersions())), before)
	})
}

// ReadModifyWriteRow is scripted: testdata/scripts/api_read_modify_write.txt.

// ==================== BatchMutate ====================

func TestAPIBatchMutate(t *testing.T) {
	e := newAPIEnv(t, func(o *store.Options) { o.Limits.MaxValueBytes = 1024 })
	entry := func(row string, muts ...*kvpb.Mutation) *kvpb.BatchMutateRequest_Entry {
		return &kvpb.BatchMutateRequest_Entry{RowKey: []byte(row), Mutations: muts}
	}
	batch := func(tablet, table uint64, entries ...*kvpb.BatchMutateRequest_Entry) (*kvpb.BatchMutateResponse, error) {
		return e.cl.BatchMutate(e.ctx, &kvpb.BatchMutateRequest{Header: apiHdr(tablet), TableId: table, Entries: entries})
	}

	t.Run("MixedValidAndInvalid", func(t *testing.T) {
		e.mutate("b-del", apiSetTS("c", "q", 1, "old"))
		e.mutate("b-unk", apiSetTS("c", "q", 1, "keep"))
		e.mutate("b-big", apiSetTS("c", "q", 1, "keep"))
		big := strings.Repeat("v", 1025)
		entries := []*kvpb.BatchMutateRequest_Entry{
			entry("b-ok1", apiSetC("c", "q", "1"), apiSetC("a", "x", "1")),
			entry("b-unk", apiDelRow(), apiSetC("nope", "q", "v")),
			entry("", apiSetC("c", "q", "v")),
			entry("b-ok2", apiSetTS("c", "q", 5, "2")),
			entry("b-big", apiDelRow(), apiSetC("c", "q", big)),
			entry("b-del", apiDelRow(), apiSetC("c", "q", "new")),
			entry("b-none"),
			entry("b-nil", apiSetC("c", "q", "v"), &kvpb.Mutation{}),
			entry("b-ok3", apiSetC("c", "q", "3")),
		}
		wantErr := []codes.Code{codes.OK, codes.InvalidArgument, codes.InvalidArgument, codes.OK, codes.InvalidArgument, codes.OK, codes.InvalidArgument, codes.InvalidArgument, codes.OK}
		wantMsg := []string{"", "nope", "empty", "", "limit is 1024", "", "no mutations", "", ""}
		resp, err := batch(apiTablet, apiTableID, entries...)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Results) != len(entries) {
			t.Fatalf("%d results for %d entries", len(resp.Results), len(entries))
		}
		var ts int64
		for i, r := range resp.Results {
			if r == nil {
				t.Errorf("result %d is nil", i)
				continue
			}
			if wantErr[i] == codes.OK {
				if r.Error != nil {
					t.Errorf("entry %d (%q): unexpected error %v", i, entries[i].RowKey, r.Error)
				}
				if r.Timestamp <= 0 {
					t.Errorf("entry %d: timestamp %d", i, r.Timestamp)
				}
				ts = r.Timestamp
				continue
			}
			if r.Error == nil {
				t.Errorf("entry %d (%q): no error, want %v", i, entries[i].RowKey, wantErr[i])
				continue
			}
			if codes.Code(r.Error.Code) != wantErr[i] || !strings.Contains(r.Error.Message, wantMsg[i]) {
				t.Errorf("entry %d (%q): error %v %q, want %v mentioning %q", i, entries[i].RowKey, codes.Code(r.Error.Code), r.Error.Message, wantErr[i], wantMsg[i])
			}
			if r.Timestamp != 0 {
				t.Errorf("failed entry %d has timestamp %d", i, r.Timestamp)
			}
		}
		apiEq(t, "b-ok1", apiCells(e.get("b-ok1", apiAllVersions())), []string{fmt.Sprintf("a:x@%d=1", ts), fmt.Sprintf("c:q@%d=1", ts)})
		apiEq(t, "b-ok2", apiCells(e.get("b-ok2", apiAllVersions())), []string{"c:q@5=2"})
		apiEq(t, "b-ok3", apiCells(e.get("b-ok3", apiAllVersions())), []string{fmt.Sprintf("c:q@%d=3", ts)})
		apiEq(t, "b-del", apiCells(e.get("b-del", apiAllVersions())), []string{fmt.Sprintf("c:q@%d=new", ts)})
		apiEq(t, "b-unk untouched", apiCells(e.get("b-unk", apiAllVersions())), []string{"c:q@1=keep"})
		apiEq(t, "b-big untouched", apiCells(e.get("b-big", apiAllVersions())), []string{"c:q@1=keep"})
		for _, r := range []string{"b-none", "b-nil"} {
			if got := e.get(r, apiAllVersions()); got != nil {
				t.Errorf("invalid row %q applied: %v", r, apiCells(got))
			}
		}
	})

	t.Run("AllInvalid", func(t *testing.T) {
		resp, err := batch(apiTablet, apiTableID, entry("b-x", apiSetC("nope", "q", "v")), entry("b-y"))
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Results) != 2 || resp.Results[0].Error == nil || resp.Results[1].Error == nil {
			t.Fatalf("results %v", resp.Results)
		}
		for _, r := range []string{"b-x", "b-y"} {
			if got := e.get(r, nil); got != nil {
				t.Errorf("row %q applied: %v", r, apiCells(got))
			}
		}
	})

	t.Run("RowsOutsideTablet", func(t *testing.T) {
		resp, err := batch(apiSubTablet, apiSubTableID, entry("r30", apiSetC("c", "q", "v")), entry("r11", apiSetC("c", "q", "in")), entry("r05", apiSetC("c", "q", "v")))
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Results) != 3 {
			t.Fatalf("results %v", resp.Results)
		}
		for _, i := range []int{0, 2} {
			r := resp.Results[i]
			if r.Error == nil || r.Error.GetKeyNotInTablet() == nil || codes.Code(r.Error.Code) != codes.FailedPrecondition {
				t.Errorf("entry %d: %v, want KeyNotInTablet", i, r.Error)
			}
		}
		if resp.Results[1].Error != nil {
			t.Errorf("entry 1: %v", resp.Results[1].Error)
		}
		g, err := e.cl.Get(e.ctx, &kvpb.GetRequest{Header: apiHdr(apiSubTablet), TableId: apiSubTableID, RowKey: []byte("r11")})
		if err != nil || g.Row == nil || apiVals(g.Row)[0] != "c:q=in" {
			t.Errorf("r11: %v %v", g, err)
		}
	})

	t.Run("SameRowTwice", func(t *testing.T) {
		resp, err := batch(apiTablet, apiTableID,
			entry("b-twice", apiSetC("c", "q", "first"), apiSetC("c", "p", "p")),
			entry("b-twice", apiSetC("c", "q", "second")),
			entry("b-twice", apiSetC("nope", "q", "third")))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Results[0].Error != nil || resp.Results[1].Error != nil || resp.Results[2].Error == nil {
			t.Fatalf("results %v", resp.Results)
		}
		apiEq(t, "b-twice", apiVals(e.get("b-twice", apiAllVersions())), []string{"c:p=p", "c:q=second"})
	})

	t.Run("Errors", func(t *testing.T) {
		_, err := batch(apiTablet, apiTableID)
		apiWantCode(t, err, codes.InvalidArgument, "no rows")
		_, err = batch(apiTablet, 999, entry("b-z", apiSetC("c", "q", "v")))
		apiMustTableNotFound(t, err, 999)
		if got := e.get("b-z", nil); got != nil {
			t.Errorf("row applied: %v", apiCells(got))
		}
	})
}
