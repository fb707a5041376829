package storage

import (
	"context"

	"gocloud.dev/blob"
)

// Read returns the whole object key; a missing key gives ErrNotExist.
func Read(ctx context.Context, b *blob.Bucket, key string) ([]byte, error) {
	data, err := b.ReadAll(ctx, key)
	return data, Wrap(err)
}

// Delete removes key; a missing key gives ErrNotExist.
func Delete(ctx context.Context, b *blob.Bucket, key string) error {
	return Wrap(b.Delete(ctx, key))
}

// Exists tells whether key exists.
func Exists(ctx context.Context, b *blob.Bucket, key string) (bool, error) {
	ok, err := b.Exists(ctx, key)
	return ok, Wrap(err)
}
