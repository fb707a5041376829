// Package repo is the lifeboat repository: deduplicated, zstd-compressed,
// age-encrypted blobs in packs, with an index, snapshot manifests and locks,
// stored in a gocloud.dev/blob bucket. See docs/repository.md for the format.
package repo
