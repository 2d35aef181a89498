package placementdriver

import (
	"encoding/hex"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/internal/authz"
	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/placementdriver/console"
	"github.com/shaledb/shale/placementdriver/ctl"
	"github.com/shaledb/shale/placementdriver/keyviz"
	"github.com/shaledb/shale/placementdriver/schedule"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/pdpb"
)

// maxRecentOperators bounds the ended operators the console lists.
const maxRecentOperators = 200

// consoleState is what the web console keeps beyond the cluster view: the
// key heat map's history and the operators that ended recently. It lives
// on the Server (not the leader's cluster), so a member that loses and
// regains leadership keeps its history; its zero value is ready to use.
type consoleState struct {
	once   sync.Once
	keyviz *keyviz.Recorder

	mu     sync.Mutex
	recent []ctl.EndedOperator // oldest first, at most maxRecentOperators
}

func (cs *consoleState) recorder() *keyviz.Recorder {
	cs.once.Do(func() {
		r, err := keyviz.New(keyviz.Options{})
		if err != nil {
			panic(err) // the defaults are valid
		}
		cs.keyviz = r
	})
	return cs.keyviz
}

// observe feeds one tablet report to the heat map.
func (cs *consoleState) observe(r *pdpb.TabletReport, now time.Time) {
	st := r.GetStats()
	cs.recorder().Observe(r.GetTablet().GetTabletId(), r.GetTablet().GetStartKey(), r.GetTablet().GetEndKey(), keyviz.Rates{
		keyviz.ReadBytes: st.GetReadBytesPerSec(), keyviz.WriteBytes: st.GetWriteBytesPerSec(),
		keyviz.ReadOps: st.GetReadQps(), keyviz.WriteOps: st.GetWriteQps(),
	}, now)
}

// operatorEnded remembers an operator that finished, timed out or was
// cancelled.
func (cs *consoleState) operatorEnded(op *schedule.Operator) {
	e := ctl.EndedOperator{Operator: ctl.OperatorFromPB(operatorInfo(op)), Status: op.Status().String(), EndedUnixMs: op.Ended().UnixMilli()}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if len(cs.recent) >= maxRecentOperators {
		cs.recent = append(cs.recent[:0], cs.recent[1:]...)
	}
	cs.recent = append(cs.recent, e)
}

func (cs *consoleState) recentOperators() []ctl.EndedOperator {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	out := make([]ctl.EndedOperator, len(cs.recent))
	for i, e := range cs.recent {
		out[len(out)-1-i] = e // newest first
	}
	return out
}

// registerConsole serves the web console's pages under /console/ and the
// JSON they read under /console/api/ (docs/console.md).
func (s *Server) registerConsole(mux authz.Registrar) {
	mux.Handle("GET /console/", http.StripPrefix("/console/", console.Handler()))
	mux.Handle("GET /console", http.RedirectHandler("/console/", http.StatusMovedPermanently))
	const p = "/console/api/"
	mux.HandleFunc("GET "+p+"overview", s.consoleOverview)
	mux.HandleFunc("GET "+p+"tables", s.httpTables)
	mux.HandleFunc("GET "+p+"tablets", s.consoleTablets)
	mux.HandleFunc("GET "+p+"operators", s.consoleOperators)
	mux.HandleFunc("GET "+p+"hot", s.consoleHot)
	mux.HandleFunc("GET "+p+"config", s.httpGetConfig)
	mux.HandleFunc("GET "+p+"heatmap", s.consoleHeatmap)
}

// consoleStore is a store with the load of the tablets it leads.
type consoleStore struct {
	ctl.Store
	ReadQPS          float64 `json:"read_qps"`
	WriteQPS         float64 `json:"write_qps"`
	ReadBytesPerSec  float64 `json:"read_bytes_per_sec"`
	WriteBytesPerSec float64 `json:"write_bytes_per_sec"`
}

// consoleOverview is the answer of GET /console/api/overview.
type consoleOverview struct {
	Member      string         `json:"member"`
	Leader      string         `json:"leader"`
	ClusterID   uint64         `json:"cluster_id"`
	Stores      []consoleStore `json:"stores"`
	TabletCount int            `json:"tablet_count"`
	TableCount  int            `json:"table_count"`
	// StoresByState counts the stores per state (Up, Down, ...).
	StoresByState map[string]int `json:"stores_by_state"`
}

func (s *Server) consoleOverview(w http.ResponseWriter, r *http.Request) {
	c := s.leaderOr503(w)
	if c == nil {
		return
	}
	stores, counts := c.storesView()
	tablets := ctl.TabletsFromPB(c.tabletsView(nil, nil, 0))
	load := map[uint64]*consoleStore{}
	_, leaderName, clusterID := s.leaderView()
	out := consoleOverview{Member: s.opts.Name, Leader: leaderName, ClusterID: clusterID,
		TabletCount: len(tablets), TableCount: len(c.tablesView()), StoresByState: map[string]int{}}
	for _, st := range ctl.StoresFromPB(stores, counts) {
		out.Stores = append(out.Stores, consoleStore{Store: st})
		out.StoresByState[st.State]++
	}
	for i := range out.Stores {
		load[out.Stores[i].ID] = &out.Stores[i]
	}
	for _, t := range tablets {
		if st := load[t.LeaderStoreID]; st != nil {
			st.ReadQPS += t.ReadQPS
			st.WriteQPS += t.WriteQPS
			st.ReadBytesPerSec += t.ReadBytesPerSec
			st.WriteBytesPerSec += t.WriteBytesPerSec
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// consoleTablet is a tablet with its boundaries as table and row.
type consoleTablet struct {
	ctl.Tablet
	StartTable    string `json:"start_table"`
	StartRow      string `json:"start_row"`
	EndTable      string `json:"end_table"`
	EndRow        string `json:"end_row"`
	LeaderAddress string `json:"leader_address"`
}

// consoleTablets answers GET /console/api/tablets: every tablet, the
// tablets of ?table=NAME, or with &row=ROW the one holding that row.
func (s *Server) consoleTablets(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, ok := queryLimit(w, q.Get("limit"), httpDefaultTabletLimit)
	if !ok {
		return
	}
	c := s.leaderOr503(w)
	if c == nil {
		return
	}
	var start, end []byte
	if name := q.Get("table"); name != "" {
		id, ok := tableID(c.tablesView(), name)
		if !ok {
			writeError(w, status.Errorf(codes.NotFound, "table %q not found", name))
			return
		}
		start, end = keys.TablePrefix(id), keys.TablePrefix(id+1)
		if q.Has("row") {
			start = keys.RowKey(id, []byte(q.Get("row")))
			end, limit = nil, 1
		}
	} else if q.Has("row") {
		writeError(w, status.Error(codes.InvalidArgument, "row needs a table: ?table=NAME&row=ROW"))
		return
	}
	writeJSON(w, http.StatusOK, s.consoleTabletViews(c, c.tabletsView(start, end, limit)))
}

func (s *Server) consoleTabletViews(c *cluster, found []*pdpb.TabletInfo) []consoleTablet {
	names := tableNames(c.tablesView())
	stores, _ := c.storesView()
	addr := map[uint64]string{}
	for _, st := range stores {
		addr[st.GetStore().GetStoreId()] = st.GetStore().GetAddress()
	}
	out := make([]consoleTablet, 0, len(found))
	for _, t := range found {
		v := consoleTablet{Tablet: ctl.TabletFromPB(t), LeaderAddress: addr[t.GetLeaderStoreId()]}
		v.StartTable, v.StartRow = ctl.KeyLabel(t.GetTablet().GetStartKey(), names)
		v.EndTable, v.EndRow = "(max)", ""
		if end := t.GetTablet().GetEndKey(); len(end) > 0 {
			v.EndTable, v.EndRow = ctl.KeyLabel(end, names)
		}
		out = append(out, v)
	}
	return out
}

// consoleOperators is the answer of GET /console/api/operators.
type consoleOperators struct {
	Running []ctl.Operator      `json:"running"`
	Recent  []ctl.EndedOperator `json:"recent"`
}

func (s *Server) consoleOperators(w http.ResponseWriter, r *http.Request) {
	c := s.leaderOr503(w)
	if c == nil {
		return
	}
	writeJSON(w, http.StatusOK, consoleOperators{
		Running: ctl.OperatorsFromPB(c.listOperators()),
		Recent:  s.cons.recentOperators(),
	})
}

// consoleHot answers GET /console/api/hot?kind=read|write&by=bytes|ops&limit=N.
func (s *Server) consoleHot(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	kind, by := q.Get("kind"), q.Get("by")
	if kind != "" && kind != "read" && kind != "write" {
		writeError(w, status.Errorf(codes.InvalidArgument, "kind %q: want read or write", kind))
		return
	}
	if by != "" && by != "bytes" && by != "ops" {
		writeError(w, status.Errorf(codes.InvalidArgument, "by %q: want bytes or ops", by))
		return
	}
	limit, ok := queryLimit(w, q.Get("limit"), 20)
	if !ok {
		return
	}
	c := s.leaderOr503(w)
	if c == nil {
		return
	}
	views := s.consoleTabletViews(c, c.tabletsView(nil, nil, 0))
	byID := map[uint64]consoleTablet{}
	plain := make([]ctl.Tablet, len(views))
	for i, v := range views {
		plain[i] = v.Tablet
		byID[v.ID] = v
	}
	out := []consoleTablet{}
	for _, t := range ctl.HotTablets(plain, kind == "write", by != "ops", limit) {
		out = append(out, byID[t.ID])
	}
	writeJSON(w, http.StatusOK, out)
}

// heatmapRow labels one row of the heat map.
type heatmapRow struct {
	StartKey string `json:"start_key"` // hex
	Table    string `json:"table"`
	Row      string `json:"row"`
}

// consoleHeatmap is the answer of GET /console/api/heatmap.
type consoleHeatmap struct {
	Metric string `json:"metric"`
	Unit   string `json:"unit"`
	// ResolutionMs is the width of one column.
	ResolutionMs int64        `json:"resolution_ms"`
	TimesUnixMs  []int64      `json:"times_unix_ms"`
	Rows         []heatmapRow `json:"rows"`
	// Values[column][row], the metric's rate.
	Values [][]float64 `json:"values"`
	Max    float64     `json:"max"`
}

// consoleHeatmap answers GET /console/api/heatmap?metric=M&minutes=N&rows=R:
// the last N minutes (default 60, at most the history kept) on at most R
// key rows (default and cap 256). Any member answers with the history it
// recorded while it led.
func (s *Server) consoleHeatmap(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	m := keyviz.WriteBytes
	if v := q.Get("metric"); v != "" {
		var err error
		if m, err = keyviz.ParseMetric(v); err != nil {
			writeError(w, status.Error(codes.InvalidArgument, err.Error()))
			return
		}
	}
	rec := s.cons.recorder()
	o := rec.Options()
	minutes, ok := queryLimit(w, q.Get("minutes"), 60)
	if !ok {
		return
	}
	rows, ok := queryLimit(w, q.Get("rows"), o.MaxBuckets)
	if !ok {
		return
	}
	now := time.Now()
	span := min(time.Duration(minutes)*time.Minute, time.Duration(o.Columns)*o.Resolution)
	mat, err := rec.Matrix(m, now.Add(-span).Truncate(o.Resolution), now.Add(o.Resolution), min(rows, o.MaxBuckets))
	if err != nil {
		writeError(w, status.Error(codes.InvalidArgument, err.Error()))
		return
	}
	names := map[uint64]string{}
	if c, err := s.leader(); err == nil {
		names = tableNames(c.tablesView())
	}
	out := consoleHeatmap{Metric: m.String(), Unit: m.Unit(), ResolutionMs: o.Resolution.Milliseconds(),
		TimesUnixMs: []int64{}, Rows: []heatmapRow{}, Values: mat.Values, Max: mat.Max}
	for _, t := range mat.Times {
		out.TimesUnixMs = append(out.TimesUnixMs, t.UnixMilli())
	}
	for _, k := range mat.Keys {
		tbl, row := ctl.KeyLabel(k, names)
		out.Rows = append(out.Rows, heatmapRow{StartKey: hex.EncodeToString(k), Table: tbl, Row: row})
	}
	if out.Values == nil {
		out.Values = [][]float64{}
	}
	writeJSON(w, http.StatusOK, out)
}

// queryLimit parses a positive integer parameter (def when absent),
// answering 400 when it is not one.
func queryLimit(w http.ResponseWriter, v string, def int) (int, bool) {
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		writeError(w, status.Errorf(codes.InvalidArgument, "%q is not a positive integer", v))
		return 0, false
	}
	return n, true
}

func tableNames(tables []*metapb.TableSchema) map[uint64]string {
	out := make(map[uint64]string, len(tables))
	for _, t := range tables {
		out[t.TableId] = t.Name
	}
	return out
}

func tableID(tables []*metapb.TableSchema, name string) (uint64, bool) {
	i := sort.Search(len(tables), func(i int) bool { return tables[i].Name >= name })
	if i < len(tables) && tables[i].Name == name {
		return tables[i].TableId, true
	}
	return 0, false
}
