package authz

import (
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Passwords are stored as PHC strings of argon2id (RFC 9106) with a
// random 16-byte salt, with OWASP's recommended minimum parameters
// (19 MiB, 2 passes, 1 lane): one check costs tens of milliseconds, paid
// once per Thrift or SQL connection, not per request.
const (
	argonMemoryKiB = 19 * 1024
	argonTime      = 2
	argonThreads   = 1
	argonKeyLen    = 32
	saltLen        = 16
	// MaxPasswordLen bounds what is hashed (and accepted from the network).
	MaxPasswordLen = 1024
	// maxArgonMemoryKiB bounds what a stored hash may ask a check to
	// allocate (RFC 9106's second recommendation, 64 MiB).
	maxArgonMemoryKiB = 64 * 1024
)

// ErrBadPassword is returned for a wrong password or a user without one.
var ErrBadPassword = errors.New("wrong user name or password")

// HashPassword returns the PHC string of password with a new salt.
func HashPassword(password string) (string, error) {
	if password == "" {
		return "", errors.New("password: must not be empty")
	}
	if len(password) > MaxPasswordLen {
		return "", fmt.Errorf("password: at most %d bytes", MaxPasswordLen)
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemoryKiB, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemoryKiB, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// CheckPassword reports whether password matches the PHC string hash.
// The parameters come from hash, bounded so that a corrupt or hostile
// hash cannot make the check allocate without limit.
func CheckPassword(hash, password string) error {
	if hash == "" || len(password) > MaxPasswordLen {
		return ErrBadPassword
	}
	p, err := parsePHC(hash)
	if err != nil {
		return err
	}
	key := argon2.IDKey([]byte(password), p.salt, p.time, p.memory, p.threads, uint32(len(p.key)))
	if subtle.ConstantTimeCompare(key, p.key) != 1 {
		return ErrBadPassword
	}
	return nil
}

type phc struct {
	memory, time uint32
	threads      uint8
	salt, key    []byte
}

func parsePHC(s string) (phc, error) {
	var p phc
	bad := fmt.Errorf("password hash: not an argon2id PHC string")
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return p, bad
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return p, bad
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.memory, &p.time, &p.threads); err != nil {
		return p, bad
	}
	if p.memory == 0 || p.memory > maxArgonMemoryKiB || p.time == 0 || p.time > 10 || p.threads == 0 || p.threads > 8 {
		return p, fmt.Errorf("password hash: parameters out of range (m=%d, t=%d, p=%d)", p.memory, p.time, p.threads)
	}
	var err error
	if p.salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil || len(p.salt) < 8 {
		return p, bad
	}
	if p.key, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil || len(p.key) < 16 || len(p.key) > 64 {
		return p, bad
	}
	return p, nil
}

// MySQLNativeHash is SHA1(SHA1(password)), the verifier of MySQL's
// mysql_native_password challenge ("" has none). It is what MySQL stores
// for that plugin, and as weak: unsalted and fast to brute-force, so it is
// kept, like the argon2id hash, only in PD and the nodes (GetAuth).
func MySQLNativeHash(password string) []byte {
	if password == "" {
		return nil
	}
	a := sha1.Sum([]byte(password))
	b := sha1.Sum(a[:])
	return b[:]
}
