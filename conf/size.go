package conf

import (
	"math/big"
	"strconv"
	"strings"
)

// Size is a number of bytes. In a file it is written as a plain integer
// (bytes) or a number and a unit, e.g. 512, 4KiB, 64MiB, 1.5GiB; see ParseSize.
type Size uint64

// sizeUnit is one unit a size may be written in.
type sizeUnit struct {
	name  string
	bytes uint64
}

// sizeUnitsBinary are the IEC units, largest first: String picks the first
// that divides a size exactly.
var sizeUnitsBinary = []sizeUnit{
	{"EiB", 1 << 60}, {"PiB", 1 << 50}, {"TiB", 1 << 40},
	{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
}

// sizeUnitsDecimal are the SI units, powers of 1000 as disk vendors, dd and
// truncate(1) read them. KB is accepted beside the SI spelling kB.
var sizeUnitsDecimal = []sizeUnit{
	{"EB", 1e18}, {"PB", 1e15}, {"TB", 1e12}, {"GB", 1e9},
	{"MB", 1e6}, {"kB", 1e3}, {"KB", 1e3},
}

const (
	sizeWantSyntax = "a size in bytes such as 512, 4KiB, 64MiB or 1.5GiB"
	sizeWantUnit   = "a unit among B, KiB, MiB, GiB, TiB, PiB, EiB " +
		"(powers of 1024) or kB, MB, GB, TB, PB, EB (powers of 1000)"
)

// ParseSize reads a size: digits, an optional fraction, optional spaces and an
// optional unit, exactly as listed (case matters):
//
//   - none or B: bytes;
//   - KiB, MiB, GiB, TiB, PiB, EiB: powers of 1024;
//   - kB (or KB), MB, GB, TB, PB, EB: powers of 1000.
//
// A unit of one letter (K, M, g…) or in another case (mib, KIB) is rejected as
// ambiguous rather than guessed. A fraction is accepted only when the result is
// a whole number of bytes (1.5KiB is 1536; 1.3KiB is rejected). Signs, hex,
// exponents and underscores are rejected. The result is at most SizeMax.
// The error is an *Error naming the value and what would be accepted.
func ParseSize(s string) (Size, error) {
	n, want := parseSize(s)
	if want != "" {
		return 0, &Error{Value: s, Want: want}
	}
	return n, nil
}

// parseSize is ParseSize without the allocation of an error: want is "" when
// s is a valid size, else what a valid one looks like.
func parseSize(s string) (n Size, want string) {
	if len(s) > sizeTextMax {
		return 0, "a size of at most " + strconv.Itoa(sizeTextMax) + " characters"
	}
	i := digitsEnd(s, 0)
	if i == 0 {
		return 0, sizeWantSyntax
	}
	whole, frac := s[:i], ""
	if i < len(s) && s[i] == '.' {
		j := digitsEnd(s, i+1)
		if j == i+1 {
			return 0, sizeWantSyntax
		}
		frac, i = s[i+1:j], j
	}
	unitName := strings.TrimLeft(s[i:], " ")
	unit, want := lookupSizeUnit(unitName)
	if want != "" {
		return 0, want
	}
	// bytes = (whole.frac) * unit, exactly: digits * unit / 10^len(frac).
	num, _ := new(big.Int).SetString(whole+frac, 10) // digits only: cannot fail
	num.Mul(num, new(big.Int).SetUint64(unit))
	den := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(len(frac))), nil)
	q, r := new(big.Int).QuoRem(num, den, new(big.Int))
	if r.Sign() != 0 {
		return 0, "a whole number of bytes (" + s + " is " + decimalString(q, r, len(frac)) + " bytes)"
	}
	if !q.IsUint64() || q.Uint64() > uint64(SizeMax) {
		return 0, "a size of at most " + SizeMax.String()
	}
	return Size(q.Uint64()), ""
}

// lookupSizeUnit returns the bytes in one unit of name, or what to write instead.
func lookupSizeUnit(name string) (bytes uint64, want string) {
	if name == "" || name == "B" {
		return 1, ""
	}
	for _, u := range sizeUnitsBinary {
		if u.name == name {
			return u.bytes, ""
		}
	}
	for _, u := range sizeUnitsDecimal {
		if u.name == name {
			return u.bytes, ""
		}
	}
	// K, m, Gi, mib, KIB…: a prefix we know, spelled so that it could mean
	// either base. Say which two spellings are exact.
	letters := len(name) <= 3 && strings.IndexFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) < 0
	if p := strings.ToUpper(name[:1]); letters && strings.Contains("KMGTPE", p) {
		dec := p + "B"
		if p == "K" {
			dec = "kB"
		}
		return 0, p + "iB (powers of 1024) or " + dec + " (powers of 1000): " +
			strconv.Quote(name) + " is ambiguous"
	}
	return 0, sizeWantUnit
}

// digitsEnd returns the index of the first non-digit in s at or after i.
func digitsEnd(s string, i int) int {
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

// decimalString writes q + r/10^places in decimal, without trailing zeros.
func decimalString(q, r *big.Int, places int) string {
	f := r.String()
	f = strings.Repeat("0", places-len(f)) + f
	return q.String() + "." + strings.TrimRight(f, "0")
}

// String writes s in its canonical form: the unit that divides it exactly
// with the fewest digits left, binary before decimal on a tie, else plain
// bytes: 64MiB, 1536MiB, 4KiB, 100GB, 512. ParseSize reads it back to s.
func (s Size) String() string {
	if s == 0 {
		return "0"
	}
	best := strconv.FormatUint(uint64(s), 10)
	bestDigits := len(best)
	for _, units := range [][]sizeUnit{sizeUnitsBinary, sizeUnitsDecimal} {
		for _, u := range units {
			if uint64(s)%u.bytes != 0 || u.name == "KB" { // kB is the SI spelling
				continue
			}
			if n := strconv.FormatUint(uint64(s)/u.bytes, 10); len(n) < bestDigits {
				best, bestDigits = n+u.name, len(n)
			}
		}
	}
	return best
}
