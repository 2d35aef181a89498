package placementdriver

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// registerHTTP serves the JSON API on the leader. Followers answer 503
// with the leader's name so operators can follow it.
func (s *Server) registerHTTP(mux *http.ServeMux) {
	mux.HandleFunc("GET /pd/api/v1/members", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		leader := s.names[s.mu.leaderID]
		s.mu.Unlock()
		writeJSON(w, map[string]any{"members": s.members(), "leader": leader})
	})
	mux.HandleFunc("GET /pd/api/v1/health", func(w http.ResponseWriter, r *http.Request) {
		_, err := s.leader()
		writeJSON(w, map[string]any{"member": s.opts.Name, "leader": err == nil})
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		http.Error(w, fmt.Sprint(err), http.StatusInternalServerError)
	}
}
