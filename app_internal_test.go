package tokengate

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/config"
	"github.com/tokengate/caddy-tokengate/issuer"
)

func newMasterKey(t *testing.T) string {
	t.Helper()
	k, err := issuer.NewMasterKeyString()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestAppSharesAndClosesCores: apps asking for one store get one Core,
// each app holds it once however many of its sites ask, and it stays open
// until the last app holding it is cleaned up, as across a reload.
func TestAppSharesAndClosesCores(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tg.db")
	spec := CoreSpec{Store: &config.Store{Driver: "sqlite", DSN: path}, MasterKey: newMasterKey(t), Log: zap.NewNop()}
	key := "sqlite:" + path
	refs := func() int {
		n, _ := corePool.References(key)
		return n
	}
	old, next := new(App), new(App) // the configs before and after a reload
	t.Cleanup(func() { old.Cleanup(); next.Cleanup() })
	core, err := old.Core(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []*App{old, next, next} { // two sites of the new config
		if c, err := a.Core(ctx, spec); err != nil || c != core {
			t.Fatalf("Core = %p, %v; want the shared %p", c, err, core)
		}
	}
	if n := refs(); n != 2 {
		t.Fatalf("%d holds on the store, want one per app", n)
	}
	if got := next.cores(); len(got) != 1 || got[0] != core {
		t.Fatalf("the new config's cores: %v", got)
	}
	if err := old.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if _, err := core.Store().ListKeys(ctx); err != nil {
		t.Fatalf("the Core closed while the new config holds it: %v", err)
	}
	if err := next.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if n := refs(); n != 0 {
		t.Fatalf("%d holds left", n)
	}
	if _, err := core.Store().ListKeys(ctx); err == nil {
		t.Fatal("the Core is still open after the last app holding it was cleaned up")
	}
}

// TestAppCoreRefusesAnotherMasterKey: a site naming a store already open
// with another master key is refused, in the same config or the next, and
// the refusal holds nothing.
func TestAppCoreRefusesAnotherMasterKey(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tg.db")
	store := &config.Store{Driver: "sqlite", DSN: path}
	first := new(App)
	t.Cleanup(func() { first.Cleanup() })
	if _, err := first.Core(ctx, CoreSpec{Store: store, MasterKey: newMasterKey(t)}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		app  *App
	}{
		{"same config", first},
		{"next config", new(App)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.app != first {
				t.Cleanup(func() { tc.app.Cleanup() })
			}
			_, err := tc.app.Core(ctx, CoreSpec{Store: store, MasterKey: newMasterKey(t)})
			if err == nil || !strings.Contains(err.Error(), "sites sharing a store must use the same master_key") {
				t.Fatalf("another master key: %v", err)
			}
			if n, _ := corePool.References("sqlite:" + path); n != 1 {
				t.Fatalf("%d holds on the store, want the first app's only", n)
			}
		})
	}
}
