package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tokengate/caddy-tokengate/issuer"
)

func userCommand() *cobra.Command {
	c := &cobra.Command{Use: "user", Short: "Manages users who sign in with a password"}
	add := &cobra.Command{
		Use: "add <name>", Short: "Adds a user (or replaces one with the same name)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := readPassword(cmd, "Password for "+args[0]+": ")
			if err != nil {
				return err
			}
			hash, err := issuer.HashPassword(pw)
			if err != nil {
				return err
			}
			id, _ := cmd.Flags().GetString("id")
			return withStore(cmd, func(ctx context.Context, e env) error {
				u := issuer.User{Name: args[0], ID: id, PasswordHash: hash, Roles: splitFlag(cmd, "roles"), Scopes: splitFlag(cmd, "scopes")}
				if err := e.core.Store().PutUser(ctx, u); err != nil {
					return err
				}
				fmt.Fprintf(e.out, "user %s saved\n", args[0])
				return nil
			})
		},
	}
	add.Flags().String("roles", "", "comma-separated roles")
	add.Flags().String("scopes", "", "comma-separated scopes the user may be granted")
	add.Flags().String("id", "", "stable subject id (default: the name)")
	add.Flags().Bool("password-stdin", false, "read the password from standard input")

	list := &cobra.Command{
		Use: "list", Short: "Lists users", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withStore(cmd, func(ctx context.Context, e env) error {
				us, err := e.core.Store().ListUsers(ctx)
				if err != nil {
					return err
				}
				var rows [][]string
				for _, u := range us {
					rows = append(rows, []string{u.Name, u.Subject(), strings.Join(u.Roles, ","), strings.Join(u.Scopes, ",")})
				}
				table(e.out, "NAME\tSUBJECT\tROLES\tSCOPES", rows)
				return nil
			})
		},
	}
	remove := &cobra.Command{
		Use: "remove <name>", Short: "Removes a user", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, func(ctx context.Context, e env) error {
				if err := e.core.Store().DeleteUser(ctx, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(e.out, "user %s removed\n", args[0])
				return nil
			})
		},
	}
	passwd := &cobra.Command{
		Use: "passwd <name>", Short: "Sets a user's password", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, func(ctx context.Context, e env) error {
				u, err := e.core.Store().GetUser(ctx, args[0])
				if err != nil {
					return err
				}
				pw, err := readPassword(cmd, "New password for "+args[0]+": ")
				if err != nil {
					return err
				}
				if u.PasswordHash, err = issuer.HashPassword(pw); err != nil {
					return err
				}
				if err := e.core.Store().PutUser(ctx, u); err != nil {
					return err
				}
				fmt.Fprintf(e.out, "password of %s changed\n", args[0])
				return nil
			})
		},
	}
	passwd.Flags().Bool("password-stdin", false, "read the password from standard input")
	c.AddCommand(add, list, remove, passwd)
	return c
}

func clientCommand() *cobra.Command {
	c := &cobra.Command{Use: "client", Short: "Manages OAuth 2.0 clients"}
	add := &cobra.Command{
		Use: "add <id>", Short: "Adds a client and prints its secret once", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, func(ctx context.Context, e env) error {
				if _, err := e.core.Store().GetClient(ctx, args[0]); err == nil {
					return fmt.Errorf("client %s exists; use `client rotate` for a new secret", args[0])
				} else if !errors.Is(err, issuer.ErrNotFound) {
					return err
				}
				cl := issuer.Client{ID: args[0], Roles: splitFlag(cmd, "roles"), Scopes: splitFlag(cmd, "scopes"), Grants: splitFlag(cmd, "grants")}
				return saveWithSecret(ctx, cmd, e, cl)
			})
		},
	}
	add.Flags().String("roles", "", "comma-separated roles")
	add.Flags().String("scopes", "", "comma-separated scopes the client may be granted")
	add.Flags().String("grants", "", "comma-separated grant types the client may use (default: all)")
	add.Flags().Bool("json", false, "print {client_id, client_secret} as JSON")

	rotate := &cobra.Command{
		Use: "rotate <id>", Short: "Gives a client a new secret and prints it once; the old one stops working", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, func(ctx context.Context, e env) error {
				cl, err := e.core.Store().GetClient(ctx, args[0])
				if err != nil {
					return err
				}
				return saveWithSecret(ctx, cmd, e, cl)
			})
		},
	}
	rotate.Flags().Bool("json", false, "print {client_id, client_secret} as JSON")

	list := &cobra.Command{
		Use: "list", Short: "Lists clients", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withStore(cmd, func(ctx context.Context, e env) error {
				cs, err := e.core.Store().ListClients(ctx)
				if err != nil {
					return err
				}
				var rows [][]string
				for _, c := range cs {
					rows = append(rows, []string{c.ID, strings.Join(c.Roles, ","), strings.Join(c.Scopes, ","), strings.Join(c.Grants, ",")})
				}
				table(e.out, "CLIENT_ID\tROLES\tSCOPES\tGRANTS", rows)
				return nil
			})
		},
	}
	remove := &cobra.Command{
		Use: "remove <id>", Short: "Removes a client", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, func(ctx context.Context, e env) error {
				if err := e.core.Store().DeleteClient(ctx, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(e.out, "client %s removed\n", args[0])
				return nil
			})
		},
	}
	c.AddCommand(add, list, remove, rotate)
	return c
}

// saveWithSecret gives cl a fresh secret, stores only its keyed hash and
// prints the secret: this is the only time it is ever shown.
func saveWithSecret(ctx context.Context, cmd *cobra.Command, e env, cl issuer.Client) error {
	secret, err := issuer.NewSecret("tgs_")
	if err != nil {
		return err
	}
	cl.SecretHash = e.core.Hasher().Hash(secret)
	if err := e.core.Store().PutClient(ctx, cl); err != nil {
		return err
	}
	if asJSON, _ := cmd.Flags().GetBool("json"); asJSON {
		return printJSON(e.out, map[string]string{"client_id": cl.ID, "client_secret": secret})
	}
	fmt.Fprintf(e.out, "client_id: %s\nclient_secret: %s\n", cl.ID, secret)
	return nil
}
