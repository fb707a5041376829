// Package bucket backs up the objects of a gocloud.dev bucket (s3://,
// gs://, azblob://, file://, mem://): every object under a prefix is one
// file entry whose path is its key relative to the prefix.
//
// Object metadata is kept in the entry's Xattrs under lifeboat.* names
// (content type, ETag, MD5, cache control, content encoding/disposition/
// language, user metadata as lifeboat.meta.NAME). For change detection the
// entry's ChangeTime is the object's modification time and its Inode a
// stable hash of the ETag (or MD5), so the engine's parent comparison
// (size, mtime, ctime, inode) skips objects whose size, modification time
// and ETag are unchanged without reading them.
package bucket

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"gocloud.dev/blob"
	"golang.org/x/sync/errgroup"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/engine/storage"
	"github.com/lifeboat-backup/lifeboat/targets/files"
)

// Xattr names of object metadata.
const (
	XattrContentType        = "lifeboat.content-type"
	XattrETag               = "lifeboat.etag"
	XattrMD5                = "lifeboat.md5"
	XattrCacheControl       = "lifeboat.cache-control"
	XattrContentEncoding    = "lifeboat.content-encoding"
	XattrContentDisposition = "lifeboat.content-disposition"
	XattrContentLanguage    = "lifeboat.content-language"
	XattrMetaPrefix         = "lifeboat.meta."
)

// headWorkers is how many object attribute requests run at once.
const headWorkers = 16

// Options configure a bucket source.
type Options struct {
	URL string
	// Prefix selects the objects whose keys start with it; entry paths are
	// the keys relative to the prefix up to its last "/".
	Prefix string
	// Include and Exclude are globs on the key relative to the prefix:
	// "*" and "?" stay within one "/" segment, "**" crosses segments; a
	// pattern without "/" also matches the last segment (base name).
	Include, Exclude []string
}

// Source lists and reads a bucket. It has the method set of engine.Source.
type Source struct {
	opts             Options
	include, exclude []glob
	// Open opens the bucket (default storage.OpenWith with Ping); tests may
	// replace it.
	Open func(ctx context.Context, url string) (*blob.Bucket, error)
}

// New checks the options; it does not connect.
func New(opts Options) (*Source, error) {
	if opts.URL == "" {
		return nil, errors.New("bucket: no URL")
	}
	s := &Source{opts: opts}
	var err error
	if s.include, err = compileGlobs(opts.Include); err != nil {
		return nil, err
	}
	if s.exclude, err = compileGlobs(opts.Exclude); err != nil {
		return nil, err
	}
	return s, nil
}

// Kind implements engine.Source.
func (s *Source) Kind() string { return "bucket" }

// Paths implements engine.Source: the redacted URL, plus the prefix.
func (s *Source) Paths() []string {
	p := []string{storage.Redact(s.opts.URL)}
	if s.opts.Prefix != "" {
		p = append(p, "prefix:"+s.opts.Prefix)
	}
	return p
}

// base is the part of the prefix up to its last "/": entry paths are keys
// relative to it. (Prefix "media/" gives "a.jpg" for "media/a.jpg"; prefix
// "media/cat" gives "catalog/a.jpg" for "media/catalog/a.jpg".)
func (s *Source) base() string {
	return s.opts.Prefix[:strings.LastIndexByte(s.opts.Prefix, '/')+1]
}

type object struct {
	key, rel string
	size     int64
	mod      time.Time
	md5      []byte
	entry    snapshot.Entry
	err      error
}

// Walk implements engine.Source: lists the objects under the prefix,
// orders them by targets.ComparePaths of their relative keys (bucket
// listings are in byte order, which differs for keys containing "/"),
// then fetches their attributes in parallel and emits them in order.
// Keys that are no valid snapshot path ("a//b", "../x", a trailing "/")
// are skipped with a warning.
func (s *Source) Walk(ctx context.Context, warn func(string, error), fn func(snapshot.Entry, func() (io.ReadCloser, error)) error) error {
	open := s.Open
	if open == nil {
		open = func(ctx context.Context, u string) (*blob.Bucket, error) {
			return storage.OpenWith(ctx, u, storage.OpenOptions{Ping: true})
		}
	}
	b, err := open(ctx, s.opts.URL)
	if err != nil {
		return fmt.Errorf("bucket: %w", err)
	}
	// The engine reads entries in its workers after fn returns, up to the
	// end of the backup, when it cancels ctx: close the bucket then.
	context.AfterFunc(ctx, func() { b.Close() })
	var objs []*object
	it := b.List(&blob.ListOptions{Prefix: s.opts.Prefix})
	for {
		o, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("bucket: list %s: %w", storage.Redact(s.opts.URL), err)
		}
		if o.IsDir {
			continue
		}
		rel := strings.TrimPrefix(o.Key, s.base())
		if err := files.CheckPath(rel); err != nil || rel == "" || strings.HasSuffix(rel, "/") {
			warn(o.Key, fmt.Errorf("key is not a valid snapshot path; skipped"))
			continue
		}
		if !s.selected(rel) {
			continue
		}
		objs = append(objs, &object{key: o.Key, rel: rel, size: o.Size, mod: o.ModTime, md5: o.MD5})
	}
	slices.SortFunc(objs, func(a, b *object) int { return snapshot.ComparePaths(a.rel, b.rel) })
	// Attributes in parallel, emitted in order, a window at a time.
	const window = 256
	for start := 0; start < len(objs); start += window {
		batch := objs[start:min(start+window, len(objs))]
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(headWorkers)
		for _, o := range batch {
			g.Go(func() error {
				o.entry, o.err = attrsEntry(gctx, b, o)
				return gctx.Err()
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
		for _, o := range batch {
			if o.err != nil {
				warn(o.key, o.err)
				continue
			}
			key := o.key
			if err := fn(o.entry, func() (io.ReadCloser, error) { return b.NewReader(ctx, key, nil) }); err != nil {
				return err
			}
		}
	}
	return nil
}

func attrsEntry(ctx context.Context, b *blob.Bucket, o *object) (snapshot.Entry, error) {
	a, err := b.Attributes(ctx, o.key)
	if err != nil {
		return snapshot.Entry{}, err
	}
	e := snapshot.Entry{Path: o.rel, Type: snapshot.TypeFile, Mode: 0o644, ModTime: a.ModTime.UTC(),
		ChangeTime: a.ModTime.UTC(), Size: a.Size}
	add := func(name, v string) {
		if v != "" {
			e.Xattrs = append(e.Xattrs, snapshot.Xattr{Name: name, Value: []byte(v)})
		}
	}
	md5 := a.MD5
	if md5 == nil {
		md5 = o.md5
	}
	add(XattrCacheControl, a.CacheControl)
	add(XattrContentDisposition, a.ContentDisposition)
	add(XattrContentEncoding, a.ContentEncoding)
	add(XattrContentLanguage, a.ContentLanguage)
	add(XattrContentType, a.ContentType)
	add(XattrETag, a.ETag)
	if md5 != nil {
		add(XattrMD5, hex.EncodeToString(md5))
	}
	keys := make([]string, 0, len(a.Metadata))
	for k := range a.Metadata {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		add(XattrMetaPrefix+k, a.Metadata[k])
	}
	e.Inode = ChangeTag(a.ETag, md5)
	return e, nil
}

// ChangeTag is the Inode of an object's entry: a stable hash of its ETag
// (or, without one, its MD5), so that a rewritten object with the same
// size and modification time is still read again.
func ChangeTag(etag string, md5 []byte) uint64 {
	h := fnv.New64a()
	if etag != "" {
		h.Write([]byte(etag))
	} else {
		h.Write(md5)
	}
	return h.Sum64()
}

func (s *Source) selected(rel string) bool {
	if len(s.include) > 0 && !matchAny(s.include, rel) {
		return false
	}
	return !matchAny(s.exclude, rel)
}

type glob struct {
	re       *regexp.Regexp
	anywhere bool // no "/" in the pattern: also matches the base name
}

func matchAny(gs []glob, rel string) bool {
	base := path.Base(rel)
	for _, g := range gs {
		if g.re.MatchString(rel) || (g.anywhere && g.re.MatchString(base)) {
			return true
		}
	}
	return false
}

// compileGlobs turns key globs into anchored regular expressions.
func compileGlobs(globs []string) ([]glob, error) {
	var out []glob
	for _, g := range globs {
		if g == "" {
			return nil, errors.New("bucket: empty pattern")
		}
		var sb strings.Builder
		sb.WriteString("^")
		for i := 0; i < len(g); i++ {
			switch c := g[i]; {
			case strings.HasPrefix(g[i:], "**/"):
				sb.WriteString("(?:.*/)?")
				i += 2
			case strings.HasPrefix(g[i:], "**"):
				sb.WriteString(".*")
				i++
			case c == '*':
				sb.WriteString("[^/]*")
			case c == '?':
				sb.WriteString("[^/]")
			default:
				sb.WriteString(regexp.QuoteMeta(string(c)))
			}
		}
		sb.WriteString("$")
		re, err := regexp.Compile(sb.String())
		if err != nil {
			return nil, fmt.Errorf("bucket: pattern %q: %w", g, err)
		}
		out = append(out, glob{re, !strings.Contains(g, "/")})
	}
	return out, nil
}
