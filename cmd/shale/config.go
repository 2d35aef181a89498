package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

const (
	envPrefix    = "SHALE"
	configFlag   = "config"
	logLevelFlag = "log-level"
)

// rootFlags are the root's persistent flags. bindConfig leaves them out of
// every section: the root resolves them itself.
var rootFlags = []string{configFlag, logLevelFlag, "help"}

// bindConfig fills out with cmd's settings for one config section. For each
// of cmd's flags (its own and those inherited from parents below the root)
// the value comes from, highest priority first:
//
//  1. the flag, when given on the command line;
//  2. the environment: SHALE_<SECTION>_<FLAG>, upper case, '-' and '.' as '_'
//     (section "tablet", flag "data-dir": SHALE_TABLET_DATA_DIR);
//  3. the key <flag> in the section <section> of the --config file;
//  4. the flag's default.
//
// Keys of the file's section that are not flags are decoded too (for
// settings too rare to deserve a flag). The result is decoded into out (a
// pointer to a struct) by mapstructure tags named like the flags; string
// values are converted (durations as "2s", slices as "a,b"). Keys of the
// section that match no field in out are reported with a warning through
// slog.Default(), not an error, so an old binary can read a newer file.
func bindConfig(cmd *cobra.Command, section string, out any) error {
	if section == "" || strings.ContainsAny(section, ".-") {
		return fmt.Errorf("config: invalid section name %q", section)
	}
	v := newViper()
	if err := readConfigFile(cmd, v); err != nil {
		return err
	}

	// Start from the file's section so file-only keys are decoded too, then
	// overlay every flag with its resolved value.
	settings := map[string]any{}
	if raw := v.Get(section); raw != nil {
		m, ok := raw.(map[string]any)
		if !ok {
			return fmt.Errorf("config: %s: %q must be a table of settings, not %T", v.ConfigFileUsed(), section, raw)
		}
		for k, val := range m {
			settings[k] = val
		}
	}
	var flagNames []string
	var bindErr error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if bindErr != nil || slices.Contains(rootFlags, f.Name) {
			return
		}
		key := section + "." + f.Name
		if err := v.BindPFlag(key, f); err != nil {
			bindErr = err
			return
		}
		if err := v.BindEnv(key); err != nil {
			bindErr = err
			return
		}
		flagNames = append(flagNames, f.Name)
		settings[f.Name] = v.Get(key)
	})
	if bindErr != nil {
		return fmt.Errorf("config: binding flags of %q: %w", cmd.CommandPath(), bindErr)
	}

	var md mapstructure.Metadata
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		Result:           out,
		Metadata:         &md,
		WeaklyTypedInput: true,
		TagName:          "mapstructure",
		DecodeHook: mapstructure.ComposeDecodeHookFunc(
			mapstructure.StringToTimeDurationHookFunc(),
			mapstructure.StringToSliceHookFunc(","),
			mapstructure.TextUnmarshallerHookFunc(),
		),
	})
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := dec.Decode(settings); err != nil {
		return fmt.Errorf("config: section %q: %w", section, err)
	}

	// A flag without a field is the command's own business (e.g. --sql);
	// only keys that came from the file are worth a warning.
	var unknown []string
	for _, k := range md.Unused {
		if !slices.Contains(flagNames, strings.SplitN(k, ".", 2)[0]) {
			unknown = append(unknown, section+"."+k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		slog.Warn("config: unknown key ignored", "key", k, "file", v.ConfigFileUsed())
	}
	return nil
}

// newViper returns a viper that maps key "a.b-c" to env SHALE_A_B_C.
func newViper() *viper.Viper {
	v := viper.New()
	v.SetEnvPrefix(envPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_", "-", "_"))
	return v
}

// configFile returns the path given by --config, or else by SHALE_CONFIG;
// "" means no file.
func configFile(cmd *cobra.Command) string {
	if f := cmd.Flag(configFlag); f != nil && f.Value.String() != "" {
		return f.Value.String()
	}
	return os.Getenv(envPrefix + "_CONFIG")
}

// readConfigFile loads the config file, if any, into v. The format follows
// the extension (.yaml, .yml, .toml, .json); a file without one is YAML.
func readConfigFile(cmd *cobra.Command, v *viper.Viper) error {
	path := configFile(cmd)
	if path == "" {
		return nil
	}
	v.SetConfigFile(path)
	if filepath.Ext(path) == "" {
		v.SetConfigType("yaml")
	}
	if err := v.ReadInConfig(); err != nil {
		return fmt.Errorf("config: reading %s: %w", path, err)
	}
	return nil
}

// resolveLogLevel returns the level from --log-level, else SHALE_LOG_LEVEL,
// else the top-level key log-level of the config file, else "info".
func resolveLogLevel(cmd *cobra.Command) (slog.Level, error) {
	v := newViper()
	if err := readConfigFile(cmd, v); err != nil {
		return 0, err
	}
	if f := cmd.Flag(logLevelFlag); f != nil {
		if err := v.BindPFlag(logLevelFlag, f); err != nil {
			return 0, err
		}
	}
	if err := v.BindEnv(logLevelFlag); err != nil {
		return 0, err
	}
	v.SetDefault(logLevelFlag, "info")
	return parseLevel(v.GetString(logLevelFlag))
}

// parseLevel accepts debug, info, warn (or warning) and error, in any case.
func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("invalid log level %q (want debug, info, warn or error)", s)
}

// newLogger returns a logger on stderr at the given level (see parseLevel;
// an invalid level means info). It writes text when stderr is a terminal and
// JSON otherwise, so that log collectors get structured lines.
func newLogger(level string) *slog.Logger {
	lvl, err := parseLevel(level)
	if err != nil {
		lvl = slog.LevelInfo
	}
	return newLoggerTo(os.Stderr, lvl)
}

// newLoggerTo is newLogger for any writer: text for a terminal, else JSON.
func newLoggerTo(w io.Writer, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if isTerminal(w) {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
