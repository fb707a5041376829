package repo

import (
	"errors"
	"fmt"
)

// Errors callers branch on. cmd/lifeboat maps them to exit codes.
var (
	// ErrNoRepository: the storage location holds no repository (no config).
	ErrNoRepository = errors.New("no repository at this location")
	// ErrAlreadyInitialized: init found an existing config.
	ErrAlreadyInitialized = errors.New("repository already initialized")
	// ErrWrongKey: none of the given identities (or the passphrase) opens any key of the repository.
	ErrWrongKey = errors.New("wrong key: no repository key matches the given identity or passphrase")
	// ErrNoDataKey: pack contents are encrypted to the owner only; a host identity cannot read them.
	ErrNoDataKey = errors.New("this identity cannot decrypt pack contents: the owner identity is required (host keys can back up, not restore)")
	// ErrNotFound: a snapshot, blob or path does not exist.
	ErrNotFound = errors.New("not found")
)

// CorruptError reports damaged repository content; Object names the stored
// object (e.g. "data/ab/abcd..." or "index/1234...").
type CorruptError struct {
	Object string
	Err    error
}

func (e *CorruptError) Error() string { return fmt.Sprintf("%s: corrupt: %v", e.Object, e.Err) }
func (e *CorruptError) Unwrap() error { return e.Err }

func corrupt(object string, format string, args ...any) error {
	return &CorruptError{Object: object, Err: fmt.Errorf(format, args...)}
}
