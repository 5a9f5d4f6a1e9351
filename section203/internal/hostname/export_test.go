package hostname

// NameIDNA exposes the general path of Name, so that the fuzz test can
// check that the fast path agrees with it.
var NameIDNA = func(host string) (string, error) {
	if len(host) > 0 && host[len(host)-1] == '.' {
		host = host[:len(host)-1]
	}
	return nameIDNA(host)
}
