package login

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Text format limits (RFC 7143 §6.1).
const (
	// KeySizeMax is the longest key name.
	KeySizeMax = 63
	// ValueSizeMax is the longest simple value.
	ValueSizeMax = 255
	// LargeValueSizeMax bounds large-binary values (CHAP_C and CHAP_R carry up to 1024
	// bytes, 2050 characters in hex), value lists, and keys we do not know.
	LargeValueSizeMax = 8192
	// TextSizeMax bounds one negotiation's text reassembled across C-bit PDUs. The RFC
	// requires at least 8192 bytes (§6.1); 64 KiB leaves room for long CHAP values.
	TextSizeMax = 64 << 10
	// PairsMax bounds the pairs in one text, so duplicate detection stays cheap.
	PairsMax = 1024
)

// Pair is one key=value.
type Pair struct {
	Key, Value string
}

// KeyErrorKind says what is wrong with a text.
type KeyErrorKind uint8

// Text errors.
const (
	KeyNoEquals KeyErrorKind = iota + 1
	KeyEmpty
	KeyTooLong
	KeyBadChar
	KeyValueTooLong
	KeyValueNotUTF8
	KeyDuplicate
	KeyUnterminated
	KeyTooMany
	KeyTextTooLong
)

func (k KeyErrorKind) String() string {
	switch k {
	case KeyNoEquals:
		return "no '='"
	case KeyEmpty:
		return "empty key"
	case KeyTooLong:
		return fmt.Sprintf("key longer than %d bytes", KeySizeMax)
	case KeyBadChar:
		return "key must start with A-Z and hold only letters, digits and . - + @ _"
	case KeyValueTooLong:
		return "value too long"
	case KeyValueNotUTF8:
		return "value is not UTF-8"
	case KeyDuplicate:
		return "key sent twice"
	case KeyUnterminated:
		return "last pair not NUL-terminated"
	case KeyTooMany:
		return fmt.Sprintf("more than %d pairs", PairsMax)
	case KeyTextTooLong:
		return fmt.Sprintf("text longer than %d bytes", TextSizeMax)
	}
	return fmt.Sprintf("kind %d", uint8(k))
}

// KeyError locates a text error: Offset counts bytes from the start of the text.
type KeyError struct {
	Kind   KeyErrorKind
	Offset int
	Key    string
}

func (e *KeyError) Error() string {
	if e.Key != "" {
		return fmt.Sprintf("login text: key %q at offset %d: %s", e.Key, e.Offset, e.Kind)
	}
	return fmt.Sprintf("login text at offset %d: %s", e.Offset, e.Kind)
}

// ParseKeys splits a complete text (the data segments of a negotiation, reassembled)
// into pairs: key=value, each NUL-terminated (RFC 7143 §6.1). Key names must follow
// the key-name rule and be at most 63 bytes; values must be UTF-8 and within the size
// for their key; a key may appear only once (§6.2). NUL bytes after the last pair
// (padding some initiators leave) are ignored.
func ParseKeys(text []byte) ([]Pair, error) {
	var pairs []Pair
	seen := make(map[string]struct{})
	for off := 0; off < len(text); {
		end := off
		for end < len(text) && text[end] != 0 {
			end++
		}
		if end == off { // an empty entry: only trailing NULs may follow
			for _, c := range text[off:] {
				if c != 0 {
					return nil, &KeyError{Kind: KeyEmpty, Offset: off}
				}
			}
			break
		}
		if end == len(text) {
			return nil, &KeyError{Kind: KeyUnterminated, Offset: off}
		}
		p, err := parsePair(text[off:end], off)
		if err != nil {
			return nil, err
		}
		if _, dup := seen[p.Key]; dup {
			return nil, &KeyError{Kind: KeyDuplicate, Offset: off, Key: p.Key}
		}
		if len(pairs) == PairsMax {
			return nil, &KeyError{Kind: KeyTooMany, Offset: off}
		}
		seen[p.Key] = struct{}{}
		pairs = append(pairs, p)
		off = end + 1
	}
	return pairs, nil
}

func parsePair(b []byte, off int) (Pair, error) {
	eq := -1
	for i, c := range b {
		if c == '=' {
			eq = i
			break
		}
	}
	switch {
	case eq < 0:
		return Pair{}, &KeyError{Kind: KeyNoEquals, Offset: off}
	case eq == 0:
		return Pair{}, &KeyError{Kind: KeyEmpty, Offset: off}
	case eq > KeySizeMax:
		return Pair{}, &KeyError{Kind: KeyTooLong, Offset: off}
	}
	key := string(b[:eq])
	if !validKeyName(key) {
		return Pair{}, &KeyError{Kind: KeyBadChar, Offset: off, Key: key}
	}
	value := b[eq+1:]
	if len(value) > valueSizeMax(key) {
		return Pair{}, &KeyError{Kind: KeyValueTooLong, Offset: off + eq + 1, Key: key}
	}
	if !utf8.Valid(value) {
		return Pair{}, &KeyError{Kind: KeyValueNotUTF8, Offset: off + eq + 1, Key: key}
	}
	return Pair{Key: key, Value: string(value)}, nil
}

// keyProtocolLevel is RFC 7144 §2.1's key, which breaks RFC 7143 §6.1's capital-letter
// rule; initiators that implement RFC 7144 send it, so it is accepted (and answered
// NotUnderstood: Sluice implements RFC 7143).
const keyProtocolLevel = "iSCSIProtocolLevel"

// validKeyName applies RFC 7143 §6.1: a capital letter, then letters, digits, dot,
// minus, plus, commercial at and underscore.
func validKeyName(k string) bool {
	if k == keyProtocolLevel {
		return true
	}
	if k == "" || k[0] < 'A' || k[0] > 'Z' {
		return false
	}
	for i := 1; i < len(k); i++ {
		c := k[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '.', c == '-', c == '+', c == '@', c == '_':
		default:
			return false
		}
	}
	return true
}

// valueSizeMax is the longest value accepted for key.
func valueSizeMax(key string) int {
	switch key {
	case keyCHAPC, keyCHAPR, keyHeaderDigest, keyDataDigest, keyAuthMethod, keyCHAPA, keyTaskReporting:
		return LargeValueSizeMax
	}
	if _, ok := keyTable[key]; ok {
		return ValueSizeMax
	}
	return LargeValueSizeMax
}

// AppendPair appends key=value and its NUL.
func AppendPair(dst []byte, key, value string) []byte {
	dst = append(dst, key...)
	dst = append(dst, '=')
	dst = append(dst, value...)
	return append(dst, 0)
}

// Reassembler joins the data segments of a text sent across PDUs with the C bit
// (RFC 7143 §11.10, §11.12): a pair may be split anywhere between two PDUs.
type Reassembler struct {
	buf []byte
}

// Add appends one PDU's data. When final (the C bit is clear) it returns the whole
// text, which stays valid until the next Add, and starts over.
func (r *Reassembler) Add(data []byte, final bool) ([]byte, error) {
	if len(r.buf)+len(data) > TextSizeMax {
		r.buf = r.buf[:0]
		return nil, &KeyError{Kind: KeyTextTooLong, Offset: TextSizeMax}
	}
	if final && len(r.buf) == 0 {
		return data, nil
	}
	r.buf = append(r.buf, data...)
	if !final {
		return nil, nil
	}
	text := r.buf
	r.buf = r.buf[len(r.buf):] // keep capacity; text stays valid until the next Add
	return text, nil
}

// Pending reports whether a partial text is waiting for its final PDU.
func (r *Reassembler) Pending() bool { return len(r.buf) > 0 }

// Reset drops a partial text.
func (r *Reassembler) Reset() { r.buf = r.buf[:0] }

// SplitText cuts text into a PDU-sized chunk and the rest, for a response larger than
// the peer's MaxRecvDataSegmentLength: send chunk with the C bit set while rest is not
// empty (RFC 7143 §6.1, §11.11.2).
func SplitText(text []byte, sizeMax int) (chunk, rest []byte) {
	if len(text) <= sizeMax {
		return text, nil
	}
	return text[:sizeMax], text[sizeMax:]
}

// Values (RFC 7143 §6.1).

// parseNumber reads a numerical value: a decimal constant, or a hex constant (0x…).
func parseNumber(s string) (uint64, bool) {
	base := 10
	if len(s) > 2 && (s[:2] == "0x" || s[:2] == "0X") {
		s, base = s[2:], 16
	}
	if s == "" || s[0] == '+' || s[0] == '-' || s[0] == '_' {
		return 0, false // ParseUint takes none of these from the RFC's grammar anyway
	}
	v, err := strconv.ParseUint(s, base, 64)
	if err != nil {
		return 0, false
	}
	return v, true
}

// parseBool reads a boolean value: exactly Yes or No.
func parseBool(s string) (v, ok bool) {
	switch s {
	case "Yes":
		return true, true
	case "No":
		return false, true
	}
	return false, false
}

func formatBool(v bool) string {
	if v {
		return "Yes"
	}
	return "No"
}

// decodeBinary reads a binary value: a hex constant (0x…, an odd digit count implies a
// leading zero nibble) or a base64 constant (0b…, RFC 2045 alphabet).
func decodeBinary(s string) ([]byte, bool) {
	if len(s) < 3 || s[0] != '0' {
		return nil, false
	}
	body := s[2:]
	switch s[1] {
	case 'x', 'X':
		if len(body)%2 == 1 {
			body = "0" + body
		}
		b, err := hex.DecodeString(body)
		return b, err == nil
	case 'b', 'B':
		b, err := base64.StdEncoding.DecodeString(body)
		if err != nil {
			b, err = base64.RawStdEncoding.DecodeString(body)
		}
		return b, err == nil
	}
	return nil, false
}

func encodeHex(b []byte) string { return "0x" + hex.EncodeToString(b) }

// splitList splits a list-of-values. Each value must be a non-empty text-value of at
// most ValueSizeMax bytes (RFC 7143 §6.1); ok is false otherwise.
func splitList(s string) ([]string, bool) {
	items := strings.Split(s, ",")
	for _, it := range items {
		if it == "" || len(it) > ValueSizeMax || !validTextValue(it) {
			return nil, false
		}
	}
	return items, true
}

// validTextValue applies RFC 7143 §6.1's text-value: letters, digits, dot, minus, plus,
// commercial at, underscore, slash, brackets and colon.
func validTextValue(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '.', c == '-', c == '+', c == '@', c == '_', c == '/', c == '[', c == ']', c == ':':
		default:
			return false
		}
	}
	return true
}
