package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shaledb/shale/internal/metrics"
	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/sql-lite/mysqlwire"
)

func init() { subcommands = append(subcommands, newSQLServerCommand) }

// passwordEnv is where `shale sql-server` reads the password when
// --password is not given (keeps it out of the process list).
const passwordEnv = "SHALE_MYSQL_PASSWORD"

// mysqlFlags are the MySQL listener's flags.
type mysqlFlags struct {
	user, password, plugin string
	allowEmpty             bool
	maxConns, maxPacket    int
	idle                   time.Duration
}

func (f *mysqlFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.user, "user", "root", "the one MySQL user accepted (until issue 17's users land)")
	fl.StringVar(&f.password, "password", "", "its password (default: $"+passwordEnv+")")
	fl.BoolVar(&f.allowEmpty, "allow-empty-password", false, "accept an empty password (test setups only)")
	fl.StringVar(&f.plugin, "auth-plugin", mysqlwire.AuthCachingSHA, "authentication clients are asked to use: caching_sha2_password|mysql_native_password")
	fl.IntVar(&f.maxConns, "max-connections", 64, "most client connections open at once (more get error 1040)")
	fl.IntVar(&f.maxPacket, "max-packet", 4<<20, "largest client packet (statement text), bytes; at most 16777215")
	fl.DurationVar(&f.idle, "idle-timeout", 8*time.Hour, "close connections idle for this long (MySQL's wait_timeout)")
}

func (f *mysqlFlags) config() (mysqlwire.Config, error) {
	pw := f.password
	if pw == "" {
		pw = os.Getenv(passwordEnv)
	}
	if pw == "" && !f.allowEmpty {
		return mysqlwire.Config{}, fmt.Errorf("give the MySQL password with --password or $%s (or --allow-empty-password for a test setup)", passwordEnv)
	}
	return mysqlwire.Config{User: f.user, Password: pw, AuthPlugin: f.plugin, MaxConns: f.maxConns, MaxPacket: f.maxPacket, IdleTimeout: f.idle}, nil
}

// newSQLServerCommand serves sql-lite over the MySQL protocol.
func newSQLServerCommand() *cobra.Command {
	var (
		f        mysqlFlags
		pd       string
		addr     string
		httpAddr string
		timeout  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "sql-server",
		Short: "Serve the SQL layer (sql-lite) over the MySQL protocol",
		Long: `Serve sql-lite to MySQL clients and drivers (the mysql/mariadb client, Go's
go-sql-driver/mysql, ...): queries, prepared statements, transactions, SHOW,
DESCRIBE and the basics of information_schema. One user is accepted (--user,
--password). With --tls-ca/--tls-cert/--tls-key clients must connect with
TLS (mysql --ssl-mode=REQUIRED); --insecure serves plaintext. The listener
defaults to 127.0.0.1.
See docs/sql.md, "MySQL protocol".`,
		Example: `  SHALE_MYSQL_PASSWORD=secret shale sql-server --pd 127.0.0.1:2379
  mysql -h 127.0.0.1 -P 3306 -u root -p
  shale sql-server --pd 127.0.0.1:2379 --addr 127.0.0.1:3307 --allow-empty-password --auth-plugin mysql_native_password`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.config()
			if err != nil {
				return err
			}
			if cfg.TLS, err = serverTLS(cmd, "shale sql-server"); err != nil {
				return err
			}
			ctx := cmd.Context()
			octx, cancel := context.WithTimeout(ctx, timeout)
			reg := metrics.NewRegistry()
			c, err := kvclient.Open(octx, kvclient.Options{PD: strings.Split(pd, ","), TLS: cfg.TLS, Registry: reg})
			cancel()
			if err != nil {
				return err
			}
			defer c.Close()
			cfg.Registry = reg
			srv, err := mysqlwire.New(c, cfg)
			if err != nil {
				return err
			}
			defer srv.Close()
			boundHTTP, stopHTTP, err := serveDebugHTTP(httpAddr, reg, c.Ping)
			if err != nil {
				return err
			}
			defer stopHTTP()
			if boundHTTP != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "shale sql-server serving /healthz and /metrics on http://%s\n", boundHTTP)
			}
			bound, err := srv.Listen(addr)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "shale sql-server listening on %s (MySQL protocol, user %s, %s, %s)\n", bound, cfg.User, cfg.AuthPlugin,
				map[bool]string{false: "TLS required", true: "INSECURE: no TLS"}[cfg.TLS == nil])
			<-ctx.Done()
			if err := ctx.Err(); err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&pd, "pd", "127.0.0.1:2379", "placement driver client addresses HOST:PORT,...")
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:3306", "address to serve the MySQL protocol on, HOST:PORT")
	cmd.Flags().StringVar(&httpAddr, "http-addr", "127.0.0.1:3390", `HTTP address for /healthz, /metrics and /debug/pprof/ ("" disables)`)
	cmd.Flags().DurationVar(&timeout, "connect-timeout", 10*time.Second, "give up connecting to the cluster after this long")
	f.register(cmd)
	addServerTLSFlags(cmd.Flags())
	return cmd
}
