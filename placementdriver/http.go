package placementdriver

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/internal/authz"
	"github.com/shaledb/shale/internal/metrics"
	"github.com/shaledb/shale/placementdriver/ctl"
	"github.com/shaledb/shale/proto/pdpb"
)

// httpDefaultTabletLimit is how many tablets GET /pd/api/v1/tablets
// returns without ?limit=.
const httpDefaultTabletLimit = 1000

// httpRoutes registers every route of PD's status port (each must be
// classified in internal/authz/table.go: TestEveryHTTPRouteIsClassified).
func (s *Server) httpRoutes(mux authz.Registrar, reg *prometheus.Registry) {
	metrics.HandleDebug(mux, reg)
	mux.HandleFunc("/healthz", s.serveHealth)
	s.registerHTTP(mux)
	s.registerConsole(mux)
}

// registerHTTP serves the JSON API (docs/ctl.md lists the endpoints and
// fields; the shapes are those of package ctl, shared with `shale ctl
// --json`).
//
// members and health are answered by every member. Everything else is
// served by the leader only: a follower answers 503 with
// {"error": ..., "leader": NAME, "leader_client_addr": ADDR} (the leader
// fields are absent while no leader is known).
func (s *Server) registerHTTP(mux authz.Registrar) {
	const p = "/pd/api/v1/"
	mux.HandleFunc("GET "+p+"members", s.httpMembers)
	mux.HandleFunc("GET "+p+"health", s.httpHealth)
	mux.HandleFunc("GET "+p+"stores", s.httpStores)
	mux.HandleFunc("GET "+p+"tablets", s.httpTablets)
	mux.HandleFunc("GET "+p+"tables", s.httpTables)
	mux.HandleFunc("GET "+p+"operators", s.httpOperators)
	mux.HandleFunc("GET "+p+"config", s.httpGetConfig)
	mux.HandleFunc("POST "+p+"config", s.httpSetConfig)
	mux.HandleFunc("PUT "+p+"config", s.httpSetConfig)
}

func (s *Server) httpMembers(w http.ResponseWriter, r *http.Request) {
	leaderID, _, clusterID := s.leaderView()
	resp := &pdpb.GetMembersResponse{ClusterId: clusterID, Members: s.members()}
	for _, m := range resp.Members {
		if m.MemberId == leaderID {
			resp.Leader = m
		}
	}
	writeJSON(w, http.StatusOK, ctl.MembersFromPB(resp))
}

// healthView is the answer of GET /pd/api/v1/health.
type healthView struct {
	// Member is the answering member's name.
	Member string `json:"member"`
	// IsLeader: this member leads and serves the API.
	IsLeader bool `json:"is_leader"`
	// Leader is the leader's name, "" while none is elected.
	Leader string `json:"leader"`
	// Healthy: a leader is elected (the cluster can serve).
	Healthy   bool   `json:"healthy"`
	ClusterID uint64 `json:"cluster_id"`
}

func (s *Server) httpHealth(w http.ResponseWriter, r *http.Request) {
	_, leaderName, clusterID := s.leaderView()
	_, err := s.leader()
	writeJSON(w, http.StatusOK, healthView{
		Member: s.opts.Name, IsLeader: err == nil, Leader: leaderName,
		Healthy: leaderName != "", ClusterID: clusterID,
	})
}

// leaderOr503 returns the loaded cluster, or answers the redirect.
func (s *Server) leaderOr503(w http.ResponseWriter) *cluster {
	c, err := s.leader()
	if err != nil {
		writeError(w, err)
		return nil
	}
	return c
}

func (s *Server) httpStores(w http.ResponseWriter, r *http.Request) {
	c := s.leaderOr503(w)
	if c == nil {
		return
	}
	stores, counts := c.storesView()
	writeJSON(w, http.StatusOK, ctl.StoresFromPB(stores, counts))
}

func (s *Server) httpTablets(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	start, err := hex.DecodeString(q.Get("start_key"))
	if err != nil {
		writeError(w, status.Errorf(codes.InvalidArgument, "start_key %q is not hex", q.Get("start_key")))
		return
	}
	end, err := hex.DecodeString(q.Get("end_key"))
	if err != nil {
		writeError(w, status.Errorf(codes.InvalidArgument, "end_key %q is not hex", q.Get("end_key")))
		return
	}
	limit := httpDefaultTabletLimit
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit <= 0 {
			writeError(w, status.Errorf(codes.InvalidArgument, "limit %q is not a positive integer", v))
			return
		}
	}
	c := s.leaderOr503(w)
	if c == nil {
		return
	}
	writeJSON(w, http.StatusOK, ctl.TabletsFromPB(c.tabletsView(start, end, limit)))
}

func (s *Server) httpTables(w http.ResponseWriter, r *http.Request) {
	c := s.leaderOr503(w)
	if c == nil {
		return
	}
	writeJSON(w, http.StatusOK, ctl.TablesFromPB(c.tablesView()))
}

// httpOperators answers through the gRPC service, so it lists exactly
// what `shale ctl operators` does (and the same error while unsupported).
func (s *Server) httpOperators(w http.ResponseWriter, r *http.Request) {
	if s.leaderOr503(w) == nil {
		return
	}
	resp, err := (&service{s: s}).ListOperators(r.Context(), &pdpb.ListOperatorsRequest{})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ctl.OperatorsFromPB(resp.GetOperators()))
}

func (s *Server) httpGetConfig(w http.ResponseWriter, r *http.Request) {
	c := s.leaderOr503(w)
	if c == nil {
		return
	}
	writeJSON(w, http.StatusOK, c.configView())
}

// configChange is the body of POST/PUT /pd/api/v1/config. Value may be a
// JSON string ("256KiB"), a number (3), or a list of strings (location
// labels, joined with commas).
type configChange struct {
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value"`
}

func (s *Server) httpSetConfig(w http.ResponseWriter, r *http.Request) {
	var ch configChange
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err == nil {
		err = json.Unmarshal(body, &ch)
	}
	if err != nil {
		writeError(w, status.Errorf(codes.InvalidArgument, `want a JSON body {"key": KEY, "value": VALUE}: %v`, err))
		return
	}
	if ch.Key == "" {
		writeError(w, status.Error(codes.InvalidArgument, `"key" is required`))
		return
	}
	value, err := configValue(ch.Value)
	if err != nil {
		writeError(w, status.Errorf(codes.InvalidArgument, "config %s: %v", ch.Key, err))
		return
	}
	c := s.leaderOr503(w)
	if c == nil {
		return
	}
	if err := c.setConfig(r.Context(), ch.Key, value); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, c.configView())
}

func configValue(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", errors.New(`"value" is required`)
	}
	switch raw[0] {
	case '"':
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	case '[':
		var list []string
		if err := json.Unmarshal(raw, &list); err != nil {
			return "", fmt.Errorf("want a string, a number or a list of strings: %w", err)
		}
		return strings.Join(list, ","), nil
	case '{':
		return "", errors.New("want a string, a number or a list of strings, not an object")
	}
	return string(raw), nil // a number or a boolean, as written
}

// errorView is the body of every error answer.
type errorView struct {
	Error string `json:"error"`
	// Leader and LeaderClientAddr are set on a follower's 503.
	Leader           string `json:"leader,omitempty"`
	LeaderClientAddr string `json:"leader_client_addr,omitempty"`
}

// writeError answers err (a gRPC status error or any error) with the
// matching HTTP status and an errorView.
func writeError(w http.ResponseWriter, err error) {
	st := status.Convert(err)
	v := errorView{Error: st.Message()}
	for _, d := range st.Details() {
		if nl, ok := d.(*pdpb.NotPDLeader); ok {
			v.Leader, v.LeaderClientAddr = nl.LeaderName, nl.LeaderClientAddr
		}
	}
	writeJSON(w, httpStatus(st.Code()), v)
}

func httpStatus(c codes.Code) int {
	switch c {
	case codes.InvalidArgument, codes.OutOfRange:
		return http.StatusBadRequest
	case codes.NotFound:
		return http.StatusNotFound
	case codes.AlreadyExists, codes.Aborted, codes.FailedPrecondition:
		return http.StatusConflict
	case codes.Unimplemented:
		return http.StatusNotImplemented
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case codes.Canceled:
		return 499 // client closed request
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	}
	return http.StatusInternalServerError
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	var buf bytes.Buffer
	if err := ctl.WriteJSON(&buf, v); err != nil {
		http.Error(w, fmt.Sprint(err), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}
