// Command caddy is Caddy with the standard modules and tokengate, for tests
// and local runs. `xcaddy.sh` is the documented way to build a release binary.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/tokengate/caddy-tokengate"
)

func main() {
	caddycmd.Main()
}
