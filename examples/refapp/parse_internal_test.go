package main

import (
	"encoding/json"
	"testing"
)

type callBody struct {
	Model  string `json:"model"`
	Prompt string `json:"prompt"`
}

func TestStrictJSON(t *testing.T) {
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
		if err := strictJSON([]byte(c.body), &v); (err == nil) != c.ok {
			t.Errorf("strictJSON(%q) = %v, want ok %v", c.body, err, c.ok)
		}
	}
	// Names that encoding/json matches to one field are one member.
	var v struct{ Reason string }
	if err := strictJSON([]byte(`{"reason":"x","rea`+"\u017f"+`on":"y"}`), &v); err == nil {
		t.Errorf("two spellings of one member accepted: %+v", v)
	}
}

// FuzzStrictJSON checks that whatever strictJSON accepts is one object that
// encoding/json decodes to the same value, with nothing after it.
func FuzzStrictJSON(f *testing.F) {
	for _, s := range []string{`{"model":"m","prompt":"p"}`, `{"model":"m"}{}`, `{"Model":"a","model":"b"}`, `{"model":"\xff"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var v callBody
		if strictJSON(b, &v) != nil {
			return
		}
		var w callBody
		if err := json.Unmarshal(b, &w); err != nil || w != v {
			t.Fatalf("accepted %q as %+v; encoding/json: %+v %v", b, v, w, err)
		}
	})
}
