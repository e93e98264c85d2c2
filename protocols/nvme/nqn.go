package nvme

import (
	"errors"
	"fmt"
	"strings"
)

// NVMe Qualified Names (NVMe 1.4 §7.9 and NVMe Base 2.0, "NVMe Qualified Names"). An NQN is UTF-8,
// at most 223 bytes, in one of two forms:
//
//	nqn.yyyy-mm.reverse.domain:user-string       (a naming authority's own names)
//	nqn.2014-08.org.nvmexpress:uuid:<36-char UUID> (no naming authority)
//
// plus the well-known discovery subsystem NQN.
const (
	NQNSizeMax     = 223
	DiscoveryNQN   = "nqn.2014-08.org.nvmexpress.discovery"
	UUIDNQNPrefix  = "nqn.2014-08.org.nvmexpress:uuid:"
	uuidTextSize   = 36
	domainLabelMax = 63 // RFC 1034 label length
)

// ErrInvalidNQN is wrapped by every ValidateNQN error.
var ErrInvalidNQN = errors.New("invalid NQN")

// ValidateNQN checks s against the NQN rules and names the first one broken. Labels of the
// reverse domain follow RFC 1123 (letters, digits and inner hyphens, 1..63 bytes; a label may
// start with a digit), which is what DNS names in use need; the user string after the colon may
// be any UTF-8 except NUL.
func ValidateNQN(s string) error {
	fail := func(rule string, args ...any) error {
		return fmt.Errorf("nqn %q: %s: %w", s, fmt.Sprintf(rule, args...), ErrInvalidNQN)
	}
	if len(s) > NQNSizeMax {
		return fail("%d bytes, want at most %d", len(s), NQNSizeMax)
	}
	if err := checkNQNBytes("nqn", s); err != nil {
		return fail("%v", err)
	}
	if s == DiscoveryNQN {
		return nil
	}
	if rest, ok := strings.CutPrefix(s, UUIDNQNPrefix); ok {
		if !isUUIDText(rest) {
			return fail("after %q want a UUID as 8-4-4-4-12 hex digits, have %q", UUIDNQNPrefix, rest)
		}
		return nil
	}
	rest, ok := strings.CutPrefix(s, "nqn.")
	if !ok {
		return fail(`want prefix "nqn."`)
	}
	if len(rest) < 8 || !isDigits(rest[0:4]) || rest[4] != '-' || !isDigits(rest[5:7]) || rest[7] != '.' {
		return fail(`want a date code "yyyy-mm." after "nqn."`)
	}
	if m := (rest[5]-'0')*10 + rest[6] - '0'; m < 1 || m > 12 {
		return fail("date code month %s, want 01..12", rest[5:7])
	}
	domain, user, ok := strings.Cut(rest[8:], ":")
	if !ok {
		return fail(`want ":" after the reverse domain name, then a user-specified string`)
	}
	if user == "" {
		return fail(`empty user-specified string after ":"`)
	}
	if domain == "" {
		return fail("empty reverse domain name")
	}
	for _, label := range strings.Split(domain, ".") {
		if err := checkDomainLabel(label); err != "" {
			return fail("reverse domain label %q: %s", label, err)
		}
	}
	return nil
}

// UUIDNQN is the NQN of a host or subsystem without a naming authority.
func UUIDNQN(uuid [16]byte) string {
	const hexDigits = "0123456789abcdef"
	b := []byte(UUIDNQNPrefix)
	for i, c := range uuid {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = append(b, hexDigits[c>>4], hexDigits[c&0xF])
	}
	return string(b)
}

func checkDomainLabel(l string) string {
	switch {
	case l == "":
		return "empty"
	case len(l) > domainLabelMax:
		return fmt.Sprintf("%d bytes, want at most %d", len(l), domainLabelMax)
	case l[0] == '-' || l[len(l)-1] == '-':
		return "starts or ends with '-'"
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Sprintf("byte %q, want letters, digits or '-'", c)
		}
	}
	return ""
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isUUIDText(s string) bool {
	if len(s) != uuidTextSize {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return false
			}
			continue
		}
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}
