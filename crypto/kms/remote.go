package kms

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/tink-crypto/tink-go/v2/core/registry"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/internal/errtext"
)

// Remote is a [KEK] held in an external KMS, reached through a Tink
// registry.KMSClient: Vault Transit (tink-go-hcvault), AWS KMS, GCP KMS,
// Scaleway. Every Wrap and Unwrap is a call to the KMS; the key never
// leaves it. Rotation, minimum decryption versions and destruction are
// done in the KMS, which tracks versions inside its own ciphertexts, so
// the [KeyID] of a Remote always has Key zero.
//
// For per-tenant keys, create one Remote per tenant key URI (for example
// "hcvault://vault:8200/transit/keys/tenant-42"):
//
//	vc, err := vault.NewClient(vault.DefaultConfig()) // github.com/hashicorp/vault/api
//	client, err := hcvault.NewClientWithAEADOptions("hcvault://vault:8200", vc.Logical())
//	kek, err := kms.NewRemote(ctx, client, "hcvault://vault:8200/transit/keys/tenant-42", log)
//	env, err := envelope.New(kek, envelope.Config{Logger: log, Cache: &envelope.Cache{}})
//
// # Vault Transit
//
// Use hcvault.NewClientWithAEADOptions (not the legacy hcvault.NewClient)
// with a Transit key created with derived=false. The legacy client sends
// the associated data as Vault's "context" parameter, which Vault ignores
// for keys with derived=false and requires for keys with derived=true:
// with the wrong pairing the wrapped key is silently not bound to the
// encryption context, or every call fails. tomkit's envelope also commits
// to the encryption context in its header, so a misconfigured KMS weakens
// nothing, but the binding should hold at both layers.
type Remote struct {
	uri  string
	ring [8]byte
	aead tink.AEAD
	log  audit.Logger
}

var _ KEK = (*Remote)(nil)

// NewRemote returns the KEK keyURI of client. The client is passed
// explicitly; tomkit never uses Tink's global KMS client registry. log
// receives the key load and every unwrap failure; nil is refused with
// [audit.ErrNoLogger].
func NewRemote(ctx context.Context, client registry.KMSClient, keyURI string, log audit.Logger) (*Remote, error) {
	if log == nil {
		return nil, audit.ErrNoLogger
	}
	if client == nil || !client.Supported(keyURI) {
		return nil, fmt.Errorf("%w: client does not support %q", ErrUnknownKey, keyURI)
	}
	a, err := client.GetAEAD(keyURI)
	if err != nil {
		return nil, errtext.Errorf("kms: remote %q: %w", keyURI, err)
	}
	r := &Remote{uri: keyURI, aead: a, log: log}
	sum := sha256.Sum256([]byte("tomkit remote kek\x00" + keyURI))
	copy(r.ring[:], sum[:])
	if err := r.audit(ctx, "crypto.kek_load", audit.OutcomeAllow, ""); err != nil {
		return nil, err
	}
	return r, nil
}

// ID returns the key id of r: a hash of its URI in Ring, Key zero.
func (r *Remote) ID() KeyID { return KeyID{Ring: r.ring} }

// Wrap implements [KEK].
func (r *Remote) Wrap(ctx context.Context, dst, dek, ad []byte) (KeyID, []byte, error) {
	w, err := r.aead.Encrypt(dek, ad)
	if err != nil {
		return KeyID{}, nil, errtext.Errorf("kms: remote wrap: %w", err)
	}
	return r.ID(), append(dst, w...), nil
}

// Unwrap implements [KEK]. Failures are audited as "crypto.unwrap".
func (r *Remote) Unwrap(ctx context.Context, dst []byte, id KeyID, wrapped, ad []byte) ([]byte, error) {
	var err error
	if id != r.ID() {
		err = fmt.Errorf("%w: key %s is not %s", ErrUnknownKey, id, r.uri)
	} else {
		var dek []byte
		if dek, err = r.aead.Decrypt(wrapped, ad); err == nil {
			dst = append(dst, dek...)
			clear(dek)
			return dst, nil
		}
		err = fmt.Errorf("%w: remote %s: %v", ErrUnwrap, r.uri, err)
	}
	if lerr := r.audit(ctx, "crypto.unwrap", audit.OutcomeDeny, err.Error()); lerr != nil {
		return nil, errors.Join(err, lerr)
	}
	return nil, err
}

func (r *Remote) audit(ctx context.Context, action string, outcome audit.Outcome, reason string) error {
	e := audit.Event{Action: action, Outcome: outcome, Reason: reason, Resource: "kms/" + KeyID{Ring: r.ring}.String(),
		Attributes: []audit.Attr{audit.String("key_uri", r.uri)}}
	if outcome != audit.OutcomeAllow {
		e.Severity = audit.SeverityWarning
	}
	if err := r.log.Log(ctx, e); err != nil {
		return errtext.Errorf("kms: audit %s: %w", action, err)
	}
	return nil
}
