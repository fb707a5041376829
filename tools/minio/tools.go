//go:build tools

// Package tools pins the MinIO server used by lifeboat's tests
// (scripts/deps builds it with `go build github.com/minio/minio`).
package tools

import _ "github.com/minio/minio"
