// Package errtext formats tomkit's wrapped errors so that their text names
// a package once: "retention: get \"k\": object not found", not
// "retention: get \"k\": retention: object not found".
package errtext

import (
	"fmt"
	"strings"
)

// Errorf is [fmt.Errorf] for a format that starts with a package prefix
// ("retention: "): every error argument whose text starts with the same
// prefix is printed without it. The result wraps the arguments that %w
// names, unchanged, so errors.Is and errors.As see them as before.
func Errorf(format string, args ...any) error {
	prefix, _, ok := strings.Cut(format, ": ")
	if !ok || strings.ContainsAny(prefix, "% ") {
		return fmt.Errorf(format, args...)
	}
	prefix += ": "
	var out []any
	for i, a := range args {
		err, ok := a.(error)
		if !ok || err == nil {
			continue
		}
		if msg := err.Error(); strings.HasPrefix(msg, prefix) {
			if out == nil {
				out = append([]any(nil), args...)
			}
			out[i] = trimmed{msg: msg[len(prefix):], err: err}
		}
	}
	if out == nil {
		return fmt.Errorf(format, args...)
	}
	return fmt.Errorf(format, out...)
}

// trimmed is err with its text shortened.
type trimmed struct {
	msg string
	err error
}

func (t trimmed) Error() string { return t.msg }
func (t trimmed) Unwrap() error { return t.err }
