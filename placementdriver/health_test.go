package placementdriver_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/testutils"
)

type healthAnswer struct {
	Member   string `json:"member"`
	Leader   string `json:"leader"`
	IsLeader bool   `json:"is_leader"`
	Quorum   bool   `json:"quorum"`
	Serving  bool   `json:"serving"`
	Reason   string `json:"reason"`
}

func getHealth(t *testing.T, apiURL string) (int, healthAnswer) {
	t.Helper()
	code, body := httpDo(t, "GET", strings.TrimSuffix(apiURL, "/pd/api/v1/")+"/healthz", nil)
	var h healthAnswer
	require.NoError(t, json.Unmarshal(body, &h), string(body))
	return code, h
}

// TestHealthzReportsQuorumAndLeadership: with all three members up every
// member answers 200 naming the same leader, exactly one of them leading;
// with two of three stopped the survivor has no quorum and answers 503.
func TestHealthzReportsQuorumAndLeadership(t *testing.T) {
	c, urls := startPDWithHTTP(t, 3)
	leader := waitHTTPLeader(t, urls)
	testutils.SucceedsSoon(t, func() error {
		leaders := 0
		for name, u := range urls {
			code, h := getHealth(t, u)
			if code != http.StatusOK || !h.Quorum || !h.Serving || h.Leader != leader || h.Member != name {
				return fmt.Errorf("%s: %d %+v", name, code, h)
			}
			if h.IsLeader {
				leaders++
			}
		}
		if leaders != 1 {
			return fmt.Errorf("%d members say they lead", leaders)
		}
		return nil
	})

	var survivor string
	for name := range urls {
		if survivor == "" {
			survivor = name
			continue
		}
		c.stop(name)
	}
	testutils.SucceedsSoon(t, func() error {
		code, h := getHealth(t, urls[survivor])
		if code != http.StatusServiceUnavailable || h.Quorum || h.Reason == "" {
			return fmt.Errorf("%s without quorum answered %d %+v", survivor, code, h)
		}
		return nil
	})
}
