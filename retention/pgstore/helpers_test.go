package pgstore_test

import (
	"crypto/sha256"
	"encoding/hex"
)

func sha256Lines(keys []string) string {
	h := sha256.New()
	for _, k := range keys {
		h.Write([]byte(k + "\n"))
	}
	return hex.EncodeToString(h.Sum(nil))
}
