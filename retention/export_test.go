package retention

// CachedScopes reports how many scopes' envelopes e keeps.
func CachedScopes(e *Encrypted) int { return e.cached() }
