package access

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// secrets protects credentials' secrets (card numbers, PINs, QR payloads) under the server's
// secret, a 32-byte key kept outside the database: they are looked up by HMAC-SHA256 under it
// (an unsalted hash of a 6-digit PIN is reversed by a table; a keyed one is not without the key),
// and kept encrypted (AES-256-GCM) under a key derived from it, so that each door's offline cache
// can be made with that door's own key.
type secrets struct {
	mac  []byte
	aead cipher.AEAD
}

func newSecrets(key []byte) (*secrets, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("access: the server secret must be 32 bytes, not %d", len(key))
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte("vigil credential encryption v1"))
	block, err := aes.NewCipher(m.Sum(nil))
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	m = hmac.New(sha256.New, key)
	m.Write([]byte("vigil credential lookup v1"))
	return &secrets{mac: m.Sum(nil), aead: aead}, nil
}

// hash is how a credential's secret is stored and looked up.
func (s *secrets) hash(kind, value string) [32]byte {
	m := hmac.New(sha256.New, s.mac)
	m.Write([]byte(kind + ":" + value))
	var out [32]byte
	copy(out[:], m.Sum(nil))
	return out
}

// seal encrypts a secret for storage.
func (s *secrets) seal(kind, value string) []byte {
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return s.aead.Seal(nonce, nonce, []byte(kind+":"+value), nil)
}

// sealBytes encrypts a biometric blob (an enrolment crop) for storage; purpose is bound into it.
func (s *secrets) sealBytes(purpose string, b []byte) []byte {
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return s.aead.Seal(nonce, nonce, b, []byte(purpose))
}

// openBytes decrypts what sealBytes made for purpose.
func (s *secrets) openBytes(purpose string, enc []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(enc) < n {
		return nil, errors.New("access: sealed data too short")
	}
	b, err := s.aead.Open(nil, enc[:n], enc[n:], []byte(purpose))
	if err != nil {
		return nil, fmt.Errorf("access: sealed %s: %w", purpose, err)
	}
	return b, nil
}

// open decrypts what seal made.
func (s *secrets) open(enc []byte) (kind, value string, err error) {
	n := s.aead.NonceSize()
	if len(enc) < n {
		return "", "", errors.New("access: sealed secret too short")
	}
	b, err := s.aead.Open(nil, enc[:n], enc[n:], nil)
	if err != nil {
		return "", "", fmt.Errorf("access: sealed secret: %w", err)
	}
	kind, value, _ = strings.Cut(string(b), ":")
	return kind, value, nil
}

// SecretKey is how credentials stored before keyed hashing were looked up: SHA-256 of
// "kind:value" (hash_alg sha256). New credentials are keyed (secrets.hash).
func SecretKey(kind, value string) [32]byte {
	return sha256.Sum256([]byte(kind + ":" + value))
}

// CacheHash is how a door's offline cache names a credential: HMAC-SHA256 of "kind:value" under
// a key derived from the door's own key. Each door's cache differs from every other's, and a
// copy of it reveals nothing without that door's key.
func CacheHash(doorKey []byte, kind, value string) string {
	k := hmac.New(sha256.New, doorKey)
	k.Write([]byte("vigil door cache v1"))
	m := hmac.New(sha256.New, k.Sum(nil))
	m.Write([]byte(kind + ":" + value))
	return hex.EncodeToString(m.Sum(nil))
}

// LoadSecret reads the server's secret from path (64 hex digits), creating it (0600) when it
// does not exist. Every node of a site must use the same secret; lose it and every card, PIN and
// QR code must be issued again.
func LoadSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) { // another process made it first
			return LoadSecret(path)
		}
		if err != nil {
			return nil, err
		}
		_, err = f.WriteString(hex.EncodeToString(key) + "\n")
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return key, err
	}
	if err != nil {
		return nil, err
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("access: %s does not hold a 32-byte secret in hex", path)
	}
	return key, nil
}
