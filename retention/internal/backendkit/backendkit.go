// Package backendkit is what the backends in retention/* share with the
// retention core without exporting it: the key rule and the stored form
// of a [retention.Meta].
package backendkit

import (
	"github.com/tomkit/tomkit/retention"
	"github.com/tomkit/tomkit/retention/internal/record"
)

// CheckKey returns [retention.ErrInvalidKey] unless key is acceptable:
// 1 to [retention.MaxKeyLen] bytes of valid UTF-8 without control
// characters.
func CheckKey(key string) error { return record.CheckKey(key) }

// EncodeMeta returns the stored encoding of m, or
// [retention.ErrCorruptMeta] when m is inconsistent. Backends that store
// the record as bytes use it.
func EncodeMeta(m retention.Meta) ([]byte, error) {
	return record.Encode(record.Record{Class: string(m.Class), Created: m.Created, RetainUntil: m.RetainUntil,
		LockUntil: m.LockUntil, Mode: string(m.Mode), LegalHold: m.LegalHold, Tenant: m.Tenant, Subject: m.Subject})
}

// ParseMeta parses a record written by [EncodeMeta]. Anything else is
// [retention.ErrCorruptMeta].
func ParseMeta(b []byte) (retention.Meta, error) {
	r, err := record.Parse(b)
	if err != nil {
		return retention.Meta{}, err
	}
	return retention.Meta{Class: retention.Class(r.Class), Created: r.Created, RetainUntil: r.RetainUntil,
		LockUntil: r.LockUntil, Mode: retention.LockMode(r.Mode), LegalHold: r.LegalHold, Tenant: r.Tenant, Subject: r.Subject}, nil
}
