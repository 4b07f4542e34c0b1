package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
			id, _ := cmd.Flags().GetString("id")
			if err := errors.Join(issuer.CheckName("user", args[0]), checkOptionalName("user id", id)); err != nil {
				return err
			}
			email, _ := cmd.Flags().GetString("email")
			name, _ := cmd.Flags().GetString("name")
			if err := (issuer.User{Email: email, DisplayName: name}).CheckProfile(); err != nil {
				return usagef("user %s: %v", args[0], err)
			}
			pw, err := readPassword(cmd, "Password for "+args[0]+": ")
			if err != nil {
				return err
			}
			hash, err := hashPassword(cmd, pw)
			if err != nil {
				return err
			}
			return withStore(cmd, createStore, func(ctx context.Context, e env) error {
				if err := e.declared("user", args[0]); err != nil {
					return err
				}
				u := issuer.User{Name: args[0], ID: id, PasswordHash: hash, Roles: splitFlag(cmd, "roles"), Scopes: splitFlag(cmd, "scopes"),
					Email: email, DisplayName: name}
				if err := distinctSubject(ctx, cmd, e, "user", u.Name, u.Subject()); err != nil {
					return err
				}
				prev, err := e.core.Store().GetUser(ctx, args[0])
				replaced := err == nil
				if err != nil && !errors.Is(err, issuer.ErrNotFound) {
					return err
				}
				if err := e.core.Store().PutUser(ctx, u); err != nil {
					return err
				}
				if !replaced {
					return e.emit(map[string]string{"user": args[0], "status": "saved"}, func() { fmt.Fprintf(e.out, "user %s saved\n", args[0]) })
				}
				// A new password ends the sessions the old one started, as
				// passwd does, whichever command sets it.
				return passwordReplaced(ctx, cmd, e, args[0], prev.Subject())
			})
		},
	}
	add.Flags().String("roles", "", "comma-separated roles")
	add.Flags().String("scopes", "", "comma-separated scopes the user may be granted")
	add.Flags().String("id", "", "stable subject id (default: the name)")
	add.Flags().String("email", "", "the user's email address, taken as verified (browser sign-in's email claim)")
	add.Flags().String("name", "", "the user's display name (browser sign-in's name claim)")
	add.Flags().Bool("password-stdin", false, "read the password from standard input")
	hashFlags(add)
	add.Flags().Bool("keep-sessions", false, "replacing a user: keep its access and refresh tokens (default: they stop working)")
	forceFlag(add)
	maxTokenAgeFlag(add)

	list := &cobra.Command{
		Use: "list", Short: "Lists users", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withStore(cmd, readStore, func(ctx context.Context, e env) error {
				us, err := e.core.Store().ListUsers(ctx)
				if err != nil {
					return err
				}
				var rows [][]string
				for _, u := range us {
					rows = append(rows, []string{u.Name, u.Subject(), strings.Join(u.Roles, ","), strings.Join(u.Scopes, ","), u.Email, u.DisplayName})
				}
				return table(e, "NAME\tSUBJECT\tROLES\tSCOPES\tEMAIL\tDISPLAY_NAME", rows)
			})
		},
	}
	remove := &cobra.Command{
		Use: "remove <name>", Short: "Removes a user and ends its sessions", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, writeStore, func(ctx context.Context, e env) error {
				u, err := e.core.Store().GetUser(ctx, args[0])
				if err != nil {
					return err
				}
				if err := e.core.Store().DeleteUser(ctx, args[0]); err != nil {
					return err
				}
				return removed(ctx, cmd, e, "user", args[0], u.Subject())
			})
		},
	}
	passwd := &cobra.Command{
		Use: "passwd <name>", Short: "Sets a user's password", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, writeStore, func(ctx context.Context, e env) error {
				u, err := e.core.Store().GetUser(ctx, args[0])
				if err != nil {
					return err
				}
				pw, err := readPassword(cmd, "New password for "+args[0]+": ")
				if err != nil {
					return err
				}
				if u.PasswordHash, err = hashPassword(cmd, pw); err != nil {
					return err
				}
				if err := e.core.Store().PutUser(ctx, u); err != nil {
					return err
				}
				return passwordReplaced(ctx, cmd, e, args[0], u.Subject())
			})
		},
	}
	passwd.Flags().Bool("password-stdin", false, "read the password from standard input")
	hashFlags(passwd)
	passwd.Flags().Bool("keep-sessions", false, "keep the user's access and refresh tokens (default: they stop working)")
	maxTokenAgeFlag(passwd)
	maxTokenAgeFlag(remove)
	c.AddCommand(add, list, remove, passwd)
	return c
}

func clientCommand() *cobra.Command {
	c := &cobra.Command{Use: "client", Short: "Manages OAuth 2.0 clients"}
	add := &cobra.Command{
		Use: "add <id>", Short: "Adds a client and prints its secret once (a public client has none)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := issuer.CheckName("client", args[0]); err != nil {
				return err
			}
			cl := issuer.Client{ID: args[0], Roles: splitFlag(cmd, "roles"), Scopes: splitFlag(cmd, "scopes"), Grants: splitFlag(cmd, "grants")}
			cl.Public, _ = cmd.Flags().GetBool("public")
			cl.RedirectURIs, _ = cmd.Flags().GetStringArray("redirect-uri")
			cl.PostLogoutRedirectURIs, _ = cmd.Flags().GetStringArray("post-logout-redirect-uri")
			cl.PKCEOptional, _ = cmd.Flags().GetBool("pkce-optional")
			cl.Consent, _ = cmd.Flags().GetBool("consent")
			if err := issuer.CheckBrowserClient(cl); err != nil {
				return usagef("client %s: %v", args[0], err)
			}
			return withStore(cmd, createStore, func(ctx context.Context, e env) error {
				if err := e.declared("client", args[0]); err != nil {
					return err
				}
				if _, err := e.core.Store().GetClient(ctx, args[0]); err == nil {
					return fmt.Errorf("client %s exists; use `client rotate` for a new secret", args[0])
				} else if !errors.Is(err, issuer.ErrNotFound) {
					return err
				}
				if err := distinctSubject(ctx, cmd, e, "client", args[0], args[0]); err != nil {
					return err
				}
				if cl.Public {
					return savePublic(ctx, e, cl)
				}
				return saveWithSecret(ctx, cmd, e, cl)
			})
		},
	}
	add.Flags().String("roles", "", "comma-separated roles")
	add.Flags().String("scopes", "", "comma-separated scopes the client may be granted")
	add.Flags().String("grants", "", "comma-separated grant types the client may use (default: all)")
	add.Flags().Bool("public", false, "a browser or native app: no secret, it names itself with client_id and always uses PKCE")
	add.Flags().StringArray("redirect-uri", nil, "where browser sign-in may send the user back with a code, matched exactly (repeatable)")
	add.Flags().StringArray("post-logout-redirect-uri", nil, "where logout may send the user afterwards (repeatable)")
	add.Flags().Bool("pkce-optional", false, "let this confidential client leave PKCE out of its authorization requests")
	add.Flags().Bool("consent", false, "ask the user's consent before the client gets a code")
	forceFlag(add)

	rotate := &cobra.Command{
		Use: "rotate <id>", Short: "Gives a client a new secret and prints it once; the old one stops working", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, writeStore, func(ctx context.Context, e env) error {
				cl, err := e.core.Store().GetClient(ctx, args[0])
				if err != nil {
					return err
				}
				if cl.Public {
					return fmt.Errorf("client %s is public: it has no secret to rotate", cl.ID)
				}
				return saveWithSecret(ctx, cmd, e, cl)
			})
		},
	}

	list := &cobra.Command{
		Use: "list", Short: "Lists clients", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withStore(cmd, readStore, func(ctx context.Context, e env) error {
				cs, err := e.core.Store().ListClients(ctx)
				if err != nil {
					return err
				}
				var rows [][]string
				for _, c := range cs {
					rows = append(rows, []string{c.ID, strings.Join(c.Roles, ","), strings.Join(c.Scopes, ","), strings.Join(c.Grants, ","),
						clientType(c), strings.Join(c.RedirectURIs, " "), strings.Join(c.PostLogoutRedirectURIs, " "), clientOptions(c)})
				}
				// URIs are space-separated: a URI may hold a comma.
				return table(e, "CLIENT_ID\tROLES\tSCOPES\tGRANTS\tTYPE\tREDIRECT_URIS\tPOST_LOGOUT_REDIRECT_URIS\tOPTIONS", rows)
			})
		},
	}
	remove := &cobra.Command{
		Use: "remove <id>", Short: "Removes a client and ends its sessions", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, writeStore, func(ctx context.Context, e env) error {
				if err := e.core.Store().DeleteClient(ctx, args[0]); err != nil {
					return err
				}
				return removed(ctx, cmd, e, "client", args[0], issuer.ClientPrincipal(issuer.Client{ID: args[0]}).Subject)
			})
		},
	}
	maxTokenAgeFlag(remove)
	c.AddCommand(add, list, remove, rotate)
	return c
}

// savePublic stores a public client, which has no secret, and prints its
// id.
func savePublic(ctx context.Context, e env, cl issuer.Client) error {
	if err := e.core.Store().PutClient(ctx, cl); err != nil {
		return err
	}
	return e.emit(map[string]string{"client_id": cl.ID}, func() {
		fmt.Fprintf(e.out, "client_id: %s\n(a public client: no secret)\n", cl.ID)
	})
}

// clientType is client list's TYPE: RFC 6749 §2.1's client types.
func clientType(c issuer.Client) string {
	if c.Public {
		return "public"
	}
	return "confidential"
}

// clientOptions is client list's OPTIONS: the browser sign-in flags set,
// spelled as client add's flags.
func clientOptions(c issuer.Client) string {
	var out []string
	if c.PKCEOptional {
		out = append(out, "pkce-optional")
	}
	if c.Consent {
		out = append(out, "consent")
	}
	return strings.Join(out, ",")
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
	return e.emit(map[string]string{"client_id": cl.ID, "client_secret": secret}, func() {
		fmt.Fprintf(e.out, "client_id: %s\nclient_secret: %s\n", cl.ID, secret)
	})
}

func entityCommand() *cobra.Command {
	c := &cobra.Command{Use: "entity", Short: "Manages entities whose secrets the /entity routes serve"}
	add := &cobra.Command{
		Use: "add <id>", Short: "Adds an entity (or replaces its roles)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := issuer.CheckName("entity", args[0]); err != nil {
				return err
			}
			return withStore(cmd, createStore, func(ctx context.Context, e env) error {
				if err := e.declared("entity", args[0]); err != nil {
					return err
				}
				if err := distinctSubject(ctx, cmd, e, "entity", args[0], args[0]); err != nil {
					return err
				}
				if err := e.core.Store().PutEntity(ctx, issuer.Entity{ID: args[0], Roles: splitFlag(cmd, "roles")}); err != nil {
					return err
				}
				return e.emit(map[string]string{"entity": args[0], "status": "saved"}, func() { fmt.Fprintf(e.out, "entity %s saved\n", args[0]) })
			})
		},
	}
	add.Flags().String("roles", "", "comma-separated roles")
	forceFlag(add)
	list := &cobra.Command{
		Use: "list", Short: "Lists stored entities and when their secrets expire", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withStore(cmd, readStore, func(ctx context.Context, e env) error {
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
				return table(e, "ENTITY\tROLES\tSECRET EXPIRES", rows)
			})
		},
	}
	remove := &cobra.Command{
		Use: "remove <id>", Short: "Removes an entity and its secrets, and ends its sessions", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, writeStore, func(ctx context.Context, e env) error {
				if err := e.core.Store().DeleteEntity(ctx, args[0]); err != nil {
					return err
				}
				return removed(ctx, cmd, e, "entity", args[0], issuer.EntityPrincipal(issuer.Entity{ID: args[0]}).Subject)
			})
		},
	}
	maxTokenAgeFlag(remove)
	c.AddCommand(add, list, remove)
	return c
}

func revokeCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "revoke --sub <subject> | --jti <token id>",
		Short: "Ends every session of a subject (access and refresh tokens), or revokes one access token by its jti",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sub, _ := cmd.Flags().GetString("sub")
			jti, _ := cmd.Flags().GetString("jti")
			within, _ := cmd.Flags().GetDuration("max-token-age")
			if (sub == "") == (jti == "") {
				return usagef("give exactly one of --sub and --jti")
			}
			return withStore(cmd, revokeStore, func(ctx context.Context, e env) error {
				if jti != "" && !e.core.IssuedJTI(jti) {
					return fmt.Errorf("token id %s not found: this store never issued it (check for a typo, or the --config/--store)", jti)
				}
				if sub != "" {
					if err := endSessions(ctx, cmd, e, sub); err != nil {
						return err
					}
					return e.emit(map[string]string{"status": "revoked", "kind": issuer.RevokeSubject, "key": sub}, func() {
						fmt.Fprintf(e.out, "revoked; its refresh tokens are refused at once, its access tokens by running gateways sharing the store within a second\n")
					})
				}
				// Kept until the longest-lived token any key may still
				// verify has expired, or longer if asked.
				at := e.core.Stamp()
				expires := later(e.core.RevocationExpiry(at), at.Add(within))
				if err := e.core.Revoke(ctx, issuer.Revocation{Kind: issuer.RevokeJTI, Key: jti, ExpiresAt: expires}); err != nil {
					return err
				}
				return e.emit(map[string]string{"status": "revoked", "kind": issuer.RevokeJTI, "key": jti}, func() {
					fmt.Fprintf(e.out, "revoked; running gateways sharing the store refuse the token within a second\n")
				})
			})
		},
	}
	c.Flags().String("sub", "", "revoke every access token issued to this subject until now and end its refresh tokens")
	c.Flags().String("jti", "", "revoke the access token with this jti")
	c.Flags().Duration("max-token-age", 0, "keep the revocation at least this long (default: the longest lifetime any signing key allows)")
	return c
}

// removed ends the sessions of a principal just removed (no new tokens can
// be had, and the ones issued to it must not outlive it) and reports the
// removal. Removed first, so no sign-in can start a session after the end.
func removed(ctx context.Context, cmd *cobra.Command, e env, kind, name, subject string) error {
	if err := endSessions(ctx, cmd, e, subject); err != nil {
		return fmt.Errorf("%s %s removed, but its sessions were not ended (run `caddy tokengate revoke --sub %s`): %w", kind, name, subject, err)
	}
	// Users, clients and entities share one subject space: say whose
	// sessions ended with it.
	others, err := sharingSubject(ctx, e, kind, name, subject)
	if err != nil {
		return fmt.Errorf("%s %s removed and its sessions ended, but the principals sharing its subject %s could not be listed: %w", kind, name, subject, err)
	}
	out := map[string]any{kind: name, "status": "removed", "sessions": "ended"}
	if len(others) > 0 {
		out["also_ended"] = others
	}
	return e.emit(out, func() {
		fmt.Fprintf(e.out, "%s %s removed; its sessions are ended\n", kind, name)
		if len(others) > 0 {
			fmt.Fprintf(e.out, "the sessions of %s, which share the subject %s, are ended too\n", strings.Join(others, ", "), subject)
		}
	})
}

// sharingSubject lists the principals other than kind name (stored, or
// declared in the --config Caddyfile) whose tokens carry subject, as
// "user alice", "client billing".
func sharingSubject(ctx context.Context, e env, kind, name, subject string) ([]string, error) {
	var out []string
	add := func(k, n string) {
		if (k != kind || n != name) && !slices.Contains(out, k+" "+n) {
			out = append(out, k+" "+n)
		}
	}
	users, err := e.core.Store().ListUsers(ctx)
	if err != nil {
		return nil, err
	}
	for _, u := range users {
		if u.Subject() == subject {
			add("user", u.Name)
		}
	}
	// A client's or an entity's subject is its id.
	if _, err := e.core.Store().GetClient(ctx, subject); err == nil {
		add("client", subject)
	} else if !errors.Is(err, issuer.ErrNotFound) {
		return nil, err
	}
	if _, err := e.core.Store().GetEntity(ctx, subject); err == nil {
		add("entity", subject)
	} else if !errors.Is(err, issuer.ErrNotFound) {
		return nil, err
	}
	if c := e.config; c != nil {
		for _, u := range c.Users {
			if u.Name == subject {
				add("user", u.Name)
			}
		}
		for _, cl := range c.Clients {
			if cl.ID == subject {
				add("client", cl.ID)
			}
		}
		for _, en := range c.Entities {
			if en.ID == subject {
				add("entity", en.ID)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// maxTokenAgeFlag adds the --max-token-age that endSessions reads.
func maxTokenAgeFlag(c *cobra.Command) {
	c.Flags().Duration("max-token-age", 24*time.Hour, "keep the revocation this long: at least the longest access_ttl")
}

// endSessions ends every session subject has now: its sign-in sessions,
// access tokens and refresh-token families, on every gateway sharing the store. The
// revocation is kept until the longest-lived token any key may still verify
// has expired, or --max-token-age if longer.
func endSessions(ctx context.Context, cmd *cobra.Command, e env, subject string) error {
	within, _ := cmd.Flags().GetDuration("max-token-age")
	at := e.core.Stamp()
	return e.core.SignOut(ctx, issuer.Revocation{Kind: issuer.RevokeSubject, Key: subject, At: at,
		ExpiresAt: later(e.core.RevocationExpiry(at), at.Add(within))})
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// passwordReplaced reports a user's new password and ends the sessions
// of subject, which the old one started, unless --keep-sessions. It runs
// after the new password is stored, so a sign-in with the old one cannot
// start a session that outlives this.
func passwordReplaced(ctx context.Context, cmd *cobra.Command, e env, name, subject string) error {
	if keep, _ := cmd.Flags().GetBool("keep-sessions"); keep {
		return e.emit(map[string]string{"user": name, "status": "password changed", "sessions": "kept"}, func() {
			fmt.Fprintf(e.out, "password of %s changed; its sessions go on\n", name)
		})
	}
	if err := endSessions(ctx, cmd, e, subject); err != nil {
		return fmt.Errorf("password of %s changed, but its sessions were not ended (run `caddy tokengate revoke --sub %s`): %w", name, subject, err)
	}
	return e.emit(map[string]string{"user": name, "status": "password changed", "sessions": "ended"}, func() {
		fmt.Fprintf(e.out, "password of %s changed; its sessions are ended\n", name)
	})
}

func forceFlag(c *cobra.Command) {
	c.Flags().Bool("force", false, "add it even if a principal of another kind has the same subject")
}

// distinctSubject refuses a new principal whose subject a principal of
// another kind already has (stored, or declared in the --config
// Caddyfile), unless --force: the upstream would see the same identity
// headers for both.
func distinctSubject(ctx context.Context, cmd *cobra.Command, e env, kind, name, subject string) error {
	if force, _ := cmd.Flags().GetBool("force"); force {
		return nil
	}
	others, err := sharingSubject(ctx, e, kind, name, subject)
	if err != nil {
		return fmt.Errorf("checking who else has the subject %s: %w", subject, err)
	}
	others = slices.DeleteFunc(others, func(o string) bool { return strings.HasPrefix(o, kind+" ") })
	if len(others) > 0 {
		return fmt.Errorf("%s %s would have the subject %s, as %s has: the upstream could not tell them apart "+
			"(forward_header can send the principal's kind); pick another name, or pass --force", kind, name, subject, strings.Join(others, " and "))
	}
	return nil
}

// checkOptionalName is issuer.CheckName for a name that may be left out.
func checkOptionalName(what, name string) error {
	if name == "" {
		return nil
	}
	return issuer.CheckName(what, name)
}
