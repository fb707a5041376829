package miniotest

import (
	"bytes"
	"context"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"

	"gocloud.dev/blob"

	"github.com/lifeboat-backup/lifeboat/engine/storage"
)

// Log collects a bucket's retry log (written by concurrent requests).
type Log struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Lines are the lines logged so far (one a retry).
func (l *Log) Lines() []string {
	s := strings.TrimSpace(l.String())
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// OpenVia creates bucket on s and opens it with storage.OpenWith through
// endpoint (a Proxy's or a Throttle's) with the URL parameters params,
// closed when t ends; the retries log into the returned Log.
func (s *Server) OpenVia(t testing.TB, endpoint, bucket string, params url.Values) (*blob.Bucket, *Log) {
	t.Helper()
	s.CreateBucket(t, bucket)
	lg := &Log{}
	u := s.URLVia(endpoint, bucket, params)
	b, err := storage.OpenWith(context.Background(), u, storage.OpenOptions{Logger: slog.New(slog.NewTextHandler(lg, nil))})
	if err != nil {
		t.Fatalf("open %s: %v", storage.Redact(u), err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b, lg
}
