package pgstore

import (
	"sync"

	"github.com/tomkit/tomkit/crypto/kms"
)

var stores sync.Map // *kms.Keyring → *store

func init() {
	opened = func(r *kms.Keyring, s *store) { stores.Store(r, s) }
}

// ListenerPID returns the backend pid of r's listening connection.
func ListenerPID(r *kms.Keyring) uint32 {
	s, _ := stores.Load(r)
	return s.(*store).pid.Load()
}

// SetReconnectHook sets the function run before each reconnection.
func SetReconnectHook(f func()) { reconnectHook = f }

// ParsePayload is parsePayload.
var ParsePayload = parsePayload
