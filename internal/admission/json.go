package admission

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Settings travel as JSON (GET/PUT /admission) with durations as Go
// duration strings ("5ms"); a bare number is nanoseconds.

type jsonDuration time.Duration

func (d jsonDuration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

func (d *jsonDuration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n int64
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("a duration is a string like \"100ms\" or a number of nanoseconds, not %s", b)
		}
		*d = jsonDuration(n)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = jsonDuration(v)
	return nil
}

// settingsFields is Settings without its methods; settingsJSON's
// duration fields shadow its own (the shallower field wins).
type settingsFields Settings

type settingsJSON struct {
	*settingsFields
	SchedLatencyTarget           *jsonDuration `json:"sched_latency_target"`
	BackgroundSchedLatencyTarget *jsonDuration `json:"background_sched_latency_target"`
	MaxQueueWait                 *jsonDuration `json:"max_queue_wait"`
	MaxBackgroundWait            *jsonDuration `json:"max_background_wait"`
	LogSyncThreshold             *jsonDuration `json:"log_sync_latency_threshold"`
}

func (s *Settings) json() settingsJSON {
	return settingsJSON{
		settingsFields:               (*settingsFields)(s),
		SchedLatencyTarget:           (*jsonDuration)(&s.SchedLatencyTarget),
		BackgroundSchedLatencyTarget: (*jsonDuration)(&s.BackgroundSchedLatencyTarget),
		MaxQueueWait:                 (*jsonDuration)(&s.MaxQueueWait),
		MaxBackgroundWait:            (*jsonDuration)(&s.MaxBackgroundWait),
		LogSyncThreshold:             (*jsonDuration)(&s.LogSyncLatencyThreshold),
	}
}

// MarshalJSON writes durations as strings.
func (s Settings) MarshalJSON() ([]byte, error) { return json.Marshal(s.json()) }

// UnmarshalJSON reads durations as strings (or nanoseconds) and refuses
// unknown fields, so a misspelt setting is an error, not a default.
func (s *Settings) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	j := s.json()
	return dec.Decode(&j)
}
