package issuer_test

import (
	"reflect"
	"testing"

	"github.com/tokengate/caddy-tokengate/issuer"
)

// TestStoreRolesStaySmall: Store is only the sum of its roles (and Close),
// and no role grows past a handful of methods; a new concern gets a role
// of its own.
func TestStoreRolesStaySmall(t *testing.T) {
	store := reflect.TypeFor[issuer.Store]()
	roles := []reflect.Type{
		reflect.TypeFor[issuer.UserStore](), reflect.TypeFor[issuer.ClientStore](),
		reflect.TypeFor[issuer.EntityStore](), reflect.TypeFor[issuer.SecretStore](),
		reflect.TypeFor[issuer.KeyStore](), reflect.TypeFor[issuer.RefreshStore](),
		reflect.TypeFor[issuer.RevocationStore](), reflect.TypeFor[issuer.SettingStore](),
		reflect.TypeFor[issuer.DPoPStore](), reflect.TypeFor[issuer.AuthCodeStore](),
		reflect.TypeFor[issuer.SessionStore](), reflect.TypeFor[issuer.ConsentStore](),
	}
	inRoles := map[string]bool{"Close": true}
	for _, r := range roles {
		if n := r.NumMethod(); n > 8 {
			t.Errorf("%s has %d methods; split it", r.Name(), n)
		}
		if !store.Implements(r) {
			t.Errorf("Store does not include %s", r.Name())
		}
		for m := range r.Methods() {
			inRoles[m.Name] = true
		}
	}
	for m := range store.Methods() {
		if !inRoles[m.Name] {
			t.Errorf("Store method %s belongs to no role", m.Name)
		}
	}
}
