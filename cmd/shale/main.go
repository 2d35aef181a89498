// Command shale is the single Shale binary: servers, playground, client
// tools and benchmarks are its subcommands.
//
// Subcommands live in their own files (tablet.go, pd.go, ...) and register
// themselves from init:
//
//	func init() { subcommands = append(subcommands, newTabletCommand) }
//
// A subcommand reads its settings with bindConfig and gets its logger from
// slog.Default(), which the root command sets up before any subcommand runs.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time: -ldflags "-X main.version=...".
var version = "dev"

// subcommands holds the constructors of the root's subcommands. Files in
// this package append to it from init(); newRootCommand calls each once.
var subcommands []func() *cobra.Command

func main() {
	// SIGINT/SIGTERM cancel cmd.Context(); servers shut down on it.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCommand().ExecuteContext(ctx)
	stop()
	if err != nil {
		os.Exit(1)
	}
}

func init() {
	// Let subcommands have their own PersistentPreRunE without skipping the
	// root's (logger setup). Set once, not in newRootCommand: tests build
	// command trees from parallel tests, and cobra reads it in Execute.
	cobra.EnableTraverseRunHooks = true
}

// newRootCommand builds the `shale` command tree. Each call returns a fresh
// tree, so tests can run commands in isolation.
func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "shale",
		Short:         "Shale: a Bigtable-style distributed table store",
		SilenceUsage:  true, // runtime errors are not usage errors
		SilenceErrors: false,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			level, err := resolveLogLevel(cmd)
			if err != nil {
				return err
			}
			slog.SetDefault(newLoggerTo(cmd.ErrOrStderr(), level))
			return nil
		},
	}
	pf := root.PersistentFlags()
	pf.String(configFlag, "", "config file (YAML or TOML, by extension; env SHALE_CONFIG)")
	pf.String(logLevelFlag, "info", "log level: debug|info|warn|error (env SHALE_LOG_LEVEL)")

	root.AddCommand(newVersionCommand())
	for _, newCmd := range subcommands {
		root.AddCommand(newCmd())
	}
	return root
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of this binary",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), versionString())
			return err
		},
	}
}

func versionString() string {
	s := fmt.Sprintf("shale %s %s %s/%s", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, kv := range info.Settings {
			if kv.Key == "vcs.revision" {
				s += " commit " + kv.Value
			}
		}
	}
	return s
}
