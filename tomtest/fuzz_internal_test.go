package tomtest

import (
	"testing"
	"time"
)

func FuzzHSTSMaxAge(f *testing.F) {
	for _, s := range []string{"max-age=63072000; includeSubDomains", `max-age="1"`, "max-age=", "MAX-AGE=5;max-age=6", "max-age=99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		age, ok := hstsMaxAge(v)
		if ok && age < 0 {
			t.Fatalf("%q: negative max-age %v", v, age)
		}
		if !ok && age != 0 {
			t.Fatalf("%q: invalid but age %v", v, age)
		}
		if ok && age%time.Second != 0 {
			t.Fatalf("%q: age %v not whole seconds", v, age)
		}
	})
}
