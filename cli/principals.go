package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

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

func entityCommand() *cobra.Command {
	c := &cobra.Command{Use: "entity", Short: "Manages entities whose secrets the /entity routes serve"}
	add := &cobra.Command{
		Use: "add <id>", Short: "Adds an entity (or replaces its roles)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, func(ctx context.Context, e env) error {
				if err := e.core.Store().PutEntity(ctx, issuer.Entity{ID: args[0], Roles: splitFlag(cmd, "roles")}); err != nil {
					return err
				}
				fmt.Fprintf(e.out, "entity %s saved\n", args[0])
				return nil
			})
		},
	}
	add.Flags().String("roles", "", "comma-separated roles")
	list := &cobra.Command{
		Use: "list", Short: "Lists stored entities and when their secrets expire", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withStore(cmd, func(ctx context.Context, e env) error {
				es, err := e.core.Store().ListEntities(ctx)
				if err != nil {
					return err
				}
				var rows [][]string
				for _, en := range es {
					expires := "no secret"
					if s, err := e.core.Store().CurrentSecret(ctx, en.ID); err == nil {
						expires = s.ExpiresAt.Format(time.RFC3339)
					} else if !errors.Is(err, issuer.ErrNotFound) {
						return err
					}
					rows = append(rows, []string{en.ID, strings.Join(en.Roles, ","), expires})
				}
				table(e.out, "ENTITY\tROLES\tSECRET EXPIRES", rows)
				return nil
			})
		},
	}
	remove := &cobra.Command{
		Use: "remove <id>", Short: "Removes an entity and its secrets", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, func(ctx context.Context, e env) error {
				if err := e.core.Store().DeleteEntity(ctx, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(e.out, "entity %s removed\n", args[0])
				return nil
			})
		},
	}
	c.AddCommand(add, list, remove)
	return c
}

func revokeCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "revoke --sub <subject> | --jti <token id>",
		Short: "Revokes every access token of a subject, or one token by its jti",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sub, _ := cmd.Flags().GetString("sub")
			jti, _ := cmd.Flags().GetString("jti")
			within, _ := cmd.Flags().GetDuration("max-token-age")
			if (sub == "") == (jti == "") {
				return errors.New("give exactly one of --sub and --jti")
			}
			return withStore(cmd, func(ctx context.Context, e env) error {
				now := e.core.Now()
				r := issuer.Revocation{Kind: issuer.RevokeJTI, Key: jti, ExpiresAt: now.Add(within)}
				if sub != "" {
					r = issuer.Revocation{Kind: issuer.RevokeSubject, Key: sub, At: now, ExpiresAt: now.Add(within)}
				}
				if err := e.core.Revoke(ctx, r); err != nil {
					return err
				}
				fmt.Fprintf(e.out, "revoked; running gateways refuse the token(s) within seconds\n")
				return nil
			})
		},
	}
	c.Flags().String("sub", "", "revoke every access token issued to this subject until now")
	c.Flags().String("jti", "", "revoke the access token with this jti")
	c.Flags().Duration("max-token-age", 24*time.Hour, "keep the revocation this long: at least the longest access_ttl")
	return c
}
