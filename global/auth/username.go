package auth

import (
	"crypto/rand"
	"fmt"
	"math/big"
	"strings"
)

// Username rules: 3–20 characters of [A-Za-z0-9_], unique regardless of case.
const (
	UsernameMinLen = 3
	UsernameMaxLen = 20
)

// ValidUsername reports whether s follows the username rules (uniqueness
// is the database's to check).
func ValidUsername(s string) bool {
	if len(s) < UsernameMinLen || len(s) > UsernameMaxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !usernameChar(s[i]) {
			return false
		}
	}
	return true
}

func usernameChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

// usernameBase turns a claim ("Ana María", "ana.m@example.com") into a
// valid username: the part before an '@' (never publish an email), runs of
// other characters folded into one '_', trimmed, cut to leave room for a
// suffix. Empty or too short results fall back to "player".
func usernameBase(hints ...string) string {
	for _, h := range hints {
		if at := strings.IndexByte(h, '@'); at >= 0 {
			h = h[:at]
		}
		var b strings.Builder
		under := false
		for i := 0; i < len(h); i++ {
			c := h[i]
			if usernameChar(c) && c != '_' {
				b.WriteByte(c)
				under = false
			} else if !under && b.Len() > 0 {
				b.WriteByte('_')
				under = true
			}
		}
		s := strings.TrimRight(b.String(), "_")
		if len(s) > UsernameMaxLen-5 {
			s = strings.TrimRight(s[:UsernameMaxLen-5], "_")
		}
		if len(s) >= UsernameMinLen {
			return s
		}
	}
	return "player"
}

// usernameCandidates returns n names to try in order: base itself, then
// base_NNNN with random digits, then player_xxxxxxxx.
func usernameCandidates(base string, n int) []string {
	out := []string{base}
	for len(out) < n-1 {
		out = append(out, fmt.Sprintf("%s_%04d", base, randInt(10000)))
	}
	return append(out, fmt.Sprintf("player_%08d", randInt(100000000)))
}

func randInt(n int64) int64 {
	v, err := rand.Int(rand.Reader, big.NewInt(n))
	if err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return v.Int64()
}
