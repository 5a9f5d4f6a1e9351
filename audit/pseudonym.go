package audit

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Redacted replaces a personal attribute's value when no [Pseudonymizer]
// is configured.
const Redacted = "redacted"

// ErrBadPseudonymKey reports an unusable pseudonymization key.
var ErrBadPseudonymKey = errors.New("audit: bad pseudonymization key")

// PseudonymKey is one HMAC key with its id. The id is written next to every
// pseudonym made with the key, so that a rotated-out key can still be used
// to search old records.
type PseudonymKey struct {
	// ID names the key: letters, digits, '-', '_' and '.', at most 64.
	ID string
	// Secret is the HMAC-SHA256 key, at least 32 bytes.
	Secret []byte
}

// Pseudonymizer replaces the values of personal attributes with keyed
// HMAC-SHA256 pseudonyms, "hmac-sha256:<key id>:<hex>", before an event
// reaches a sink (the idea of Vault's audit-hash). An auditor who holds
// the key can compute the pseudonym of a known value with [Pseudonymizer.Pseudonym]
// and search for it; nobody can reverse it without the key.
//
// Sinks given no Pseudonymizer replace personal values with [Redacted]:
// the plaintext of a personal attribute never reaches a sink's storage.
type Pseudonymizer struct {
	active PseudonymKey
	keys   map[string][]byte
}

// NewPseudonymizer returns a Pseudonymizer that writes with active and can
// also compute pseudonyms under the older keys, for searching history.
func NewPseudonymizer(active PseudonymKey, older ...PseudonymKey) (*Pseudonymizer, error) {
	p := &Pseudonymizer{keys: map[string][]byte{}}
	for i, k := range append([]PseudonymKey{active}, older...) {
		if !validKeyID(k.ID) {
			return nil, fmt.Errorf("%w: key id %q", ErrBadPseudonymKey, k.ID)
		}
		if len(k.Secret) < 32 {
			return nil, fmt.Errorf("%w: key %q shorter than 32 bytes", ErrBadPseudonymKey, k.ID)
		}
		if _, dup := p.keys[k.ID]; dup {
			return nil, fmt.Errorf("%w: duplicate key id %q", ErrBadPseudonymKey, k.ID)
		}
		secret := append([]byte(nil), k.Secret...)
		p.keys[k.ID] = secret
		if i == 0 {
			p.active = PseudonymKey{ID: k.ID, Secret: secret}
		}
	}
	return p, nil
}

func validKeyID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// Pseudonym returns the pseudonym of value under the key with id keyID
// ("" means the active key). Auditors use it to search the log for a known
// value.
func (p *Pseudonymizer) Pseudonym(keyID, value string) (string, error) {
	if keyID == "" {
		keyID = p.active.ID
	}
	secret, ok := p.keys[keyID]
	if !ok {
		return "", fmt.Errorf("%w: unknown key id %q", ErrBadPseudonymKey, keyID)
	}
	return pseudonym(keyID, secret, value), nil
}

func pseudonym(id string, secret []byte, value string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(value))
	return "hmac-sha256:" + id + ":" + hex.EncodeToString(m.Sum(nil))
}

// isPseudonym reports whether v already is a pseudonym made under one of
// p's keys, so that a second pass through a Pseudonymizer is a no-op.
func (p *Pseudonymizer) isPseudonym(v string) bool {
	rest, ok := strings.CutPrefix(v, "hmac-sha256:")
	if !ok {
		return false
	}
	id, h, ok := strings.Cut(rest, ":")
	if _, known := p.keys[id]; !ok || !known || len(h) != 64 {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil && strings.ToLower(h) == h
}

// protect returns e with every personal attribute pseudonymized by p, or
// redacted when p is nil. It never modifies e's attribute slice.
func protect(e Event, p *Pseudonymizer) Event {
	personal := false
	for _, a := range e.Attributes {
		personal = personal || a.Personal
	}
	if !personal {
		return e
	}
	attrs := make([]Attr, len(e.Attributes))
	for i, a := range e.Attributes {
		if a.Personal {
			switch {
			case p == nil:
				a.Value = Redacted
			case p.isPseudonym(a.Value) || a.Value == Redacted:
			default:
				a.Value = pseudonym(p.active.ID, p.active.Secret, a.Value)
			}
		}
		attrs[i] = a
	}
	e.Attributes = attrs
	return e
}

// encodeRecord is the record a tamper-evident log stores for e: e with
// its time defaulted to now, normalized, and its personal attributes
// pseudonymized by p (or redacted), in its stable JSON encoding.
func encodeRecord(ctx context.Context, e Event, now func() time.Time, p *Pseudonymizer) ([]byte, error) {
	if e.Time.IsZero() {
		e.Time = now()
	}
	e, err := e.Normalize(ctx)
	if err != nil {
		return nil, err
	}
	return protect(e, p).Marshal()
}

// pruneEvent is the "audit.prune" event a log records after deleting the
// records below min.
func pruneEvent(min int64) Event {
	return Event{
		Action: "audit.prune", Outcome: OutcomeAllow, Severity: SeverityNotice,
		Reason:     "deleted records below the retention point",
		Attributes: []Attr{String("below", strconv.FormatInt(min, 10))},
	}
}

// Protect returns e with its personal attributes pseudonymized by p, or
// redacted if p is nil. Every tomkit sink calls it; custom sinks should
// too.
func Protect(e Event, p *Pseudonymizer) Event { return protect(e, p) }
