// Package record is the stored form of a retention metadata record: the
// class, retain-until, minimum-retention lock and legal hold that every
// backend keeps beside an object.
//
// The encoding is a small JSON object with a version field. [Parse] is
// strict: unknown fields, trailing data, an unknown version, a malformed
// time or an inconsistent set of instants are all [ErrCorrupt], because a
// record that cannot be trusted must never make an object look live.
package record

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
	"unicode/utf8"
)

// Version is the only record version this package writes and reads.
const Version = 1

// MaxSize bounds an encoded record.
const MaxSize = 4 << 10

// Lock modes as stored.
const (
	ModeNone       = ""
	ModeGovernance = "governance"
	ModeCompliance = "compliance"
)

// ErrCorrupt reports a record that cannot be parsed or is inconsistent.
var ErrCorrupt = errors.New("retention: corrupt metadata record")

// Record is one metadata record.
type Record struct {
	Class       string
	Created     time.Time
	RetainUntil time.Time
	LockUntil   time.Time
	Mode        string
	LegalHold   bool
	Tenant      string
	Subject     string
}

type wire struct {
	V           int    `json:"v"`
	Class       string `json:"class"`
	Created     string `json:"created"`
	RetainUntil string `json:"retain_until"`
	LockUntil   string `json:"lock_until,omitempty"`
	Mode        string `json:"mode,omitempty"`
	LegalHold   bool   `json:"legal_hold,omitempty"`
	Tenant      string `json:"tenant,omitempty"`
	Subject     string `json:"subject,omitempty"`
}

// Validate reports whether r is consistent: a well-formed class, non-zero
// created and retain-until instants with retain-until not before created,
// a lock that ends no later than retain-until and has a known mode, and
// short, valid UTF-8 identity fields.
func (r Record) Validate() error {
	if !ValidClass(r.Class) {
		return fmt.Errorf("%w: bad class %q", ErrCorrupt, r.Class)
	}
	if r.Created.IsZero() || r.RetainUntil.IsZero() {
		return fmt.Errorf("%w: missing created or retain_until", ErrCorrupt)
	}
	if r.RetainUntil.Before(r.Created) {
		return fmt.Errorf("%w: retain_until before created", ErrCorrupt)
	}
	switch r.Mode {
	case ModeNone:
		if !r.LockUntil.IsZero() {
			return fmt.Errorf("%w: lock_until without mode", ErrCorrupt)
		}
	case ModeGovernance, ModeCompliance:
		if r.LockUntil.IsZero() {
			return fmt.Errorf("%w: mode without lock_until", ErrCorrupt)
		}
		if r.LockUntil.After(r.RetainUntil) || r.LockUntil.Before(r.Created) {
			return fmt.Errorf("%w: lock_until outside [created, retain_until]", ErrCorrupt)
		}
	default:
		return fmt.Errorf("%w: unknown mode %q", ErrCorrupt, r.Mode)
	}
	for _, s := range []string{r.Tenant, r.Subject} {
		if len(s) > 256 || !utf8.ValidString(s) {
			return fmt.Errorf("%w: bad tenant or subject", ErrCorrupt)
		}
	}
	return nil
}

// ValidClass reports whether s is a well-formed class name: 1 to 32
// characters from a-z, 0-9, '-' and '_', starting with a letter.
func ValidClass(s string) bool {
	if len(s) == 0 || len(s) > 32 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Encode returns the canonical encoding of r after validating it. Times
// are written in UTC with nanosecond precision.
func Encode(r Record) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	w := wire{
		V:           Version,
		Class:       r.Class,
		Created:     fmtTime(r.Created),
		RetainUntil: fmtTime(r.RetainUntil),
		Mode:        r.Mode,
		LegalHold:   r.LegalHold,
		Tenant:      r.Tenant,
		Subject:     r.Subject,
	}
	if !r.LockUntil.IsZero() {
		w.LockUntil = fmtTime(r.LockUntil)
	}
	b, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return b, nil
}

// Parse decodes and validates a record.
func Parse(b []byte) (Record, error) {
	if len(b) > MaxSize {
		return Record{}, fmt.Errorf("%w: %d bytes, limit %d", ErrCorrupt, len(b), MaxSize)
	}
	if !utf8.Valid(b) {
		return Record{}, fmt.Errorf("%w: invalid UTF-8", ErrCorrupt)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var w wire
	if err := dec.Decode(&w); err != nil {
		return Record{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Record{}, fmt.Errorf("%w: trailing data", ErrCorrupt)
	}
	if w.V != Version {
		return Record{}, fmt.Errorf("%w: unknown version %d", ErrCorrupt, w.V)
	}
	r := Record{Class: w.Class, Mode: w.Mode, LegalHold: w.LegalHold, Tenant: w.Tenant, Subject: w.Subject}
	var err error
	if r.Created, err = parseTime(w.Created); err != nil {
		return Record{}, err
	}
	if r.RetainUntil, err = parseTime(w.RetainUntil); err != nil {
		return Record{}, err
	}
	if w.LockUntil != "" {
		if r.LockUntil, err = parseTime(w.LockUntil); err != nil {
			return Record{}, err
		}
	}
	if err := r.Validate(); err != nil {
		return Record{}, err
	}
	return r, nil
}

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: bad time %q", ErrCorrupt, s)
	}
	if t.Year() < 1970 || t.Year() > 9999 {
		return time.Time{}, fmt.Errorf("%w: time out of range %q", ErrCorrupt, s)
	}
	return t.UTC(), nil
}

// MaxKeyLen is the longest object key, in bytes.
const MaxKeyLen = 100

// ErrInvalidKey reports a key that is empty, too long, not UTF-8 or
// contains control characters.
var ErrInvalidKey = errors.New("retention: invalid key")

// CheckKey returns [ErrInvalidKey] unless key is acceptable: 1 to
// [MaxKeyLen] bytes of valid UTF-8 without control characters.
func CheckKey(key string) error {
	if len(key) == 0 || len(key) > MaxKeyLen || !utf8.ValidString(key) {
		return fmt.Errorf("%w: %q", ErrInvalidKey, key)
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: control character", ErrInvalidKey)
		}
	}
	return nil
}
