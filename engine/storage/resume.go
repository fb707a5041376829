package storage

import (
	"context"
	"fmt"
	"io"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/blob/driver"
	"gocloud.dev/gcerrors"
)

// resumingBucket is a gocloud driver over an s3blob bucket. The SDK
// retries whole requests (retry.go); what it cannot retry is a response
// body that breaks after the headers arrived (a node killed in the middle
// of a download, a connection gone silent). resumingBucket's readers then
// reopen the object at the offset reached, after a backoff, as long as the
// object is the same (size and modification time). Every other method
// passes through.
type resumingBucket struct {
	b   *blob.Bucket
	pol *retryPolicy
}

var _ driver.Bucket = (*resumingBucket)(nil)

func (r *resumingBucket) ErrorCode(err error) gcerrors.ErrorCode { return gcerrors.Code(err) }
func (r *resumingBucket) As(i any) bool                          { return r.b.As(i) }
func (r *resumingBucket) ErrorAs(err error, i any) bool          { return r.b.ErrorAs(err, i) }
func (r *resumingBucket) Close() error                           { return r.b.Close() }

func (r *resumingBucket) Attributes(ctx context.Context, key string) (*driver.Attributes, error) {
	a, err := r.b.Attributes(ctx, key)
	if err != nil {
		return nil, err
	}
	return &driver.Attributes{
		CacheControl: a.CacheControl, ContentDisposition: a.ContentDisposition, ContentEncoding: a.ContentEncoding,
		ContentLanguage: a.ContentLanguage, ContentType: a.ContentType, Metadata: a.Metadata,
		CreateTime: a.CreateTime, ModTime: a.ModTime, Size: a.Size, MD5: a.MD5, ETag: a.ETag, AsFunc: a.As,
	}, nil
}

func (r *resumingBucket) ListPaged(ctx context.Context, opts *driver.ListOptions) (*driver.ListPage, error) {
	token := opts.PageToken
	if len(token) == 0 {
		token = blob.FirstPageToken
	}
	size := opts.PageSize
	if size <= 0 {
		size = 1000
	}
	objs, next, err := r.b.ListPage(ctx, token, size, &blob.ListOptions{
		Prefix: opts.Prefix, Delimiter: opts.Delimiter, BeforeList: opts.BeforeList,
	})
	if err != nil && err != io.EOF {
		return nil, err
	}
	page := &driver.ListPage{NextPageToken: next}
	for _, o := range objs {
		page.Objects = append(page.Objects, &driver.ListObject{
			Key: o.Key, ModTime: o.ModTime, Size: o.Size, MD5: o.MD5, IsDir: o.IsDir, AsFunc: o.As,
		})
	}
	return page, nil
}

func (r *resumingBucket) NewTypedWriter(ctx context.Context, key, contentType string, opts *driver.WriterOptions) (driver.Writer, error) {
	return r.b.NewWriter(ctx, key, &blob.WriterOptions{
		BufferSize: opts.BufferSize, MaxConcurrency: opts.MaxConcurrency,
		CacheControl: opts.CacheControl, ContentDisposition: opts.ContentDisposition,
		ContentEncoding: opts.ContentEncoding, ContentLanguage: opts.ContentLanguage,
		ContentType: contentType, Metadata: opts.Metadata, IfNotExist: opts.IfNotExist,
		BeforeWrite: opts.BeforeWrite, DisableContentTypeDetection: true,
	})
}

func (r *resumingBucket) Copy(ctx context.Context, dst, src string, opts *driver.CopyOptions) error {
	return r.b.Copy(ctx, dst, src, &blob.CopyOptions{BeforeCopy: opts.BeforeCopy})
}

func (r *resumingBucket) Delete(ctx context.Context, key string, _ *driver.DeleteOptions) error {
	return r.b.Delete(ctx, key)
}

func (r *resumingBucket) SignedURL(ctx context.Context, key string, opts *driver.SignedURLOptions) (string, error) {
	return r.b.SignedURL(ctx, key, &blob.SignedURLOptions{
		Expiry: opts.Expiry, Method: opts.Method, ContentType: opts.ContentType,
		EnforceAbsentContentType: opts.EnforceAbsentContentType, BeforeSign: opts.BeforeSign,
	})
}

func (r *resumingBucket) NewRangeReader(ctx context.Context, key string, off, length int64, opts *driver.ReaderOptions) (driver.Reader, error) {
	rd, err := r.b.NewRangeReader(ctx, key, off, length, &blob.ReaderOptions{BeforeRead: opts.BeforeRead})
	if err != nil {
		return nil, err
	}
	return &resumingReader{ctx: ctx, bucket: r, key: key, off: off, left: length, rd: rd,
		attrs: driver.ReaderAttributes{ContentType: rd.ContentType(), ModTime: rd.ModTime(), Size: rd.Size()}}, nil
}

// resumingReader reads a range of one object; see resumingBucket.
type resumingReader struct {
	ctx    context.Context
	bucket *resumingBucket
	key    string
	off    int64 // next offset to read
	left   int64 // bytes still to read; -1: to the end
	rd     *blob.Reader
	attrs  driver.ReaderAttributes
	failed int // resumptions so far
}

func (r *resumingReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	if r.left > 0 && int64(len(p)) > r.left {
		p = p[:r.left]
	}
	for {
		n, err := r.rd.Read(p)
		r.off += int64(n)
		if r.left > 0 {
			r.left -= int64(n)
		}
		if err == nil || err == io.EOF {
			return n, err
		}
		if r.failed+1 >= r.bucket.pol.max || r.ctx.Err() != nil || !r.bucket.pol.retryable(err) {
			return n, err
		}
		if r.left < 0 && r.off >= r.attrs.Size {
			return n, io.EOF // all there; only the end of the response was lost
		}
		r.failed++
		r.bucket.pol.logRetry("GetObject (resume)", r.key, r.failed+1, fmt.Sprintf("offset %d", r.off), err)
		if rerr := r.reopen(); rerr != nil {
			return n, rerr
		}
		if n > 0 {
			return n, nil
		}
	}
}

// reopen waits a backoff and opens the rest of the range again; the
// object must still be the one read so far.
func (r *resumingReader) reopen() error {
	t := time.NewTimer(backoff(r.failed))
	select {
	case <-r.ctx.Done():
		t.Stop()
		return r.ctx.Err()
	case <-t.C:
	}
	_ = r.rd.Close()
	rd, err := r.bucket.b.NewRangeReader(r.ctx, r.key, r.off, r.left, nil)
	if err != nil {
		return fmt.Errorf("storage: resume reading %s at offset %d: %w", r.key, r.off, err)
	}
	if rd.Size() != r.attrs.Size || !rd.ModTime().Equal(r.attrs.ModTime) {
		_ = rd.Close()
		return fmt.Errorf("storage: object %s changed while it was read (size %d -> %d, modified %s -> %s)",
			r.key, r.attrs.Size, rd.Size(), r.attrs.ModTime.Format(time.RFC3339), rd.ModTime().Format(time.RFC3339))
	}
	r.rd = rd
	return nil
}

func (r *resumingReader) Close() error                         { return r.rd.Close() }
func (r *resumingReader) Attributes() *driver.ReaderAttributes { return &r.attrs }
func (r *resumingReader) As(i any) bool                        { return r.rd.As(i) }
