// Package storage opens the object stores that hold lifeboat repositories
// (gocloud.dev/blob URLs: file://, mem://, s3:// incl. MinIO, gs://,
// azblob://) and provides the few safe primitives the repository needs:
// write-once objects, sentinel errors, URL redaction and reachability checks.
//
// See docs/storage.md for the supported URLs, credentials and per-driver
// behaviour.
package storage
