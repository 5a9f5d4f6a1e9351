// Package hostname normalises the host part of a URL into the one form the
// § 203 egress guard matches against its allowlist.
//
// The normal form is what a dialer would actually connect to: lower-case
// A-labels (punycode) without a trailing dot, or a canonical IP address,
// plus an explicit port. Anything that could be read two ways is refused
// rather than guessed at: userinfo, zones, percent signs, bare IPv6,
// numeric host names that some resolvers read as IPv4 (2130706433,
// 0x7f.1, 0177.0.0.1), labels that IDNA rejects and non-canonical punycode.
package hostname

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"golang.org/x/net/idna"
)

// MaxLen is the longest host:port accepted, in bytes.
const MaxLen = 300

var (
	// ErrInvalid reports a host that is malformed or ambiguous.
	ErrInvalid = errors.New("section203: invalid host")
	// ErrNumeric reports a host name that some resolvers read as an IPv4
	// address in decimal, octal or hexadecimal form.
	ErrNumeric = errors.New("section203: numeric host name")
)

// profile is IDNA2008 lookup processing without the transitional mapping
// (which would turn "faß" into "fass", two different registrable names),
// with STD3 rules, hyphen, joiner, bidi and DNS length checks.
var profile = idna.New(
	idna.MapForLookup(),
	idna.Transitional(false),
	idna.BidiRule(),
	idna.StrictDomainName(true),
	idna.CheckHyphens(true),
	idna.CheckJoiners(true),
	idna.VerifyDNSLength(true),
)

// Addr is a normalised destination. Exactly one of Name and IP is set.
type Addr struct {
	// Name is a DNS name in lower-case A-label form, without trailing dot.
	Name string
	// IP is set when the host is an IP literal; IPv4-mapped IPv6
	// addresses are unmapped.
	IP   netip.Addr
	Port uint16
}

// Host returns the host part: Name, or the IP in canonical text form.
func (a Addr) Host() string {
	if a.IP.IsValid() {
		return a.IP.String()
	}
	return a.Name
}

// String returns host:port, with IPv6 addresses in brackets.
func (a Addr) String() string {
	p := strconv.FormatUint(uint64(a.Port), 10)
	if a.IP.Is6() {
		return "[" + a.IP.String() + "]:" + p
	}
	return a.Host() + ":" + p
}

// Parse normalises hostport, a URL host as in [net/url.URL.Host]: "name",
// "name:port", "1.2.3.4:port" or "[v6]:port". defaultPort is used when the
// port is absent. The result's String form parses again to the same Addr.
func Parse(hostport string, defaultPort uint16) (Addr, error) {
	if len(hostport) == 0 || len(hostport) > MaxLen {
		return Addr{}, fmt.Errorf("%w: length %d", ErrInvalid, len(hostport))
	}
	for i := 0; i < len(hostport); i++ {
		switch c := hostport[i]; {
		case c <= ' ' || c == 0x7f:
			return Addr{}, fmt.Errorf("%w: control or space character", ErrInvalid)
		case strings.IndexByte(`@/\?#%`, c) >= 0:
			return Addr{}, fmt.Errorf("%w: character %q", ErrInvalid, c)
		}
	}
	host, portStr, bracketed, err := split(hostport)
	if err != nil {
		return Addr{}, err
	}
	port := defaultPort
	if portStr != "" {
		if port, err = parsePort(portStr); err != nil {
			return Addr{}, err
		}
	}
	if port == 0 {
		return Addr{}, fmt.Errorf("%w: port 0", ErrInvalid)
	}
	if bracketed {
		ip, err := netip.ParseAddr(host)
		if err != nil || !ip.Is6() || ip.Zone() != "" {
			return Addr{}, fmt.Errorf("%w: bad IPv6 literal", ErrInvalid)
		}
		return Addr{IP: ip.Unmap(), Port: port}, nil
	}
	if !dotted(host) {
		// Not an IPv4 literal: skip ParseAddr and its error allocation.
	} else if ip, err := netip.ParseAddr(host); err == nil {
		if !ip.Is4() {
			return Addr{}, fmt.Errorf("%w: bad IP literal", ErrInvalid)
		}
		return Addr{IP: ip, Port: port}, nil
	}
	name, err := Name(host)
	if err != nil {
		return Addr{}, err
	}
	return Addr{Name: name, Port: port}, nil
}

// Name normalises a DNS name without port: IDNA2008 mapping and
// validation, lower case, one trailing dot removed, A-label form, and a
// strict round trip through the Unicode form for every punycode label.
func Name(host string) (string, error) {
	host = strings.TrimSuffix(host, ".")
	if a, ok := ldh(host); ok {
		if numeric(a[strings.LastIndexByte(a, '.')+1:]) {
			return "", fmt.Errorf("%w: %q", ErrNumeric, a)
		}
		return a, nil
	}
	return nameIDNA(host)
}

// ldh is the fast path of [Name] for plain ASCII letter-digit-hyphen names,
// which IDNA processing maps only to lower case. It declines (ok false)
// anything else, including every label with hyphens in the third and
// fourth position ("xn--"), and leaves it to the IDNA path. FuzzParse
// checks that both paths agree.
func ldh(host string) (lower string, ok bool) {
	if host == "" || len(host) > 253 {
		return "", false
	}
	upper := false
	start := 0
	for i := 0; i <= len(host); i++ {
		if i == len(host) || host[i] == '.' {
			label := host[start:i]
			if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' ||
				len(label) >= 4 && label[2] == '-' && label[3] == '-' {
				return "", false
			}
			start = i + 1
			continue
		}
		switch c := host[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-':
		case 'A' <= c && c <= 'Z':
			upper = true
		default:
			return "", false
		}
	}
	if upper {
		return strings.ToLower(host), true
	}
	return host, true
}

// nameIDNA is the general path of [Name].
func nameIDNA(host string) (string, error) {
	if host == "" {
		return "", fmt.Errorf("%w: empty name", ErrInvalid)
	}
	a, err := profile.ToASCII(host)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	a = strings.ToLower(a)
	if a == "" || len(a) > 253 {
		return "", fmt.Errorf("%w: length", ErrInvalid)
	}
	for label := range strings.SplitSeq(a, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return "", fmt.Errorf("%w: bad label", ErrInvalid)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return "", fmt.Errorf("%w: character %q", ErrInvalid, c)
			}
		}
		if strings.HasPrefix(label, "xn--") {
			// Only canonical punycode: decoding and re-encoding must give
			// the label back, so two spellings never name one host.
			u, err := profile.ToUnicode(label)
			if err != nil {
				return "", fmt.Errorf("%w: %v", ErrInvalid, err)
			}
			back, err := profile.ToASCII(u)
			if err != nil || back != label {
				return "", fmt.Errorf("%w: non-canonical punycode", ErrInvalid)
			}
		}
	}
	last := a[strings.LastIndexByte(a, '.')+1:]
	if numeric(last) {
		return "", fmt.Errorf("%w: %q", ErrNumeric, a)
	}
	return a, nil
}

// dotted reports whether s consists of digits and dots only.
func dotted(s string) bool {
	for i := 0; i < len(s); i++ {
		if (s[i] < '0' || s[i] > '9') && s[i] != '.' {
			return false
		}
	}
	return true
}

// numeric reports whether a final label could be read as (part of) an
// IPv4 address by inet_aton: all decimal digits, or 0x followed by hex.
// No top-level domain looks like this.
func numeric(label string) bool {
	s := label
	if len(s) >= 2 && s[0] == '0' && s[1] == 'x' {
		s = s[2:]
		for i := 0; i < len(s); i++ {
			c := s[i]
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func split(hostport string) (host, port string, bracketed bool, err error) {
	if hostport[0] == '[' {
		end := strings.IndexByte(hostport, ']')
		if end < 0 {
			return "", "", false, fmt.Errorf("%w: missing ]", ErrInvalid)
		}
		host, rest := hostport[1:end], hostport[end+1:]
		switch {
		case rest == "":
		case rest[0] == ':':
			port = rest[1:]
			if port == "" {
				return "", "", false, fmt.Errorf("%w: empty port", ErrInvalid)
			}
		default:
			return "", "", false, fmt.Errorf("%w: junk after ]", ErrInvalid)
		}
		return host, port, true, nil
	}
	switch strings.Count(hostport, ":") {
	case 0:
		return hostport, "", false, nil
	case 1:
		i := strings.IndexByte(hostport, ':')
		if i+1 == len(hostport) {
			return "", "", false, fmt.Errorf("%w: empty port", ErrInvalid)
		}
		return hostport[:i], hostport[i+1:], false, nil
	default:
		return "", "", false, fmt.Errorf("%w: IPv6 literal without brackets", ErrInvalid)
	}
}

func parsePort(s string) (uint16, error) {
	if len(s) > 5 || s[0] == '0' {
		return 0, fmt.Errorf("%w: port %q", ErrInvalid, s)
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%w: port %q", ErrInvalid, s)
		}
		n = n*10 + int(c-'0')
	}
	if n > 65535 {
		return 0, fmt.Errorf("%w: port %q", ErrInvalid, s)
	}
	return uint16(n), nil
}
