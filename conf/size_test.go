package conf

import (
	"errors"
	"testing"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want Size   // when err is ""
		err  string // the whole message; "" when valid
	}{
		{"512", 512, ""},
		{"0", 0, ""},
		{"512B", 512, ""},
		{"4KiB", 4 << 10, ""},
		{"64MiB", 64 << 20, ""},
		{"64 MiB", 64 << 20, ""},
		{"1GiB", 1 << 30, ""},
		{"2TiB", 2 << 40, ""},
		{"3PiB", 3 << 50, ""},
		{"1EiB", 1 << 60, ""},
		{"1.5GiB", 3 << 29, ""},
		{"0.5KiB", 512, ""},
		{"0.0009765625MiB", 1 << 10, ""},
		{"1.50KiB", 1536, ""},
		{"007KiB", 7 << 10, ""},
		{"1kB", 1000, ""},
		{"1KB", 1000, ""},
		{"64MB", 64e6, ""},
		{"100GB", 100e9, ""},
		{"2TB", 2e12, ""},
		{"1.5kB", 1500, ""},
		{"1.3KiB", 0, "1.3KiB, want a whole number of bytes (1.3KiB is 1331.2 bytes)"},
		{"0.1", 0, "0.1, want a whole number of bytes (0.1 is 0.1 bytes)"},
		{"2EiB", 0, "2EiB, want a size of at most 1EiB"},
		{"1152921504606846977", 0, "1152921504606846977, want a size of at most 1EiB"},
		{"99999999999999999999999EiB", 0, "99999999999999999999999EiB, want a size of at most 1EiB"},
		{"64M", 0, `64M, want MiB (powers of 1024) or MB (powers of 1000): "M" is ambiguous`},
		{"4k", 0, `4k, want KiB (powers of 1024) or kB (powers of 1000): "k" is ambiguous`},
		{"4K", 0, `4K, want KiB (powers of 1024) or kB (powers of 1000): "K" is ambiguous`},
		{"1g", 0, `1g, want GiB (powers of 1024) or GB (powers of 1000): "g" is ambiguous`},
		{"1Gi", 0, `1Gi, want GiB (powers of 1024) or GB (powers of 1000): "Gi" is ambiguous`},
		{"1mib", 0, `1mib, want MiB (powers of 1024) or MB (powers of 1000): "mib" is ambiguous`},
		{"1KIB", 0, `1KIB, want KiB (powers of 1024) or kB (powers of 1000): "KIB" is ambiguous`},
		{"1mb", 0, `1mb, want MiB (powers of 1024) or MB (powers of 1000): "mb" is ambiguous`},
		{"1bytes", 0, "1bytes, want " + sizeWantUnit},
		{"1Xb", 0, "1Xb, want " + sizeWantUnit},
		{"", 0, `"", want ` + sizeWantSyntax},
		{"MiB", 0, "MiB, want " + sizeWantSyntax},
		{"-1", 0, "-1, want " + sizeWantSyntax},
		{"+1", 0, "+1, want " + sizeWantSyntax},
		{" 1", 0, `" 1", want ` + sizeWantSyntax},
		{"0x200", 0, "0x200, want " + sizeWantUnit},
		{"1e3", 0, "1e3, want " + sizeWantUnit},
		{"1_000", 0, "1_000, want " + sizeWantUnit},
		{".5GiB", 0, ".5GiB, want " + sizeWantSyntax},
		{"1.GiB", 0, "1.GiB, want " + sizeWantSyntax},
		{"1.5.5GiB", 0, "1.5.5GiB, want " + sizeWantUnit},
		{"00000000000000000000000000000000000000000000000000000000000000001", 0,
			"00000000000000000000000000000000000000000000000000000000000000001, want a size of at most 64 characters"},
	}
	for _, tc := range tests {
		got, err := ParseSize(tc.in)
		if tc.err == "" {
			if err != nil || got != tc.want {
				t.Errorf("ParseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
			}
			continue
		}
		var e *Error
		if !errors.As(err, &e) || err.Error() != tc.err {
			t.Errorf("ParseSize(%q) = %d, %v; want error %q", tc.in, got, err, tc.err)
		}
	}
}

func TestSizeString(t *testing.T) {
	tests := []struct {
		in   Size
		want string
	}{
		{0, "0"},
		{1, "1"},
		{512, "512"},
		{1000, "1kB"},
		{1024, "1KiB"},
		{1536, "1536"}, // 1.5KiB: no unit divides it with fewer digits
		{4 << 10, "4KiB"},
		{64 << 20, "64MiB"},
		{3 << 29, "1536MiB"},
		{1 << 30, "1GiB"},
		{100e9, "100GB"},
		{512000, "500KiB"}, // a tie with 512kB: binary first
		{SizeMax, "1EiB"},
		{SizeMax - 1, "1152921504606846975"},
	}
	for _, tc := range tests {
		if got := tc.in.String(); got != tc.want {
			t.Errorf("Size(%d).String() = %q, want %q", uint64(tc.in), got, tc.want)
		}
		if back, err := ParseSize(tc.in.String()); err != nil || back != tc.in {
			t.Errorf("ParseSize(%q) = %d, %v; want %d back", tc.in.String(), back, err, uint64(tc.in))
		}
	}
}

// FuzzParseSize: ParseSize never panics, and what it accepts prints to a
// form it reads back to the same size.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"512", "1.5GiB", "64 MiB", "100GB", "1.3KiB", "4k", "0.0009765625MiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err != nil {
			return
		}
		if n > SizeMax {
			t.Fatalf("ParseSize(%q) = %d, over SizeMax", s, n)
		}
		if back, err := ParseSize(n.String()); err != nil || back != n {
			t.Fatalf("ParseSize(%q) = %d, %v; want %d", n.String(), back, err, n)
		}
	})
}
