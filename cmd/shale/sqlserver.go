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
	fl.StringVar(&f.user, "user", "root", "a static MySQL account (with TLS, PD's users log in too, and this one only if given a password)")
	fl.StringVar(&f.password, "password", "", "its password (default: $"+passwordEnv+")")
	fl.BoolVar(&f.allowEmpty, "allow-empty-password", false, "accept an empty password (test setups only)")
	fl.StringVar(&f.plugin, "auth-plugin", mysqlwire.AuthCachingSHA, "authentication clients are asked to use: caching_sha2_password|mysql_native_password")
	fl.IntVar(&f.maxConns, "max-connections", 64, "most client connections open at once (more get error 1040)")
	fl.IntVar(&f.maxPacket, "max-packet", 4<<20, "largest client packet (statement text), bytes; at most 16777215")
	fl.DurationVar(&f.idle, "idle-timeout", 8*time.Hour, "close connections idle for this long (MySQL's wait_timeout)")
}

// config is the server's configuration; secure (TLS): PD's users log in,
// and the --user account exists only with a password.
func (f *mysqlFlags) config(secure bool) (mysqlwire.Config, error) {
	pw := f.password
	if pw == "" {
		pw = os.Getenv(passwordEnv)
	}
	user := f.user
	switch {
	case pw == "" && !f.allowEmpty && secure:
		user = "" // PD's users only
	case pw == "" && !f.allowEmpty:
		return mysqlwire.Config{}, fmt.Errorf("give the MySQL password with --password or $%s (or --allow-empty-password for a test setup)", passwordEnv)
	}
	return mysqlwire.Config{User: user, Password: pw, AuthPlugin: f.plugin, MaxConns: f.maxConns, MaxPacket: f.maxPacket, IdleTimeout: f.idle}, nil
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
DESCRIBE and the basics of information_schema. With --tls-ca/--tls-cert/
--tls-key clients must connect with TLS (mysql --ssl-mode=REQUIRED) and log
in as a user of PD (shale ctl user add, CREATE USER) with its password, and
each statement is checked against that user's grants; --user/--password add
a static account. --insecure serves plaintext to the one --user account.
The listener defaults to 127.0.0.1.
See docs/sql.md, "MySQL protocol".`,
		Example: `  SHALE_MYSQL_PASSWORD=secret shale sql-server --pd 127.0.0.1:2379
  mysql -h 127.0.0.1 -P 3306 -u root -p
  shale sql-server --pd 127.0.0.1:2379 --addr 127.0.0.1:3307 --allow-empty-password --auth-plugin mysql_native_password`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tlsCfg, err := serverTLS(cmd, "shale sql-server")
			if err != nil {
				return err
			}
			cfg, err := f.config(tlsCfg != nil)
			if err != nil {
				return err
			}
			cfg.TLS = tlsCfg
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
			// With TLS, PD's users log in with their passwords and act as
			// themselves (docs/security.md); the --user account, if given a
			// password, is accepted too.
			az, stopAuthz, err := gatewayAuthorizer(ctx, c, cfg.TLS != nil)
			if err != nil {
				return err
			}
			defer stopAuthz()
			cfg.Authz = az
			srv, err := mysqlwire.New(c, cfg)
			if err != nil {
				return err
			}
			defer srv.Close()
			boundHTTP, stopHTTP, err := serveDebugHTTP(httpAddr, reg, c.Ping, cfg.TLS, az)
			if err != nil {
				return err
			}
			defer stopHTTP()
			if boundHTTP != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "shale sql-server serving /healthz and /metrics on %s\n", boundHTTP)
			}
			bound, err := srv.Listen(addr)
			if err != nil {
				return err
			}
			users := "user " + cfg.User
			if cfg.Authz != nil {
				users = "PD's users"
				if cfg.User != "" {
					users += " and " + cfg.User
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "shale sql-server listening on %s (MySQL protocol, %s, %s, %s)\n", bound, users, cfg.AuthPlugin,
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
