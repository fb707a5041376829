package restore

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync/atomic"

	"gocloud.dev/blob"
	"golang.org/x/sync/errgroup"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/engine/storage"
	"github.com/lifeboat-backup/lifeboat/targets/bucket"
	"github.com/lifeboat-backup/lifeboat/targets/files"
)

// BucketOptions configure a bucket restore.
type BucketOptions struct {
	// Prefix is put before every key written to a destination bucket.
	Prefix   string
	Workers  int // default 2 x GOMAXPROCS (object stores like parallel writes)
	Progress *snapshot.Progress
}

// BucketStats summarize a bucket restore.
type BucketStats struct {
	Objects int64 `json:"objects"`
	Bytes   int64 `json:"bytes"`
}

// IsBucketURL reports whether dest names a bucket (scheme://) rather than
// a directory.
func IsBucketURL(dest string) bool { return strings.Contains(dest, "://") }

// Bucket restores the objects of a bucket snapshot to dest: a bucket URL
// (objects written with their content type, cache control, content
// encoding/disposition/language, user metadata, and their MD5 checked by
// the store where one was recorded), or a directory (one file per object,
// parents created, mtime set; keys are paths checked like a files
// restore's: nothing is written outside the directory and no symlink in
// it is followed). The destination bucket must exist.
func Bucket(ctx context.Context, s snapshot.Reader, dest string, opts BucketOptions) (*BucketStats, error) {
	sn := s.Info()
	if sn.Kind != "bucket" {
		return nil, fmt.Errorf("snapshot %s is a %s snapshot, not bucket", sn.ID.Short(), sn.Kind)
	}
	if opts.Workers <= 0 {
		opts.Workers = 2 * runtime.GOMAXPROCS(0)
	}
	opts.Workers = jobs(s, opts.Workers)
	if opts.Progress == nil {
		opts.Progress = &snapshot.Progress{}
	}
	var put func(ctx context.Context, n *snapshot.Node) error
	if IsBucketURL(dest) {
		b, err := storage.OpenWith(ctx, dest, storage.OpenOptions{Ping: true})
		if err != nil {
			return nil, err
		}
		defer b.Close()
		put = func(ctx context.Context, n *snapshot.Node) error { return putObject(ctx, s, b, opts.Prefix+n.Path, n) }
	} else {
		// Object keys are host-written paths: the files restorer keeps
		// them under dest and follows no symlink there.
		rs, err := files.NewRestorer(dest, snapshot.EntryOptions{Owner: snapshot.OwnerOff, Xattrs: snapshot.XattrsNone})
		if err != nil {
			return nil, err
		}
		defer rs.Close()
		put = func(ctx context.Context, n *snapshot.Node) error { return putFile(ctx, s, rs, n) }
	}
	st := &BucketStats{}
	var objects, bytes atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	jobs := make(chan *snapshot.Node, opts.Workers)
	for range opts.Workers {
		g.Go(func() error {
			for n := range jobs {
				if err := put(gctx, n); err != nil {
					return fmt.Errorf("restore %s: %w", n.Path, err)
				}
				objects.Add(1)
				bytes.Add(n.Size)
				opts.Progress.Files.Add(1)
				opts.Progress.Bytes.Add(n.Size)
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(jobs)
		tr := s.Tree(gctx)
		for {
			n, err := tr.Next()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			if n.Type != snapshot.TypeFile {
				continue
			}
			select {
			case jobs <- n:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	st.Objects, st.Bytes = objects.Load(), bytes.Load()
	return st, nil
}

// WriterOptions rebuilds an object's metadata from its entry.
func WriterOptions(e snapshot.Entry) *blob.WriterOptions {
	o := &blob.WriterOptions{}
	for _, x := range e.Xattrs {
		v := string(x.Value)
		switch {
		case x.Name == bucket.XattrContentType:
			o.ContentType = v
		case x.Name == bucket.XattrCacheControl:
			o.CacheControl = v
		case x.Name == bucket.XattrContentEncoding:
			o.ContentEncoding = v
		case x.Name == bucket.XattrContentDisposition:
			o.ContentDisposition = v
		case x.Name == bucket.XattrContentLanguage:
			o.ContentLanguage = v
		case x.Name == bucket.XattrMD5:
			if md5, err := hex.DecodeString(v); err == nil && len(md5) == 16 {
				o.ContentMD5 = md5
			}
		case strings.HasPrefix(x.Name, bucket.XattrMetaPrefix):
			if o.Metadata == nil {
				o.Metadata = map[string]string{}
			}
			o.Metadata[strings.TrimPrefix(x.Name, bucket.XattrMetaPrefix)] = v
		}
	}
	return o
}

func putObject(ctx context.Context, s snapshot.Reader, b *blob.Bucket, key string, n *snapshot.Node) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // an unfinished write is discarded by cancelling it
	w, err := b.NewWriter(ctx, key, WriterOptions(n.Entry))
	if err != nil {
		return err
	}
	content := s.Open(ctx, n)
	defer content.Close()
	written, err := io.Copy(w, content)
	if err == nil && written != n.Size {
		err = fmt.Errorf("content is %d bytes, metadata says %d", written, n.Size)
	}
	if err != nil {
		cancel()
		_ = w.Close()
		return err
	}
	return w.Close()
}

// putFile writes object n as a file under rs: created under a temporary
// name, mode 0644, renamed into place when complete, mtime set.
func putFile(ctx context.Context, s snapshot.Reader, rs *files.Restorer, n *snapshot.Node) error {
	f, err := rs.File(snapshot.Entry{Path: n.Path, Type: snapshot.TypeFile, Size: n.Size, Mode: 0o644, ModTime: n.ModTime})
	if err != nil {
		return err
	}
	content := s.Open(ctx, n)
	defer content.Close()
	written, err := io.Copy(f.File, content)
	if err == nil && written != n.Size {
		err = fmt.Errorf("content is %d bytes, metadata says %d", written, n.Size)
	}
	if err != nil {
		f.Abort()
		return err
	}
	return f.Commit()
}
