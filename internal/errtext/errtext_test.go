package errtext

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"
)

var errNotFound = errors.New("retention: object not found")

type pathErr struct{ path string }

func (p *pathErr) Error() string { return "retention: bad path " + p.path }

func TestErrorf(t *testing.T) {
	inner := fmt.Errorf("%w: %q", errNotFound, "k")
	for _, c := range []struct {
		err  error
		want string
	}{
		{Errorf("retention: get %q: %w", "k", inner), `retention: get "k": object not found: "k"`},
		{Errorf("retention: get %q: %w", "k", Errorf("retention: read: %w", inner)), `retention: get "k": read: object not found: "k"`},
		{Errorf("pgstore: get %q: %w", "k", inner), `pgstore: get "k": retention: object not found: "k"`},
		{Errorf("retention: %w: %w", errNotFound, fs.ErrNotExist), `retention: object not found: file does not exist`},
		{Errorf("%w: %q", errNotFound, "k"), `retention: object not found: "k"`},
		{Errorf("retention: %v", inner), `retention: object not found: "k"`},
	} {
		if got := c.err.Error(); got != c.want {
			t.Errorf("got %q, want %q", got, c.want)
		}
	}
	err := Errorf("retention: get %q: %w", "k", &pathErr{"x"})
	if !errors.Is(Errorf("retention: get: %w", inner), errNotFound) {
		t.Error("errors.Is lost the wrapped sentinel")
	}
	var pe *pathErr
	if !errors.As(err, &pe) || pe.path != "x" {
		t.Error("errors.As lost the wrapped error")
	}
	if got := err.Error(); got != `retention: get "k": bad path x` {
		t.Errorf("got %q", got)
	}
}
