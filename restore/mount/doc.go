// Package mount serves a repository's snapshots as a read-only FUSE file
// system (github.com/hanwen/go-fuse/v2): snapshots by ID, time, target and
// latest; metadata with the host key, file contents only with the owner key.
package mount
