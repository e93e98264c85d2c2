package crypto

import (
	"crypto/aes"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"

	"golang.org/x/crypto/xts"
)

// CipherXTS is the one cipher: AES in XTS mode (IEEE 1619), as SPDK's
// accel_crypto_key_create names it.
const CipherXTS = "AES_XTS"

// ErrKey is wrapped by every error about a key: its name, its hex, its
// length, its file. The messages never hold key bytes.
var ErrKey = errors.New("crypto key")

// Key is a named AES-XTS key, ready to use: only the expanded ciphers are
// kept, the key bytes are cleared once they are made. A Key prints as its
// name, so it cannot reach a log or an RPC answer by accident.
type Key struct {
	name   string
	bits   int // 128 or 256: the AES key size of each half
	cipher *xts.Cipher
	users  int // stages using it; guarded by the Keys' lock
}

// Name is the key's name.
func (k *Key) Name() string { return k.name }

// Bits is 128 (AES-128-XTS, 32 key bytes) or 256 (AES-256-XTS, 64).
func (k *Key) Bits() int { return k.bits }

// String, GoString and LogValue show the name only.
func (k *Key) String() string             { return "crypto key " + k.name }
func (k *Key) GoString() string           { return k.String() }
func (k *Key) LogValue() slog.Value       { return slog.StringValue(k.String()) }
func (k *Key) Format(f fmt.State, _ rune) { fmt.Fprint(f, k.String()) }

// NewKey makes a key from its two halves (key: the data key, key2: the
// tweak key), 16 bytes each for AES-128-XTS or 32 for AES-256-XTS. The
// halves must differ (IEEE 1619-2007 5.1, and FIPS 140 refuses equal ones).
// It clears key and key2.
func NewKey(name string, key, key2 []byte) (*Key, error) {
	defer clear(key)
	defer clear(key2)
	if name == "" || len(name) > 64 {
		return nil, fmt.Errorf("key name %q, want 1..64 characters: %w", name, ErrKey)
	}
	if len(key) != len(key2) || (len(key) != 16 && len(key) != 32) {
		return nil, fmt.Errorf("key %q: halves of %d and %d bytes, want 16 and 16 (AES-128-XTS) or 32 and 32 (AES-256-XTS): %w",
			name, len(key), len(key2), ErrKey)
	}
	if string(key) == string(key2) {
		return nil, fmt.Errorf("key %q: key and key2 are equal, want two different halves: %w", name, ErrKey)
	}
	both := make([]byte, 0, 2*len(key))
	both = append(append(both, key...), key2...)
	defer clear(both)
	c, err := xts.NewCipher(aes.NewCipher, both)
	if err != nil {
		return nil, fmt.Errorf("key %q: %v: %w", name, err, ErrKey)
	}
	return &Key{name: name, bits: 8 * len(key), cipher: c}, nil
}

// ParseHexKey makes a key from SPDK's hex strings (accel_crypto_key_create's
// key and key2). The errors say which field is wrong, never its content.
func ParseHexKey(name, cipher, keyHex, key2Hex string) (*Key, error) {
	if cipher != CipherXTS {
		return nil, fmt.Errorf("key %q: cipher %q, want %s: %w", name, cipher, CipherXTS, ErrKey)
	}
	key, err := hex.DecodeString(keyHex)
	if err != nil {
		return nil, fmt.Errorf("key %q: key is not hex (%d characters): %w", name, len(keyHex), ErrKey)
	}
	key2, err := hex.DecodeString(key2Hex)
	if err != nil {
		clear(key)
		return nil, fmt.Errorf("key %q: key2 is not hex (%d characters): %w", name, len(key2Hex), ErrKey)
	}
	return NewKey(name, key, key2)
}

// LoadKeyFile reads a key file: the two halves as hex, key then key2, in
// one string (64 hex digits for AES-128-XTS, 128 for AES-256-XTS) or on two
// lines; blanks are ignored. The file must not be readable by group or
// others (mode 0600 or 0400).
func LoadKeyFile(name, path string) (*Key, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("key %q: %w", name, err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("key %q: file %s has mode %#o, readable by others: want 0600 or 0400: %w", name, path, perm, ErrKey)
	}
	if !st.Mode().IsRegular() || st.Size() > 4096 {
		return nil, fmt.Errorf("key %q: %s is not a small regular file: %w", name, path, fs.ErrInvalid)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("key %q: %w", name, err)
	}
	defer clear(data)
	text := strings.Join(strings.Fields(string(data)), "")
	raw, err := hex.DecodeString(text)
	if err != nil {
		return nil, fmt.Errorf("key %q: file %s is not hex: %w", name, path, ErrKey)
	}
	return NewKey(name, raw[:len(raw)/2], raw[len(raw)/2:])
}

// Keys is the daemon's named keys (accel_crypto_key_create adds one, a
// topology's key_file another). Control plane.
type Keys struct {
	// lock: the key table and use counts; RPC handlers and stage creation
	// only, never the I/O path (a stage holds its *Key).
	mu   sync.Mutex
	keys map[string]*Key
}

// Add records k; a name taken is an error, never a replacement.
func (ks *Keys) Add(k *Key) error {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if ks.keys == nil {
		ks.keys = map[string]*Key{}
	}
	if _, dup := ks.keys[k.name]; dup {
		return fmt.Errorf("key %q exists: %w", k.name, ErrKey)
	}
	ks.keys[k.name] = k
	return nil
}

// Use takes the key called name for a stage; Release gives it back.
func (ks *Keys) Use(name string) (*Key, error) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	k, ok := ks.keys[name]
	if !ok {
		return nil, fmt.Errorf("no key %q (create it with accel_crypto_key_create or a key_file): %w", name, ErrKey)
	}
	k.users++
	return k, nil
}

// Release returns a key taken with Use.
func (ks *Keys) Release(k *Key) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	k.users--
}

// Destroy removes a key no stage uses.
func (ks *Keys) Destroy(name string) error {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	k, ok := ks.keys[name]
	switch {
	case !ok:
		return fmt.Errorf("no key %q: %w", name, ErrKey)
	case k.users > 0:
		return fmt.Errorf("key %q is used by %d crypto bdev(s): delete them first: %w", name, k.users, ErrKey)
	}
	delete(ks.keys, name)
	return nil
}

// KeyInfo is what a query may show of a key: never its bytes.
type KeyInfo struct {
	Name   string `json:"name"`
	Cipher string `json:"cipher"`
	Bits   int    `json:"key_bits"`
	Users  int    `json:"users"`
}

// List describes the keys, sorted by name.
func (ks *Keys) List() []KeyInfo {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	out := []KeyInfo{}
	for _, k := range ks.keys {
		out = append(out, KeyInfo{Name: k.name, Cipher: CipherXTS, Bits: k.bits, Users: k.users})
	}
	slices.SortFunc(out, func(a, b KeyInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}
