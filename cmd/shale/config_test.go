package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"
)

// testOptions stands in for a component's Options struct.
type testOptions struct {
	DataDir   string        `mapstructure:"data-dir"`
	MaxSize   int           `mapstructure:"max-size"`
	Heartbeat time.Duration `mapstructure:"heartbeat"`
	Labels    []string      `mapstructure:"labels"`
	// FileOnly has no flag: only the config file can set it.
	FileOnly int `mapstructure:"file-only"`
}

// runTablet runs `shale [args...]` with a throwaway "tablet" subcommand that
// binds section "tablet" into a testOptions. It returns the options and the
// log lines (JSON objects) written by the run.
func runTablet(t *testing.T, args ...string) (testOptions, []map[string]any, error) {
	t.Helper()
	prev := slog.Default()
	t.Cleanup(func() { slog.SetDefault(prev) })

	var got testOptions
	sub := &cobra.Command{
		Use: "tablet",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return bindConfig(cmd, "tablet", &got)
		},
	}
	sub.Flags().String("data-dir", "/default", "")
	sub.Flags().Int("max-size", 96, "")
	sub.Flags().Duration("heartbeat", time.Second, "")
	sub.Flags().StringSlice("labels", nil, "")
	sub.Flags().Bool("no-field", false, "a flag without a field in testOptions")

	root := newRootCommand()
	// Stand in for the real tablet command (tablet.go), which would
	// otherwise be found first.
	for _, c := range root.Commands() {
		if c.Name() == "tablet" {
			root.RemoveCommand(c)
		}
	}
	root.AddCommand(sub)
	var stdout, stderr bytes.Buffer
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	root.SetArgs(args)
	err := root.Execute()

	var logs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		if !strings.HasPrefix(line, "{") {
			continue // cobra's "Error: ..." line
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), "log line %q", line)
		logs = append(logs, m)
	}
	return got, logs, err
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	return p
}

// clearEnv unsets the SHALE_* variables the tests use, restoring them after.
func clearEnv(t *testing.T) {
	for _, k := range []string{
		"SHALE_CONFIG", "SHALE_LOG_LEVEL",
		"SHALE_TABLET_DATA_DIR", "SHALE_TABLET_MAX_SIZE",
		"SHALE_TABLET_HEARTBEAT", "SHALE_TABLET_LABELS",
	} {
		t.Setenv(k, "") // registers restore
		require.NoError(t, os.Unsetenv(k))
	}
}

func TestBindConfigPrecedence(t *testing.T) {
	const yamlFile = `
log-level: info
tablet:
  data-dir: /from-file
  max-size: 1
  heartbeat: 3s
  labels: [zone=file]
  file-only: 7
`
	defaults := testOptions{DataDir: "/default", MaxSize: 96, Heartbeat: time.Second, Labels: []string{}}
	for _, tc := range []struct {
		name string
		file bool
		env  map[string]string
		args []string
		want testOptions
	}{
		{
			name: "defaults",
			want: defaults,
		},
		{
			name: "file beats default",
			file: true,
			want: testOptions{DataDir: "/from-file", MaxSize: 1, Heartbeat: 3 * time.Second, Labels: []string{"zone=file"}, FileOnly: 7},
		},
		{
			name: "env beats default",
			env:  map[string]string{"SHALE_TABLET_DATA_DIR": "/from-env", "SHALE_TABLET_MAX_SIZE": "2"},
			want: testOptions{DataDir: "/from-env", MaxSize: 2, Heartbeat: time.Second, Labels: []string{}},
		},
		{
			name: "env beats file",
			file: true,
			env: map[string]string{
				"SHALE_TABLET_DATA_DIR":  "/from-env",
				"SHALE_TABLET_HEARTBEAT": "2s",
				"SHALE_TABLET_LABELS":    "zone=env,rack=r1",
			},
			want: testOptions{DataDir: "/from-env", MaxSize: 1, Heartbeat: 2 * time.Second, Labels: []string{"zone=env", "rack=r1"}, FileOnly: 7},
		},
		{
			name: "flag beats env beats file",
			file: true,
			env:  map[string]string{"SHALE_TABLET_DATA_DIR": "/from-env", "SHALE_TABLET_MAX_SIZE": "2"},
			args: []string{"--data-dir", "/from-flag", "--labels", "zone=flag"},
			want: testOptions{DataDir: "/from-flag", MaxSize: 2, Heartbeat: 3 * time.Second, Labels: []string{"zone=flag"}, FileOnly: 7},
		},
		{
			name: "flag beats default",
			args: []string{"--max-size=5", "--heartbeat=250ms"},
			want: testOptions{DataDir: "/default", MaxSize: 5, Heartbeat: 250 * time.Millisecond, Labels: []string{}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			args := []string{"tablet"}
			if tc.file {
				args = append(args, "--config", writeFile(t, "shale.yaml", yamlFile))
			}
			args = append(args, tc.args...)
			got, logs, err := runTablet(t, args...)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			require.Empty(t, logs)
		})
	}
}

func TestBindConfigTOMLAndConfigEnv(t *testing.T) {
	clearEnv(t)
	t.Setenv("SHALE_CONFIG", writeFile(t, "shale.toml", `
[tablet]
data-dir = "/toml"
max-size = 3
`))
	got, _, err := runTablet(t, "tablet")
	require.NoError(t, err)
	require.Equal(t, "/toml", got.DataDir)
	require.Equal(t, 3, got.MaxSize)
}

func TestBindConfigUnknownKeyWarning(t *testing.T) {
	clearEnv(t)
	cfg := writeFile(t, "shale.yaml", `
tablet:
  data-dir: /d
  dta-dir: /typo
  nested:
    x: 1
pd:
  whatever: 1
`)
	got, logs, err := runTablet(t, "tablet", "--config", cfg)
	require.NoError(t, err)
	require.Equal(t, "/d", got.DataDir)

	var keys []string
	for _, l := range logs {
		require.Equal(t, "WARN", l["level"])
		require.Equal(t, cfg, l["file"])
		keys = append(keys, l["key"].(string))
	}
	// Only this section's unknown keys; flags without a field (--no-field)
	// and other sections (pd) are not reported.
	require.Equal(t, []string{"tablet.dta-dir", "tablet.nested"}, keys)
}

func TestBindConfigErrors(t *testing.T) {
	clearEnv(t)
	_, _, err := runTablet(t, "tablet", "--config", filepath.Join(t.TempDir(), "missing.yaml"))
	require.ErrorContains(t, err, "missing.yaml")

	_, _, err = runTablet(t, "tablet", "--config", writeFile(t, "bad.yaml", "tablet: 3\n"))
	require.ErrorContains(t, err, "must be a table")

	_, _, err = runTablet(t, "tablet", "--config", writeFile(t, "bad.yaml", "tablet:\n  max-size: lots\n"))
	require.ErrorContains(t, err, "max-size")
}

func TestLogLevel(t *testing.T) {
	clearEnv(t)
	_, _, err := runTablet(t, "tablet", "--log-level", "loud")
	require.ErrorContains(t, err, "invalid log level")

	for _, tc := range []struct {
		name string
		env  string
		file string
		args []string
		want slog.Level
	}{
		{name: "default", want: slog.LevelInfo},
		{name: "file", file: "log-level: error\n", want: slog.LevelError},
		{name: "env beats file", env: "debug", file: "log-level: error\n", want: slog.LevelDebug},
		{name: "flag beats env", env: "debug", args: []string{"--log-level=WARN"}, want: slog.LevelWarn},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			if tc.env != "" {
				t.Setenv("SHALE_LOG_LEVEL", tc.env)
			}
			args := append([]string{"tablet"}, tc.args...)
			if tc.file != "" {
				args = append(args, "--config", writeFile(t, "shale.yaml", tc.file))
			}
			_, _, err := runTablet(t, args...)
			require.NoError(t, err)
			// runTablet restores the default logger at cleanup, so check now
			// which levels the installed one lets through.
			h := slog.Default().Handler()
			for _, l := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError} {
				require.Equal(t, l >= tc.want, h.Enabled(t.Context(), l), "level %v", l)
			}
		})
	}
}

func TestNewLogger(t *testing.T) {
	require.True(t, newLogger("debug").Enabled(t.Context(), slog.LevelDebug))
	require.False(t, newLogger("error").Enabled(t.Context(), slog.LevelWarn))
	require.True(t, newLogger("bogus").Enabled(t.Context(), slog.LevelInfo))

	var buf bytes.Buffer
	newLoggerTo(&buf, slog.LevelInfo).Info("hello", "k", 1)
	require.True(t, json.Valid(buf.Bytes()), "non-terminal output is JSON: %q", buf.String())
}

func TestVersionCommand(t *testing.T) {
	clearEnv(t)
	prev := slog.Default()
	t.Cleanup(func() { slog.SetDefault(prev) })
	root := newRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"version"})
	require.NoError(t, root.Execute())
	require.True(t, strings.HasPrefix(out.String(), "shale "+version+" "), out.String())
}

func TestBindConfigRejectsBadSection(t *testing.T) {
	require.Error(t, bindConfig(&cobra.Command{}, "a.b", &testOptions{}))
}
