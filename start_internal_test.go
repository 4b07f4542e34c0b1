package tokengate

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

// A request that waited for a start that failed gets a 503 a client can
// act on: temporarily_unavailable with a Retry-After.
func TestFailedStartAnswers503WithRetryAfter(t *testing.T) {
	h := &Handler{started: newStartup()}
	h.started.finish(errors.New("opening the store: connection refused"))
	rec := httptest.NewRecorder()
	if err := h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/orders", nil), nil); err != nil {
		t.Fatal(err)
	}
	var body map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "1" || body["error"] != "temporarily_unavailable" {
		t.Fatalf("%d, Retry-After %q, body %v", rec.Code, rec.Header().Get("Retry-After"), body)
	}
}
