// Command bench-revocation measures revocation propagation between two
// Caddy instances on one store (internal/testkit/revbench) and prints p50, p90,
// p99 and max. scripts/bench-revocation.sh builds Caddy and runs it on
// SQLite and on PostgreSQL.
//
//	bench-revocation -caddy ./caddy -driver sqlite|postgres [-dsn <postgres dsn>] [-n 200]
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/tokengate/caddy-tokengate/internal/testkit/revbench"
)

func main() {
	caddyBin := flag.String("caddy", "./caddy", "Caddy binary with tokengate")
	driver := flag.String("driver", "sqlite", "store driver: sqlite or postgres")
	dsn := flag.String("dsn", os.Getenv("TOKENGATE_TEST_POSTGRES_DSN"), "PostgreSQL DSN (a fresh schema is created in it)")
	n := flag.Int("n", 200, "revocations to measure")
	flag.Parse()
	res, err := revbench.Run(*caddyBin, *driver, *dsn, *n)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-revocation:", err)
		os.Exit(1)
	}
	fmt.Println(res)
}
