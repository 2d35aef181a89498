package authz

import (
	"testing"
)

// FuzzCheckPassword: a stored hash is parsed with bounds; no input makes
// the check panic or ask for more than maxArgonMemoryKiB.
func FuzzCheckPassword(f *testing.F) {
	h, err := HashPassword("pw")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(h, "pw")
	f.Add("$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5", "x")
	f.Add("$argon2id$v=19$m=8,t=1,p=1$$", "")
	f.Fuzz(func(t *testing.T, hash, password string) {
		p, err := parsePHC(hash)
		if err == nil && (p.memory > maxArgonMemoryKiB || len(p.key) > 64) {
			t.Fatalf("accepted out-of-bounds parameters %+v", p)
		}
		_ = CheckPassword(hash, password)
	})
}
