package tokenservice

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestExpiryDays(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		days int64
		set  bool
		bad  bool
	}{
		{`{}`, 0, false, false},
		{`{"secretExpiryDays":null}`, 0, false, false},
		{`{"secretExpiryDays":100}`, 100, true, false},
		{`{"secretExpiryDays":0}`, 0, false, true},
		{`{"secretExpiryDays":-1}`, 0, false, true},
		{`{"secretExpiryDays":1.5}`, 0, false, true},
		{`{"secretExpiryDays":"10"}`, 0, false, true},
		{`{"secretExpiryDays":true}`, 0, false, true},
		{`{"secretExpiryDays":1e3}`, 0, false, true},
		{`{"secretExpiryDays":99999999999999999999}`, 0, false, true},
	} {
		q := &request{}
		if err := json.Unmarshal([]byte(tc.raw), &q.fields); err != nil {
			t.Fatal(err)
		}
		days, set, err := q.expiryDays()
		if (err != nil) != tc.bad || days != tc.days || set != tc.set {
			t.Errorf("%s: %d %v %v", tc.raw, days, set, err)
		}
	}
}

func TestParseEchoesEnvelope(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/entity/secret/read",
		strings.NewReader(`{"ver":"1.0.0","txnId":"t-1","timestamp":"soon","entityId":"aa-1"}`))
	r.Header.Set("Content-Type", "application/json")
	req, e := parse(httptest.NewRecorder(), r, true)
	if e == nil || e.Status != 400 || req == nil || req.ver != "1.0.0" || req.txn != "t-1" {
		t.Fatalf("parse = %+v, %+v", req, e)
	}
	if ts := isoTime(time.Date(2024, 7, 16, 11, 33, 34, 509e6, time.UTC)); ts != "2024-07-16T11:33:34.509Z" {
		t.Fatalf("isoTime = %s", ts)
	}
}
