package cli

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/tokengate/caddy-tokengate/internal/gateway/storeconf"
	"github.com/tokengate/caddy-tokengate/issuer"
	"github.com/tokengate/caddy-tokengate/issuer/sqlstore"
)

func resealCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "reseal [--old-key-file <file> | --old-key-env <VAR>]",
		Short: "Moves a store's private keys and entity secrets to the current master key",
		Long: `Re-encrypts every private signing key and entity secret of the store under
the master key Caddy will use (master_key of --config, TOKENGATE_MASTER_KEY,
or the generated tokengate/master.key in Caddy's data directory, created if
missing), and records that key's fingerprint in the store.

Values are read as plain text, or under the old key given with
--old-key-file or --old-key-env. It runs in one transaction: on any error
nothing changes, and running it twice is harmless. Stop every Caddy
instance using the store first, and start them with the new key.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			oldFile, _ := cmd.Flags().GetString("old-key-file")
			oldEnv, _ := cmd.Flags().GetString("old-key-env")
			if oldFile != "" && oldEnv != "" {
				return usagef("give --old-key-file or --old-key-env, not both")
			}
			var old *issuer.MasterKey
			var err error
			switch {
			case oldFile != "":
				if old, err = storeconf.ReadKeyFile(oldFile); err != nil {
					return err
				}
			case oldEnv != "":
				v := os.Getenv(oldEnv)
				if v == "" {
					return fmt.Errorf("--old-key-env: %s is not set", oldEnv)
				}
				if old, err = issuer.ParseMasterKey(v); err != nil {
					return fmt.Errorf("--old-key-env %s: %w", oldEnv, err)
				}
			}
			ctx := context.Background()
			_, driver, dsn, masterKey, err := storeFlags(cmd)
			if err != nil {
				return err
			}
			next, keyFile, err := storeconf.ResolveMasterKey(masterKey, true)
			if err != nil {
				return err
			}
			st, err := sqlstore.OpenExisting(ctx, driver, dsn)
			if err != nil {
				return err
			}
			defer st.Close()
			stats, err := issuer.Reseal(ctx, st, old, next)
			if err != nil {
				return fmt.Errorf("resealing (nothing was changed): %w", err)
			}
			out := map[string]any{"keys": stats.Keys, "secrets": stats.Secrets, "were_plain": stats.WasPlain,
				"old_fingerprint": old.Fingerprint(), "fingerprint": next.Fingerprint()}
			if keyFile != "" {
				out["key_file"] = keyFile
			}
			if asJSON, _ := cmd.Flags().GetBool("json"); asJSON {
				return printJSON(cmd.OutOrStdout(), out)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "resealed %d signing key(s) and %d entity secret(s) (%d were plain text) under master key %s\n",
				stats.Keys, stats.Secrets, stats.WasPlain, next.Fingerprint())
			return nil
		},
	}
	c.Flags().String("old-key-file", "", "file holding the key the store is sealed under now (e.g. the generated master.key)")
	c.Flags().String("old-key-env", "", "environment variable holding the key the store is sealed under now")
	c.Flags().Bool("json", false, "print the result as one JSON object")
	return c
}
