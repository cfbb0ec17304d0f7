package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// A Checkpoint is the chain's head signed with an Ed25519 key kept outside the database (vigil
// audit checkpoint). Someone with the database can delete rows and rewrite audit_head; they
// cannot sign a checkpoint, so verify finds a chain cut below a signed head.
type Checkpoint struct {
	Seq       int64
	Hash      []byte
	At        time.Time
	KeyID     string
	Signature []byte
}

// message is what a checkpoint signs.
func (c Checkpoint) message() []byte {
	return fmt.Appendf(nil, "vigil-audit-checkpoint\n%d\n%x\n%d\n%s", c.Seq, c.Hash, c.At.UnixMicro(), c.KeyID)
}

// KeyID names a public key: the first 8 bytes of its SHA-256, in hex.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// GenerateKey writes a new signing key to dir: audit-checkpoint.key (PKCS #8 PEM, 0600: keep it
// off the database's machine) and audit-checkpoint.pub (PKIX PEM, for verify). It returns the
// two paths.
func GenerateKey(dir string) (keyPath, pubPath string, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", "", err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", "", err
	}
	keyPath, pubPath = filepath.Join(dir, "audit-checkpoint.key"), filepath.Join(dir, "audit-checkpoint.pub")
	if _, err := os.Stat(keyPath); err == nil {
		return "", "", fmt.Errorf("audit: %s exists; move it away first", keyPath)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return "", "", err
	}
	return keyPath, pubPath, os.WriteFile(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644)
}

// LoadKey reads a key written by GenerateKey.
func LoadKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("audit: %s is not a PEM private key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("audit: %s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("audit: %s is not an Ed25519 key", path)
	}
	return priv, nil
}

// LoadPublicKey reads a public key written by GenerateKey.
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("audit: %s is not a PEM public key", path)
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("audit: %s: %w", path, err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("audit: %s is not an Ed25519 key", path)
	}
	return pub, nil
}

// ErrEmpty means there is nothing to checkpoint yet.
var ErrEmpty = errors.New("audit: the chain is empty")

// SignHead signs the chain's current head and stores the checkpoint. Signing the same head twice
// stores it once.
func SignHead(ctx context.Context, pool *pgxpool.Pool, priv ed25519.PrivateKey) (Checkpoint, error) {
	var c Checkpoint
	err := pool.QueryRow(ctx, `SELECT seq, hash FROM audit_head`).Scan(&c.Seq, &c.Hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, ErrEmpty
	}
	if err != nil {
		return c, err
	}
	c.At = time.Now().UTC().Truncate(time.Microsecond)
	c.KeyID = KeyID(priv.Public().(ed25519.PublicKey))
	c.Signature = ed25519.Sign(priv, c.message())
	_, err = pool.Exec(ctx, `INSERT INTO audit_checkpoints (seq, hash, at, key_id, signature) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (seq, key_id) DO NOTHING`, c.Seq, c.Hash, c.At, c.KeyID, c.Signature)
	if err != nil {
		return c, err
	}
	// A row already there for this seq and key must be a valid signature of ours: one the
	// application role put there first would otherwise stand in for the real one.
	var stored Checkpoint
	err = pool.QueryRow(ctx, `SELECT seq, hash, at, key_id, signature FROM audit_checkpoints WHERE seq = $1 AND key_id = $2`,
		c.Seq, c.KeyID).Scan(&stored.Seq, &stored.Hash, &stored.At, &stored.KeyID, &stored.Signature)
	if err != nil {
		return c, err
	}
	stored.At = stored.At.UTC()
	if err := stored.verifySignature([]ed25519.PublicKey{priv.Public().(ed25519.PublicKey)}); err != nil || !bytes.Equal(stored.Hash, c.Hash) {
		return c, fmt.Errorf("%w: a checkpoint of row %d under this key is already stored and is not ours (forged?)", ErrTampered, c.Seq)
	}
	return stored, nil
}

// checkpoints loads every stored checkpoint (one row may be signed under several keys).
func checkpoints(ctx context.Context, pool *pgxpool.Pool) ([]Checkpoint, error) {
	rows, err := pool.Query(ctx, `SELECT seq, hash, at, key_id, signature FROM audit_checkpoints ORDER BY seq, key_id`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Checkpoint, error) {
		var c Checkpoint
		err := r.Scan(&c.Seq, &c.Hash, &c.At, &c.KeyID, &c.Signature)
		c.At = c.At.UTC()
		return c, err
	})
}

// verifySignature checks a checkpoint against the trusted keys.
func (c Checkpoint) verifySignature(keys []ed25519.PublicKey) error {
	for _, k := range keys {
		if KeyID(k) == c.KeyID {
			if ed25519.Verify(k, c.message(), c.Signature) {
				return nil
			}
			return errors.New("its signature does not verify")
		}
	}
	return fmt.Errorf("it is signed by key %s, which is not trusted", c.KeyID)
}
