package tokengate

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestMetricsRegisterOnce: registering twice in one registry (two apps,
// or a module provisioned again) shares the collectors instead of failing.
func TestMetricsRegisterOnce(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	a, b := newMetrics(reg, nil), newMetrics(reg, nil)
	a.guard[outcomeAllowed].Inc()
	b.guard[outcomeAllowed].Inc()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := -1.0
	for _, f := range families {
		if f.GetName() != "tokengate_guard_decisions_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			if m.GetLabel()[0].GetValue() == "allowed" {
				got = m.GetCounter().GetValue()
			}
		}
	}
	if got != 2 {
		t.Fatalf("allowed = %v, want 2: the second registration did not reuse the first", got)
	}
}
