package httpguard_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tomkit/tomkit/httpguard"
)

type callBody struct {
	Model  string `json:"model"`
	Prompt string `json:"prompt"`
}

func decode(body string, v any) error {
	return httpguard.DecodeJSON(httptest.NewRequest("POST", "/", strings.NewReader(body)), v)
}

func TestDecodeJSONIsStrict(t *testing.T) {
	for _, c := range []struct {
		body string
		ok   bool
	}{
		{`{"model":"m","prompt":"p"}`, true},
		{" {\"model\":\"m\"}\n\t ", true},
		{`{}`, true},
		{`{"model":"m"}{"model":"gpt-4o"}`, false},
		{`{"model":"m"} {}`, false},
		{`{"model":"m"} x`, false},
		{`{"model":"m"}]`, false},
		{`{"model":"m","model":"gpt-4o"}`, false},
		{`{"model":"m","Model":"gpt-4o"}`, false},
		{`{"prompt":"a","pro\u017fmpt":"b"}`, false}, // unknown member
		{`{"model":"\xff"}`, false},
		{`{"model":"m","extra":1}`, false},
		{`["model"]`, false},
		{`"m"`, false},
		{``, false},
	} {
		var v callBody
		err := decode(c.body, &v)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, httpguard.ErrBadRequest)) {
			t.Errorf("DecodeJSON(%q) = %v, want ok %v or ErrBadRequest", c.body, err, c.ok)
		}
	}
	// Names that encoding/json matches to one field are one member.
	var v struct{ Reason string }
	if err := decode(`{"reason":"x","rea`+"\u017f"+`on":"y"}`, &v); err == nil {
		t.Errorf("two spellings of one member accepted: %+v", v)
	}
	// A body over the limit is the *http.MaxBytesError, not a 400.
	r := httptest.NewRequest("POST", "/", strings.NewReader(`{"model":"0123456789"}`))
	r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 8)
	var mb *http.MaxBytesError
	if err := httpguard.DecodeJSON(r, &v); !errors.As(err, &mb) || errors.Is(err, httpguard.ErrBadRequest) {
		t.Errorf("over the limit: %v", err)
	}
}

// FuzzDecodeJSON checks that whatever DecodeJSON accepts is one object
// that encoding/json decodes to the same value, with nothing after it.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{"model":"m","prompt":"p"}`, `{"model":"m"}{}`, `{"Model":"a","model":"b"}`, `{"model":"\xff"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var v callBody
		if decode(string(b), &v) != nil {
			return
		}
		var w callBody
		if err := json.Unmarshal(b, &w); err != nil || w != v {
			t.Fatalf("accepted %q as %+v; encoding/json: %+v %v", b, v, w, err)
		}
	})
}
