// Package clitest runs `caddy tokengate …` in-process for tests.
package clitest

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/tokengate/caddy-tokengate/cli"
)

// Run executes `caddy tokengate args…` with stdin and returns what it
// printed (stdout and stderr together) and its error.
func Run(t testing.TB, stdin string, args ...string) (string, error) {
	t.Helper()
	root := &cobra.Command{Use: "tokengate", SilenceUsage: true, SilenceErrors: true}
	cli.Command().CobraFunc(root)
	var out strings.Builder
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}
