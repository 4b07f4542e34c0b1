package tokengate

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	"github.com/tokengate/caddy-tokengate/cli"
)

// The `caddy tokengate` commands are registered here, by the module's own
// package, because a build (`xcaddy build --with
// github.com/tokengate/caddy-tokengate`) links only the package it names.
// This is all the runtime takes from cli: store and master-key resolution
// live in internal/gateway/storeconf, which both import.
func init() { caddycmd.RegisterCommand(cli.Command()) }
