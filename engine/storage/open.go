package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"
	"weak"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// OpenOptions tunes OpenWith.
type OpenOptions struct {
	// Create makes a missing file:// directory (mode 0700, parents as
	// needed). It has no effect on other schemes: buckets and containers
	// are not created by lifeboat.
	Create bool
	// Ping lists one key after opening, so that a missing bucket, a wrong
	// endpoint or bad credentials fail here rather than at the first
	// read or write. See Ping.
	Ping bool
	// Logger receives one warning per retried request of an s3:// bucket
	// (operation, object, attempt, redacted URL, reason); nil means
	// slog.Default().
	Logger *slog.Logger
}

// Open opens the bucket at rawURL without creating or contacting anything
// (most drivers connect lazily). It is OpenWith with zero OpenOptions.
func Open(ctx context.Context, rawURL string) (*blob.Bucket, error) {
	return OpenWith(ctx, rawURL, OpenOptions{})
}

// OpenWith opens the bucket at rawURL, a gocloud.dev/blob URL:
//
//	file:///abs/dir, file://./rel/dir, or a plain path (/abs/dir, ./rel)
//	mem://                      (a new, empty, process-local bucket)
//	s3://bucket?region=eu-west-1
//	s3://bucket?endpoint=http://127.0.0.1:9000  (MinIO and other S3-compatibles)
//	gs://bucket
//	azblob://container
//
// lifeboat adds defaults: file:// gets no_tmp_dir and metadata=skip (no
// ".attrs" sidecar files, temporary files on the same file system); s3://
// with an endpoint gets use_path_style=true and, unless the URL or the
// environment names one, region=us-east-1. Credentials come from each
// cloud's standard environment (docs/storage.md). Errors never contain
// secrets from the URL (see Redact).
func OpenWith(ctx context.Context, rawURL string, opts OpenOptions) (*blob.Bucket, error) {
	u, dir, err := normalize(rawURL, opts)
	if err != nil {
		return nil, err
	}
	mux := blob.DefaultURLMux()
	if u.Scheme == "s3" {
		// lifeboat's own S3 opener: timeouts, retries, resumed reads.
		mux = new(blob.URLMux)
		mux.RegisterBucket("s3", &s3Opener{log: opts.Logger})
	}
	b, err := mux.OpenBucketURL(ctx, u)
	if err != nil {
		if dir != "" && errors.Is(err, fs.ErrNotExist) {
			return nil, &kindError{ErrNotExist, fmt.Errorf("storage: repository %s: directory %s does not exist", Redact(rawURL), dir)}
		}
		return nil, openError(rawURL, u, err)
	}
	if dir != "" {
		registerFileBucket(b, dir, u.Query().Get("prefix"))
	}
	if opts.Ping {
		if err := Ping(ctx, b); err != nil {
			_ = b.Close()
			return nil, &kindError{err, fmt.Errorf("repository %s unreachable: %s", Redact(rawURL), scrub(err.Error(), rawURL, u))}
		}
	}
	return b, nil
}

// openError builds an error for a failed open that names the redacted URL
// and keeps errors.Is working on the cause.
func openError(raw string, u *url.URL, err error) error {
	return &kindError{Wrap(err), fmt.Errorf("storage: open repository %s: %s", Redact(raw), scrub(err.Error(), raw, u))}
}

// Schemes returns the URL schemes compiled into this binary.
func Schemes() []string {
	s := blob.DefaultURLMux().BucketSchemes()
	sort.Strings(s)
	return s
}

// normalize parses rawURL, applies lifeboat's defaults and returns the URL
// to open and, for file://, the directory.
func normalize(rawURL string, opts OpenOptions) (*url.URL, string, error) {
	if rawURL == "" {
		return nil, "", errors.New("storage: empty repository URL")
	}
	if !strings.Contains(rawURL, "://") {
		// A plain path.
		if !strings.HasPrefix(rawURL, "/") && !strings.HasPrefix(rawURL, ".") {
			return nil, "", fmt.Errorf("storage: repository URL %q has no scheme: use one of %s://..., or a path starting with / or .", Redact(rawURL), strings.Join(Schemes(), "://..., "))
		}
		abs, err := filepath.Abs(rawURL)
		if err != nil {
			return nil, "", fmt.Errorf("storage: repository path %q: %w", rawURL, err)
		}
		rawURL = (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String()
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, "", fmt.Errorf("storage: invalid repository URL %q: %v", Redact(rawURL), err)
	}
	if !blob.DefaultURLMux().ValidBucketScheme(u.Scheme) {
		return nil, "", fmt.Errorf("storage: repository URL %q: unsupported scheme %q (supported: %s)", Redact(rawURL), u.Scheme, strings.Join(Schemes(), ", "))
	}
	q := u.Query()
	if _, ok := q["key"]; ok {
		return nil, "", fmt.Errorf("storage: repository URL %q: the key= parameter (single-object bucket) cannot hold a repository", Redact(rawURL))
	}
	var dir string
	switch u.Scheme {
	case "file":
		switch u.Host {
		case "", "localhost":
			dir = filepath.FromSlash(u.Path)
		case ".":
			dir = filepath.FromSlash(strings.TrimPrefix(u.Path, "/"))
		default:
			return nil, "", fmt.Errorf("storage: repository URL %q: file URLs take no host (%q); use file:///absolute/path or file://./relative/path", Redact(rawURL), u.Host)
		}
		if dir == "" {
			return nil, "", fmt.Errorf("storage: repository URL %q: no directory", Redact(rawURL))
		}
		setDefault(q, "no_tmp_dir", "true")
		setDefault(q, "metadata", "skip")
		if opts.Create {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, "", fmt.Errorf("storage: repository %s: %w", Redact(rawURL), err)
			}
		}
	case "s3":
		if u.Host == "" {
			return nil, "", fmt.Errorf("storage: repository URL %q: no bucket name (want s3://bucket[/...]?...)", Redact(rawURL))
		}
		if q.Get("endpoint") != "" {
			if q.Get("use_path_style") == "" && q.Get("s3ForcePathStyle") == "" {
				q.Set("use_path_style", "true")
			}
			if q.Get("region") == "" && os.Getenv("AWS_REGION") == "" && os.Getenv("AWS_DEFAULT_REGION") == "" {
				q.Set("region", "us-east-1")
			}
			// S3-compatible stores vary in their support of the newer
			// flexible checksums; integrity is checked by the repository
			// (keyed chunk IDs, authenticated encryption) anyway.
			setDefault(q, "request_checksum_calculation", "when_required")
			setDefault(q, "response_checksum_validation", "when_required")
		}
		// aws-sdk-go-v2 reads AWS_CA_BUNDLE while building its config, for
		// http:// endpoints too; say which variable is wrong.
		if ca := os.Getenv("AWS_CA_BUNDLE"); ca != "" {
			if _, err := os.ReadFile(ca); err != nil {
				return nil, "", fmt.Errorf("storage: repository %s: AWS_CA_BUNDLE=%s cannot be read (%v): point it at a PEM bundle or unset it", Redact(rawURL), ca, err)
			}
		}
	case "gs", "azblob":
		if u.Host == "" {
			return nil, "", fmt.Errorf("storage: repository URL %q: no bucket/container name", Redact(rawURL))
		}
	}
	if u.Path != "" && u.Path != "/" && u.Scheme != "file" {
		// gocloud ignores the path of bucket URLs; a prefix would silently
		// be dropped. Repositories under a prefix use blob.PrefixedBucket
		// (not done implicitly: say so).
		return nil, "", fmt.Errorf("storage: repository URL %q: a path (%q) after the bucket is not supported; use a separate bucket or the ?prefix= parameter", Redact(rawURL), u.Path)
	}
	u.RawQuery = q.Encode()
	return u, dir, nil
}

func setDefault(q url.Values, k, v string) {
	if _, ok := q[k]; !ok {
		q.Set(k, v)
	}
}

// IsVanished reports whether a listing failed because an object it had
// just seen was deleted before it could be stat'ed (fileblob); listing
// again is the answer.
func IsVanished(err error) bool {
	return err != nil && (errors.Is(err, fs.ErrNotExist) || gcerrors.Code(err) == gcerrors.NotFound)
}

// Ping checks that b can be listed: it asks for at most one key. An empty
// bucket is fine. The error wraps ErrUnreachable, and ErrNotExist too when
// the bucket itself does not exist. Without a deadline on ctx, Ping gives
// up after 60 seconds.
func Ping(ctx context.Context, b *blob.Bucket) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
	}
	var err error
	for try := 0; try < 3; try++ {
		// fileblob lstat's what it lists: an object deleted meanwhile (a
		// lock refreshed) fails the listing with "not exist". Look again.
		_, err = b.List(&blob.ListOptions{}).Next(ctx)
		if err == nil || errors.Is(err, io.EOF) {
			return nil
		}
		if !IsVanished(err) {
			break
		}
	}
	err = Wrap(err)
	if errors.Is(err, ErrNotExist) {
		return &kindError{ErrUnreachable, fmt.Errorf("bucket does not exist: %w", err)}
	}
	return &kindError{ErrUnreachable, err}
}

// fileRoot is where a file:// bucket opened by this package keeps its
// objects: key k is the file dir/prefix+k.
type fileRoot struct {
	dir    string
	prefix string
}

// fileRoots maps file:// buckets opened by this package to their
// directories, so that WriteNew can write them atomically (see write.go).
var fileRoots sync.Map // weak.Pointer[blob.Bucket] -> fileRoot

func registerFileBucket(b *blob.Bucket, dir, prefix string) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return
	}
	wp := weak.Make(b)
	fileRoots.Store(wp, fileRoot{dir: abs, prefix: prefix})
	runtime.AddCleanup(b, func(wp weak.Pointer[blob.Bucket]) { fileRoots.Delete(wp) }, wp)
}

func fileRootOf(b *blob.Bucket) (fileRoot, bool) {
	v, ok := fileRoots.Load(weak.Make(b))
	if !ok {
		return fileRoot{}, false
	}
	return v.(fileRoot), true
}
