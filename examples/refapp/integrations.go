package main

// integrations lists how each tomkit package is wired in, for the banner,
// as this instance runs: with -postgres the audit log, the policy and the
// documents live in PostgreSQL.
func (a *app) integrations() []string {
	if a.opts.postgres == "" {
		return []string{integrationTLS, integrationAudit, integrationAuthz, integrationStore, integrationGuard}
	}
	return []string{
		integrationTLS,
		"audit (tamper-evident PostgreSQL log, audit/pglog: signed checkpoints, pseudonymized personal attributes)",
		"rbac (casbin, deny-by-default, MFA for privileged permissions, four-eyes, break-glass; policy and grants in PostgreSQL, rbac/pgstore)",
		"crypto/envelope + crypto/kms (one KEK per tenant, crypto-shredding; keyring file in the data directory) + retention (30-day content window, purge; documents in PostgreSQL, retention/pgstore)",
		integrationGuard,
	}
}
