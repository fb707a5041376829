package storage

import (
	"errors"
	"fmt"
	"io/fs"

	"gocloud.dev/gcerrors"
)

var (
	// ErrNotExist reports a missing object, bucket or repository directory.
	// errors.Is(err, fs.ErrNotExist) holds for it as well.
	ErrNotExist = fmt.Errorf("storage: object does not exist: %w", fs.ErrNotExist)

	// ErrExist reports a write-once object that is already there.
	// errors.Is(err, fs.ErrExist) holds for it as well.
	ErrExist = fmt.Errorf("storage: object already exists: %w", fs.ErrExist)

	// ErrUnreachable reports a store that could not be listed (endpoint
	// down, bad credentials, ...). See Ping.
	ErrUnreachable = errors.New("storage: unreachable")
)

// kindError keeps the original error's text and chain and adds a sentinel
// for errors.Is.
type kindError struct {
	kind error
	err  error
}

func (e *kindError) Error() string   { return e.err.Error() }
func (e *kindError) Unwrap() []error { return []error{e.kind, e.err} }

// Wrap maps an error from a *blob.Bucket (or from this package) so that
// errors.Is(err, ErrNotExist) and errors.Is(err, ErrExist) work: gocloud's
// NotFound (and fs.ErrNotExist) become ErrNotExist; AlreadyExists and
// FailedPrecondition (a failed WriterOptions.IfNotExist: lifeboat uses no
// other preconditions) become ErrExist. Other errors, and nil, are
// returned unchanged.
func Wrap(err error) error {
	if err == nil || errors.Is(err, ErrNotExist) || errors.Is(err, ErrExist) {
		return err
	}
	switch gcerrors.Code(err) {
	case gcerrors.NotFound:
		return &kindError{ErrNotExist, err}
	case gcerrors.AlreadyExists, gcerrors.FailedPrecondition:
		return &kindError{ErrExist, err}
	}
	if errors.Is(err, fs.ErrNotExist) {
		return &kindError{ErrNotExist, err}
	}
	return err
}
