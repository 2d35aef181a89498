package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/shaledb/shale/internal/authz"
	"github.com/shaledb/shale/proto/pdpb"
)

// `shale ctl user` and `shale ctl role`: users, roles and grants in PD
// (internal/authz; docs/security.md, "Users, roles and authorization").

func newCtlUserCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Add and remove users and set their passwords",
		Long: `Users log in with a client certificate whose common name is the user name
(shale cert create-client NAME), or with a password on the Thrift gateway and
the SQL endpoint. Passwords are read from standard input (one line), sent to
PD over TLS and stored salted and hashed (argon2id). A user without a
password can only use a certificate. What a user may do is granted with
'shale ctl role grant'.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	var withPassword bool
	add := &cobra.Command{
		Use:     "add NAME",
		Short:   "Create a user (with --password-stdin: and its password)",
		Example: "  echo 's3cret pass' | shale ctl user add alice --password-stdin",
		Args:    argsUsage("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := readPassword(cmd, withPassword)
			if err != nil {
				return err
			}
			return runCtl(cmd, func(ctx context.Context, e *ctlEnv) error {
				if _, err := e.cl.CreateUser(ctx, &pdpb.CreateUserRequest{Name: args[0], Password: pw}); err != nil {
					return err
				}
				return e.print(userResult{User: args[0], Password: pw != ""}, func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "user %s created\n", args[0])
					return err
				})
			})
		},
	}
	add.Flags().BoolVar(&withPassword, "password-stdin", false, "read the user's password from standard input")
	del := &cobra.Command{
		Use:   "del NAME",
		Short: "Remove a user and the grants made to it by name",
		Args:  argsUsage("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCtl(cmd, func(ctx context.Context, e *ctlEnv) error {
				if _, err := e.cl.DropUser(ctx, &pdpb.DropUserRequest{Name: args[0]}); err != nil {
					return err
				}
				return e.print(userResult{User: args[0]}, func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "user %s removed\n", args[0])
					return err
				})
			})
		},
	}
	var clear bool
	passwd := &cobra.Command{
		Use:     "passwd NAME",
		Short:   "Set a user's password from standard input (--clear: remove it)",
		Example: "  echo 'n3w pass' | shale ctl user passwd alice",
		Args:    argsUsage("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := readPassword(cmd, !clear)
			if err != nil {
				return err
			}
			return runCtl(cmd, func(ctx context.Context, e *ctlEnv) error {
				if _, err := e.cl.SetPassword(ctx, &pdpb.SetPasswordRequest{Name: args[0], Password: pw}); err != nil {
					return err
				}
				return e.print(userResult{User: args[0], Password: pw != ""}, func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "password of %s changed\n", args[0])
					return err
				})
			})
		},
	}
	passwd.Flags().BoolVar(&clear, "clear", false, "remove the password (certificate login only)")
	cmd.AddCommand(add, del, passwd)
	return cmd
}

type userResult struct {
	User     string `json:"user"`
	Password bool   `json:"password"`
}

// ctlStdin, when set, replaces the command's standard input (tests).
var ctlStdin io.Reader

// readPassword reads one line of standard input when want is set.
func readPassword(cmd *cobra.Command, want bool) (string, error) {
	if !want {
		return "", nil
	}
	in := cmd.InOrStdin()
	if ctlStdin != nil {
		in = ctlStdin
	}
	r := bufio.NewReaderSize(io.LimitReader(in, authz.MaxPasswordLen+2), authz.MaxPasswordLen+2)
	line, err := r.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading the password from standard input: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	switch {
	case pw == "":
		return "", errors.New("no password on standard input (one line expected)")
	case len(pw) > authz.MaxPasswordLen:
		return "", fmt.Errorf("password longer than %d bytes", authz.MaxPasswordLen)
	}
	return pw, nil
}

func newCtlRoleCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "role",
		Short: "Grant, revoke and show permissions and role membership",
		Long: `A role holds grants; users are members of roles, and every user is also the
role of its own name (so 'role grant alice read table:t' grants alice).

PERMISSION is read, write or admin (each includes the ones before it; revoke
also takes all). OBJECT is one of:
  table:NAME        a table
  prefix:TEXT       keys of the raw key space (shale kv) starting with TEXT
  prefix-hex:HEX    the same, the prefix hex-encoded
  cluster           cluster administration (admin only): tables, splits,
                    moves, drains, configuration, users and grants`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(roleChangeCommand(true), roleChangeCommand(false), newCtlRoleShowCommand())
	return cmd
}

// roleChangeCommand is `role grant` (grant) or `role revoke`.
func roleChangeCommand(grant bool) *cobra.Command {
	verb := map[bool]string{true: "grant", false: "revoke"}[grant]
	var member string
	cmd := &cobra.Command{
		Use:   verb + " ROLE (PERMISSION OBJECT | --member USER)",
		Short: map[bool]string{true: "Give a role a permission, or a user a role", false: "Take a permission from a role, or a user out of a role"}[grant],
		Example: fmt.Sprintf(`  shale ctl role %[1]s analysts read table:orders
  shale ctl role %[1]s analysts --member alice
  shale ctl role %[1]s bob write prefix:app/
  shale ctl role %[1]s ops admin cluster`, verb),
		Args: func(cmd *cobra.Command, args []string) error {
			if (member != "" && len(args) != 1) || (member == "" && len(args) != 3) {
				return fmt.Errorf("%s: want ROLE PERMISSION OBJECT, or ROLE --member USER (usage: %s)", ctlName(cmd), cmd.UseLine())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var g *pdpb.AuthGrant
			var table string
			if member == "" {
				var err error
				if g, table, err = parseGrant(args[1], args[2], !grant); err != nil {
					return err
				}
			}
			return runCtl(cmd, func(ctx context.Context, e *ctlEnv) error {
				var err error
				if grant {
					_, err = e.cl.Grant(ctx, &pdpb.GrantRequest{Role: args[0], Grant: g, Member: member, Table: table})
				} else {
					_, err = e.cl.Revoke(ctx, &pdpb.RevokeRequest{Role: args[0], Grant: g, Member: member, Table: table})
				}
				if err != nil {
					return err
				}
				what := strings.Join(args[1:], " ")
				if member != "" {
					what = "member " + member
				}
				return e.print(map[string]string{"role": args[0], verb: what}, func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "%s: %s %s\n", args[0], verb, what)
					return err
				})
			})
		},
	}
	cmd.Flags().StringVar(&member, "member", "", "the user to add to (or remove from) the role")
	return cmd
}

// parseGrant parses PERMISSION OBJECT; a table is returned by name for PD
// to resolve.
func parseGrant(perm, object string, revoke bool) (*pdpb.AuthGrant, string, error) {
	g := &pdpb.AuthGrant{}
	switch strings.ToLower(perm) {
	case "read":
		g.Permission = pdpb.AuthPermission_READ
	case "write":
		g.Permission = pdpb.AuthPermission_WRITE
	case "admin":
		g.Permission = pdpb.AuthPermission_ADMIN
	case "all":
		if !revoke {
			return nil, "", errors.New("PERMISSION: grant read, write or admin")
		}
	default:
		return nil, "", fmt.Errorf("PERMISSION: want read, write or admin, got %q", perm)
	}
	kind, arg, _ := strings.Cut(object, ":")
	switch kind {
	case "table":
		if arg == "" {
			return nil, "", errors.New("OBJECT: table:NAME needs a table name")
		}
		return g, arg, nil
	case "prefix":
		g.On = &pdpb.AuthGrant_KeyPrefix{KeyPrefix: []byte(arg)}
	case "prefix-hex":
		k, err := hex.DecodeString(arg)
		if err != nil {
			return nil, "", fmt.Errorf("OBJECT: prefix-hex:%s is not hex", arg)
		}
		g.On = &pdpb.AuthGrant_KeyPrefix{KeyPrefix: k}
	case "cluster":
		g.On = &pdpb.AuthGrant_Cluster{Cluster: true}
	default:
		return nil, "", fmt.Errorf("OBJECT: want table:NAME, prefix:TEXT, prefix-hex:HEX or cluster, got %q", object)
	}
	return g, "", nil
}

// roleView is one role in `role show`.
type roleView struct {
	Role    string   `json:"role"`
	Grants  []string `json:"grants"`
	Members []string `json:"members"`
}

func newCtlRoleShowCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "show [ROLE]",
		Short: "List roles (or one) with their grants and members",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCtl(cmd, func(ctx context.Context, e *ctlEnv) error {
				resp, err := e.cl.ListAuth(ctx, &pdpb.ListAuthRequest{})
				if err != nil {
					return err
				}
				views := roleViews(resp.State)
				if len(args) == 1 {
					views = filterRole(views, args[0])
				}
				return e.print(views, func(w io.Writer) error { return writeRoles(w, views) })
			})
		},
	}
}

func roleViews(st *pdpb.AuthState) []roleView {
	byName := map[string]*roleView{}
	get := func(name string) *roleView {
		if byName[name] == nil {
			byName[name] = &roleView{Role: name, Grants: []string{}, Members: []string{}}
		}
		return byName[name]
	}
	for _, r := range st.GetRoles() {
		v := get(r.Name)
		for _, g := range r.Grants {
			v.Grants = append(v.Grants, formatGrant(g))
		}
	}
	for _, u := range st.GetUsers() {
		for _, r := range u.Roles {
			v := get(r)
			v.Members = append(v.Members, u.Name)
		}
	}
	out := make([]roleView, 0, len(byName))
	for _, v := range byName {
		sort.Strings(v.Grants)
		sort.Strings(v.Members)
		out = append(out, *v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Role < out[j].Role })
	return out
}

func filterRole(views []roleView, name string) []roleView {
	for _, v := range views {
		if v.Role == name {
			return []roleView{v}
		}
	}
	return []roleView{}
}

func formatGrant(g *pdpb.AuthGrant) string {
	perm := strings.ToLower(g.Permission.String())
	switch on := g.On.(type) {
	case *pdpb.AuthGrant_TableId:
		if g.TableName != "" {
			return fmt.Sprintf("%s table:%s", perm, g.TableName)
		}
		return fmt.Sprintf("%s table-id:%d", perm, on.TableId)
	case *pdpb.AuthGrant_KeyPrefix:
		if printable(on.KeyPrefix) {
			return fmt.Sprintf("%s prefix:%s", perm, on.KeyPrefix)
		}
		return fmt.Sprintf("%s prefix-hex:%x", perm, on.KeyPrefix)
	case *pdpb.AuthGrant_Cluster:
		return perm + " cluster"
	}
	return perm + " ?"
}

// printable reports whether a prefix reads as text (printable ASCII, no
// spaces or commas, which the listing uses).
func printable(b []byte) bool {
	for _, c := range b {
		if c <= ' ' || c > '~' || c == ',' {
			return false
		}
	}
	return len(b) > 0
}

func writeRoles(w io.Writer, views []roleView) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROLE\tGRANTS\tMEMBERS")
	for _, v := range views {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", v.Role, orDash(strings.Join(v.Grants, ", ")), orDash(strings.Join(v.Members, ", ")))
	}
	return tw.Flush()
}
