package mysqlwire

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

func TestStatementKind(t *testing.T) {
	for q, want := range map[string]string{
		"SELECT 1": "select", "  select(1)": "select", "insert into t values (1)": "insert",
		"Update t set a=1": "update", "desc t": "describe", "EXPLAIN select 1": "describe",
		"show tables;": "show", "COMMIT": "commit", "frobnicate": "other", "": "other",
	} {
		require.Equal(t, want, statementKind(q), q)
	}
}

// TestStatementMetrics: statements over the wire are timed by kind and
// outcome, prepared executions as "execute".
func TestStatementMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	_, addr := startServer(t, Config{Registry: reg})
	db := openDB(t, addr, "root", "", "")
	tbl := tableName(t, "metrics")
	mustExec(t, db, "CREATE TABLE "+tbl+" (id BIGINT PRIMARY KEY, v INT)", "INSERT INTO "+tbl+" VALUES (1, 2)")
	_, err := db.Exec("SELECT nope FROM " + tbl)
	require.Error(t, err)
	var v int
	require.NoError(t, db.QueryRow("SELECT v FROM "+tbl+" WHERE id = ?", 1).Scan(&v))
	require.Equal(t, 2, v)

	count := func(stmt, outcome string) uint64 {
		mfs, err := reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				if labels["statement"] == stmt && labels["outcome"] == outcome {
					return m.GetHistogram().GetSampleCount()
				}
			}
		}
		return 0
	}
	require.Equal(t, uint64(1), count("create", "ok"))
	require.Equal(t, uint64(1), count("insert", "ok"))
	require.Equal(t, uint64(1), count("select", "error"))
	require.Equal(t, uint64(1), count("execute", "ok"))
}
