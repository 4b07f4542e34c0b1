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

func consentCommand() *cobra.Command {
	c := &cobra.Command{Use: "consent", Short: "Lists or forgets what users consented to on browser sign-in's consent page"}
	list := &cobra.Command{
		Use: "list --user <name>", Short: "Lists the clients a user consented to, and the scopes", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			name, err := userFlag(cmd)
			if err != nil {
				return err
			}
			return withStore(cmd, readStore, func(ctx context.Context, e env) error {
				subject, err := consentSubject(ctx, e, name)
				if err != nil {
					return err
				}
				cs, err := e.core.Store().ListConsents(ctx, subject)
				if err != nil {
					return fmt.Errorf("listing the consent of %s: %w", name, err)
				}
				var rows [][]string
				for _, c := range cs {
					rows = append(rows, []string{c.ClientID, strings.Join(c.Scopes, ","), c.GrantedAt.UTC().Format(time.RFC3339)})
				}
				return table(e, "CLIENT_ID\tSCOPES\tGRANTED_AT", rows)
			})
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke --user <name> [--client <id>]",
		Short: "Forgets a user's consent to one client, or to every client: the consent page asks again",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			name, err := userFlag(cmd)
			if err != nil {
				return err
			}
			client, _ := cmd.Flags().GetString("client")
			return withStore(cmd, writeStore, func(ctx context.Context, e env) error {
				subject, err := consentSubject(ctx, e, name)
				if err != nil {
					return err
				}
				n, err := e.core.Store().DeleteConsent(ctx, subject, client)
				if err != nil {
					return fmt.Errorf("forgetting the consent of %s: %w", name, err)
				}
				if client != "" && n == 0 {
					return fmt.Errorf("user %s has not consented to client %s (see `consent list --user %s`)", name, client, name)
				}
				out := map[string]any{"user": name, "status": "revoked", "forgotten": n}
				if client != "" {
					out["client_id"] = client
				}
				return e.emit(out, func() {
					if client != "" {
						fmt.Fprintf(e.out, "the consent of %s to %s is forgotten: the client's next sign-in asks again\n", name, client)
						return
					}
					fmt.Fprintf(e.out, "%d consent(s) of %s forgotten: each client's next sign-in asks again\n", n, name)
				})
			})
		},
	}
	for _, sub := range []*cobra.Command{list, revoke} {
		sub.Flags().String("user", "", "the user: a gateway user's name, or a user_table user's subject (<table>:<id>)")
	}
	revoke.Flags().String("client", "", "forget the consent to this client only (default: to every client)")
	c.AddCommand(list, revoke)
	return c
}

// userFlag returns --user, which the consent commands need.
func userFlag(cmd *cobra.Command) (string, error) {
	name, _ := cmd.Flags().GetString("user")
	if name == "" {
		return "", usagef("--user is required")
	}
	return name, nil
}

// consentSubject returns the subject whose consent --user names: a user
// declared in the --config Caddyfile (which shadows the store), a stored
// user (its id, if it has one), or, for a name with ':', which no gateway
// user has, a user_table user's subject as it is.
func consentSubject(ctx context.Context, e env, name string) (string, error) {
	if e.config != nil {
		for _, u := range e.config.Users {
			if u.Name == name {
				return name, nil
			}
		}
	}
	u, err := e.core.Store().GetUser(ctx, name)
	switch {
	case err == nil:
		return u.Subject(), nil
	case !errors.Is(err, issuer.ErrNotFound):
		return "", fmt.Errorf("looking user %s up: %w", name, err)
	case strings.Contains(name, ":"):
		return name, nil
	}
	return "", fmt.Errorf("no user %s: give a user of the store or of the --config Caddyfile, or a user_table user's subject as <table>:<id>", name)
}
