// Package cli implements `caddy tokengate …`: managing users, clients and
// signing keys on the store a Caddyfile names, or on one given directly.
package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/tokengate/caddy-tokengate/config"
	"github.com/tokengate/caddy-tokengate/internal/gateway/storeconf"
	"github.com/tokengate/caddy-tokengate/issuer"
	"github.com/tokengate/caddy-tokengate/issuer/sqlstore"
)

// Command is the `caddy tokengate` command.
func Command() caddycmd.Command {
	return caddycmd.Command{
		Name:  "tokengate",
		Usage: "<user|client|entity|consent|keys|revoke|hash-password> …",
		Short: "Manages tokengate users, clients, entities and signing keys",
		Long: `Manages the tokengate store: users, clients and signing keys.

Every command works on one store: the one the tokengate block of a
Caddyfile names (--config), one given directly (--store sqlite:<path> or
--store postgres:<dsn>), or by default the SQLite store in Caddy's data
directory. With --store, the master key is read from TOKENGATE_MASTER_KEY.
Without a master key, the one Caddy generated in its data directory
(tokengate/master.key) is used, as Caddy does.`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.PersistentFlags().String("config", "", "Caddyfile whose tokengate block names the store")
			cmd.PersistentFlags().String("store", "", "sqlite:<path> or postgres:<dsn>")
			cmd.PersistentFlags().Bool("json", false, "print one JSON object per line instead of text")
			cmd.AddCommand(userCommand(), clientCommand(), entityCommand(), consentCommand(), keysCommand(), revokeCommand(),
				hashPasswordCommand(), resealCommand())
			withExitCodes(cmd)
		},
	}
}

// env is what a subcommand works with.
type env struct {
	core   *issuer.Core
	out    io.Writer
	config *config.Gateway // the --config Caddyfile's tokengate block, if given
	json   bool            // --json: one JSON object per line
}

func jsonFlag(cmd *cobra.Command) bool {
	v, _ := cmd.Flags().GetBool("json")
	return v
}

// emit prints one JSON object per line with --json; otherwise line().
func (e env) emit(v any, line func()) error {
	if e.json {
		return printJSON(e.out, v)
	}
	line()
	return nil
}

// declared reports whether the Caddyfile declares a principal of kind
// ("user", "client" or "entity") named id: the CLI refuses to create a
// stored copy that the Caddyfile's would shadow.
func (e env) declared(kind, id string) error {
	if e.config == nil {
		return nil
	}
	found := false
	switch kind {
	case "user":
		for _, u := range e.config.Users {
			found = found || u.Name == id
		}
	case "client":
		for _, c := range e.config.Clients {
			found = found || c.ID == id
		}
	case "entity":
		for _, en := range e.config.Entities {
			found = found || en.ID == id
		}
	}
	if found {
		return fmt.Errorf("%s %s is declared in the Caddyfile; a stored %s of that name would never be used: change it in the Caddyfile, or pick another name",
			kind, id, kind)
	}
	return nil
}

// Exit statuses of `caddy tokengate …` (documented in the README).
const (
	ExitOK    = 0 // the command did what it says
	ExitError = 1 // it could not: the message says why
	ExitUsage = 2 // it was called wrongly: unknown flag, missing argument
)

// usageError is a mistake in how a command was called: exit status 2.
type usageError struct{ error }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// withExitCodes makes c and its subcommands report every mistake as plain
// text on stderr (not as a Caddy log line), and exit with ExitUsage on a
// usage mistake (unknown flag or subcommand, missing argument) and with
// ExitError on any other error. A command that only groups others (user,
// client, ...) is a usage mistake without a known subcommand.
func withExitCodes(c *cobra.Command) {
	c.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fail(cmd, ExitUsage, fmt.Errorf("%w (usage: %s; see --help)", err, cmd.UseLine()))
	})
	for _, sub := range c.Commands() {
		withExitCodes(sub)
	}
	if c.RunE == nil && c.Run == nil && c.HasSubCommands() {
		c.Args = cobra.NoArgs // an unknown subcommand: `unknown command "lst" for "tokengate user"`
		c.RunE = func(cmd *cobra.Command, _ []string) error {
			var names []string
			for _, sub := range cmd.Commands() {
				if sub.IsAvailableCommand() {
					names = append(names, sub.Name())
				}
			}
			return usagef("%s needs a subcommand: %s (see --help)", cmd.CommandPath(), strings.Join(names, ", "))
		}
	}
	if c.RunE == nil {
		return
	}
	run, validate := c.RunE, c.Args
	c.Args = cobra.ArbitraryArgs
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if validate != nil {
			if err := validate(cmd, args); err != nil {
				return fail(cmd, ExitUsage, fmt.Errorf("%w (usage: %s; see --help)", err, cmd.UseLine()))
			}
		}
		err := run(cmd, args)
		var ue usageError
		switch {
		case errors.As(err, &ue):
			return fail(cmd, ExitUsage, err)
		case err != nil:
			return fail(cmd, ExitError, err)
		}
		return nil
	}
}

// fail prints err as one plain line on stderr and returns what makes
// Caddy's main exit with status.
func fail(cmd *cobra.Command, status int, err error) error {
	fmt.Fprintln(cmd.ErrOrStderr(), "Error: "+err.Error())
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	if status == ExitError {
		return err // Caddy's main exits 1 on any other error
	}
	// Only an error made by WrapCommandFuncForCobra carries another exit
	// status through Caddy's main; it has nothing left to print.
	exit := caddycmd.WrapCommandFuncForCobra(func(caddycmd.Flags) (int, error) { return status, nil })(cmd, nil)
	return &cliError{exit: exit, err: err}
}

// cliError is err, unwrapping to the exit status Caddy's main reads.
type cliError struct{ exit, err error }

func (e *cliError) Error() string   { return e.err.Error() }
func (e *cliError) Unwrap() []error { return []error{e.err, e.exit} }

// storeUse says what a command may do to its store.
type storeUse int

const (
	readStore   storeUse = iota // reads; never creates or migrates
	writeStore                  // writes; the store must exist (a typo in --store is an error, not a new store)
	createStore                 // writes, creating the store when missing: the add commands
	revokeStore                 // writes revocations only: needs no master key (nothing sealed is touched)
)

// storeFlags resolves the store and master key named by --config/--store.
func storeFlags(cmd *cobra.Command) (cfgPath, driver, dsn, masterKey string, err error) {
	cfgPath, _ = cmd.Flags().GetString("config")
	storeFlag, _ := cmd.Flags().GetString("store")
	driver, dsn, masterKey, err = resolveStore(cfgPath, storeFlag)
	return cfgPath, driver, dsn, masterKey, err
}

// withStore opens the store the flags name for use, runs f, and closes it.
func withStore(cmd *cobra.Command, use storeUse, f func(ctx context.Context, e env) error) error {
	ctx := context.Background()
	cfgPath, driver, dsn, masterKey, err := storeFlags(cmd)
	if err != nil {
		return err
	}
	mk, _, err := storeconf.ResolveMasterKey(masterKey, false)
	if err != nil {
		return err
	}
	if use == writeStore || use == revokeStore {
		if err := sqlstore.Exists(ctx, driver, dsn); err != nil {
			return fmt.Errorf("%w (check --config/--store; `user add`, `client add` and `entity add` create a store)", err)
		}
	}
	open := sqlstore.Open
	if use == readStore {
		open = sqlstore.OpenExisting
	}
	st, err := open(ctx, driver, dsn)
	if err != nil {
		return err
	}
	core, err := issuer.OpenCore(ctx, st, issuer.CoreOptions{MasterKey: mk, SyncInterval: -1, ReadOnly: use == readStore,
		Unsealed: use == revokeStore})
	if err != nil {
		st.Close()
		return err
	}
	defer core.Close()
	var principals *config.Gateway
	if cfgPath != "" {
		g, _ := gatewayFromCaddyfile(cfgPath) // read once already by resolveStore
		principals = &g
	}
	err = f(ctx, env{core: core, out: cmd.OutOrStdout(), config: principals, json: jsonFlag(cmd)})
	if errors.Is(err, issuer.ErrNotFound) {
		// The CLI sees only the store; Caddyfile-declared principals live in the config.
		return fmt.Errorf("%w (not in the store; users, clients and entities declared in a Caddyfile are changed there)", err)
	}
	return err
}

// resolveStore finds the store and master key from --config or --store.
func resolveStore(cfgPath, storeFlag string) (driver, dsn, masterKey string, err error) {
	repl := caddy.NewReplacer()
	switch {
	case cfgPath != "" && storeFlag != "":
		return "", "", "", usagef("give --config or --store, not both")
	case storeFlag != "":
		driver, dsn, ok := strings.Cut(storeFlag, ":")
		if !ok || (driver != "sqlite" && driver != "postgres") || dsn == "" {
			return "", "", "", usagef("--store must be sqlite:<path> or postgres:<dsn>")
		}
		return driver, storeconf.ResolveDSN(driver, dsn), os.Getenv("TOKENGATE_MASTER_KEY"), nil
	case cfgPath != "":
		g, err := gatewayFromCaddyfile(cfgPath)
		if err != nil {
			return "", "", "", err
		}
		driver, dsn := storeconf.Location(g.Store, repl)
		return driver, dsn, repl.ReplaceKnown(g.MasterKey, ""), nil
	}
	driver, dsn = storeconf.Default()
	return driver, dsn, os.Getenv("TOKENGATE_MASTER_KEY"), nil
}

// gatewayFromCaddyfile adapts a Caddyfile and returns its tokengate block.
// Several blocks must agree on the store.
func gatewayFromCaddyfile(path string) (config.Gateway, error) {
	body, err := os.ReadFile(path)
	if err != nil {
		return config.Gateway{}, fmt.Errorf("reading Caddyfile: %w", err)
	}
	adapter := caddyconfig.GetAdapter("caddyfile")
	if adapter == nil {
		return config.Gateway{}, errors.New("the caddyfile adapter is not built in")
	}
	js, _, err := adapter.Adapt(body, map[string]any{"filename": path})
	if err != nil {
		return config.Gateway{}, fmt.Errorf("adapting %s: %w", path, err)
	}
	var tree any
	if err := json.Unmarshal(js, &tree); err != nil {
		return config.Gateway{}, err
	}
	var found []config.Gateway
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if v["handler"] == "tokengate" {
				raw, _ := json.Marshal(v)
				var g config.Gateway
				if json.Unmarshal(raw, &g) == nil {
					found = append(found, g)
				}
			}
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(tree)
	if len(found) == 0 {
		return config.Gateway{}, fmt.Errorf("%s has no tokengate block", path)
	}
	for _, g := range found[1:] {
		if storeKey(g) != storeKey(found[0]) {
			return config.Gateway{}, fmt.Errorf("%s names several tokengate stores; pick one with --store", path)
		}
	}
	return found[0], nil
}

func storeKey(g config.Gateway) string {
	if g.Store == nil {
		return ""
	}
	return g.Store.Driver + ":" + g.Store.DSN
}

// readPassword reads a password from stdin (--password-stdin) or the terminal.
func readPassword(cmd *cobra.Command, prompt string) (string, error) {
	if fromStdin, _ := cmd.Flags().GetBool("password-stdin"); fromStdin || !term.IsTerminal(int(os.Stdin.Fd())) {
		line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
		if err != nil && !(errors.Is(err, io.EOF) && line != "") {
			return "", fmt.Errorf("reading password from stdin: %w", err)
		}
		return validPassword(strings.TrimRight(line, "\r\n"))
	}
	fmt.Fprint(os.Stderr, prompt)
	first, err := term.ReadPassword(int(os.Stdin.Fd()))
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return "", err
	}
	fmt.Fprint(os.Stderr, "Confirm: ")
	second, err := term.ReadPassword(int(os.Stdin.Fd()))
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return "", err
	}
	if string(first) != string(second) {
		return "", errors.New("passwords do not match")
	}
	return validPassword(string(first))
}

func validPassword(p string) (string, error) {
	if p == "" {
		return "", errors.New("empty password")
	}
	return p, nil
}

func splitFlag(cmd *cobra.Command, name string) []string {
	v, _ := cmd.Flags().GetString(name)
	var out []string
	for s := range strings.FieldsFuncSeq(v, func(r rune) bool { return r == ',' || r == ' ' }) {
		out = append(out, s)
	}
	return out
}

// table prints rows under header (tab-separated names), or with --json
// one object per row keyed by the lower-cased header names.
func table(e env, header string, rows [][]string) error {
	if e.json {
		names := strings.Split(strings.ToLower(strings.ReplaceAll(header, " ", "_")), "\t")
		for _, r := range rows {
			obj := map[string]string{}
			for i, v := range r {
				obj[names[i]] = v
			}
			if err := printJSON(e.out, obj); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(e.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

func printJSON(out io.Writer, v any) error {
	return json.NewEncoder(out).Encode(v) // one object, one line
}

func hashPasswordCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "hash-password",
		Short: "Prints the argon2id hash of a password, for `user` lines",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pw, err := readPassword(cmd, "Password: ")
			if err != nil {
				return err
			}
			h, err := hashPassword(cmd, pw)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), h)
			return nil
		},
	}
	c.Flags().Bool("password-stdin", false, "read the password from standard input")
	hashFlags(c)
	return c
}

// hashFlags adds the argon2id parameter flags; the defaults are OWASP's.
func hashFlags(c *cobra.Command) {
	c.Flags().Uint32("argon-memory", issuer.DefaultArgonMemory, "argon2id memory in KiB")
	c.Flags().Uint32("argon-time", issuer.DefaultArgonTime, "argon2id passes")
	c.Flags().Uint8("argon-threads", issuer.DefaultArgonThreads, "argon2id parallelism")
}

// hashPassword hashes pw with the parameters hashFlags added.
func hashPassword(cmd *cobra.Command, pw string) (string, error) {
	p := issuer.DefaultHashParams()
	p.Memory, _ = cmd.Flags().GetUint32("argon-memory")
	p.Time, _ = cmd.Flags().GetUint32("argon-time")
	p.Threads, _ = cmd.Flags().GetUint8("argon-threads")
	return issuer.HashPasswordWith(p, pw)
}

func keysCommand() *cobra.Command {
	c := &cobra.Command{Use: "keys", Short: "Lists or rotates signing keys"}
	list := &cobra.Command{
		Use: "list", Short: "Lists signing keys", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withStore(cmd, readStore, func(ctx context.Context, e env) error {
				var rows [][]string
				now := e.core.Now()
				current := e.core.SigningAlg()
				for _, k := range e.core.Keys() {
					state := "active" // the one key of its algorithm that signs
					switch {
					case k.ActivateAt.After(now):
						state = "published"
					case e.core.Superseded(k):
						state = "retired"
					case k.Alg == current:
						state = "active, default" // what sites without signing_alg sign with
					}
					rows = append(rows, []string{k.KID, k.Alg, fmt.Sprint(k.Seq), k.ActivateAt.Format(time.RFC3339), state})
				}
				return table(e, "KID\tALG\tSEQ\tSIGNS FROM\tSTATE", rows)
			})
		},
	}
	rotate := &cobra.Command{
		Use: "rotate", Short: "Adds a new signing key, published within a second and signing after --publish-ahead",
		Long: `Adds a new signing key of --alg to the store. Running gateways add it
to their JWKS when they next sync with the store (within a second) and
sign with it after --publish-ahead. Sites without a signing_alg of their own sign with the
algorithm of the most recently activated key, so --alg ES256 switches them
to ES256; sites with signing_alg keep their algorithm.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			alg, _ := cmd.Flags().GetString("alg")
			ahead, _ := cmd.Flags().GetDuration("publish-ahead")
			if !issuer.ValidAlg(alg) {
				return usagef("--alg %q: want EdDSA, ES256, RS256 or HS256", alg)
			}
			if ahead < issuer.DefaultSyncInterval {
				return usagef("--publish-ahead %v is shorter than the %v in which running gateways pick up new keys: "+
					"tokens signed with the new key could be refused; use at least %v (the default %v also covers JWKS caches)",
					ahead, issuer.DefaultSyncInterval, issuer.DefaultSyncInterval, issuer.DefaultPublishAhead)
			}
			return withStore(cmd, writeStore, func(ctx context.Context, e env) error {
				rec, err := e.core.Rotate(ctx, alg, ahead)
				if err != nil {
					return err
				}
				return e.emit(map[string]string{"kid": rec.KID, "alg": alg, "signs_from": rec.ActivateAt.Format(time.RFC3339)}, func() {
					fmt.Fprintf(e.out, "new %s key %s, in running gateways' JWKS within %v, signing from %s\n", alg, rec.KID,
						issuer.DefaultSyncInterval, rec.ActivateAt.Format(time.RFC3339))
				})
			})
		},
	}
	rotate.Flags().String("alg", issuer.AlgEdDSA, "algorithm of the key to rotate")
	rotate.Flags().Duration("publish-ahead", issuer.DefaultPublishAhead, "how long the new key is published before it signs")
	c.AddCommand(list, rotate)
	return c
}
