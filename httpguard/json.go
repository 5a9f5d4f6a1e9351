package httpguard

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"
)

// DecodeJSON reads the request body as exactly one JSON object into v,
// strictly, so that no two parsers can read it differently: it must be
// valid UTF-8 (encoding/json would quietly replace bad bytes), name no
// unknown member and no member twice (encoding/json keeps the last of
// two, and matches names regardless of case, so "model" and "Model" are
// one member), and nothing but white space may follow it. A body over
// Config.MaxBodyBytes returns the *http.MaxBytesError (413); anything else
// malformed wraps ErrBadRequest (400).
func DecodeJSON(r *http.Request, v any) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return err
		}
		return fmt.Errorf("%w: cannot read body: %v", ErrBadRequest, err)
	}
	if err := strictJSON(body, v); err != nil {
		return fmt.Errorf("%w: malformed JSON body: %v", ErrBadRequest, err)
	}
	return nil
}

var errAmbiguousJSON = errors.New("ambiguous JSON")

func strictJSON(body []byte, v any) error {
	if !utf8.Valid(body) {
		return errAmbiguousJSON
	}
	// The members of the top-level object, each once.
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return errors.New("not a JSON object")
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		k, _ := t.(string)
		fk := foldKey(k)
		if seen[fk] {
			return errAmbiguousJSON
		}
		seen[fk] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return err
		}
	}
	dec = json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data")
	}
	return nil
}

// foldKey maps a member name to a key that is equal for two names exactly
// when encoding/json matches them to the same field (simple Unicode case
// folding, as bytes.EqualFold).
func foldKey(s string) string {
	var b strings.Builder
	for _, r := range s {
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			m = min(m, f)
		}
		b.WriteRune(m)
	}
	return b.String()
}
