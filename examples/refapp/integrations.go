package main

// integrations lists how each tomkit package is wired in, for the banner.
func integrations() []string {
	return []string{integrationTLS, integrationAudit, integrationAuthz, integrationStore, integrationGuard}
}
