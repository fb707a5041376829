package storage

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/lifeboat-backup/lifeboat/internal/redact"
)

// backoff is the delay after failed attempt n (1-based): RetryBase
// doubling per attempt up to RetryMaxDelay, drawn uniformly from [d/2, d].
func backoff(n int) time.Duration {
	d := RetryMaxDelay
	if n < 20 {
		d = min(RetryMaxDelay, RetryBase<<(n-1))
	}
	return d/2 + rand.N(d/2+1)
}

// retryPolicy is shared by a bucket's SDK client (whole requests) and its
// resuming readers (broken response bodies).
type retryPolicy struct {
	retryer aws.Retryer
	max     int
	log     *slog.Logger
}

func newRetryPolicy(maxAttempts int, rateLimit int64, log *slog.Logger) *retryPolicy {
	if log == nil {
		log = slog.Default()
	}
	return &retryPolicy{retryer: newRetryer(maxAttempts, rateLimit), max: maxAttempts, log: log}
}

// retryable tells whether err, from a request or from reading a response
// body, is worth another attempt: 5xx, throttling (503 SlowDown), a
// timeout, a reset, refused or cut connection.
func (p *retryPolicy) retryable(err error) bool {
	return p.retryer.IsErrorRetryable(err)
}

// logRetry logs one retry: the operation, the object, the attempt about
// to be made, the redacted URL and the reason.
func (p *retryPolicy) logRetry(op, object string, next int, url string, err error) {
	p.log.Warn("storage: retrying", "op", op, "object", object, "attempt", next, "of", p.max,
		"url", redact.String(url), "reason", redact.Query(err.Error()))
}

type opStateKey struct{}

// opState follows one SDK operation through its attempts.
type opState struct {
	object string
	failed int // attempts that failed so far
}

// writeStateKey marks the context of a storage.Writer's upload, so that
// Close knows whether a request of it was retried.
type writeStateKey struct{}

type writeState struct{ retried atomic.Bool }

// middleware adds to an S3 client's stack: the object an operation is
// about (Initialize), and, inside the SDK's retry loop (once per attempt),
// a log line for each failed attempt that will be retried.
func (p *retryPolicy) middleware(st *middleware.Stack) error {
	err := st.Initialize.Add(middleware.InitializeMiddlewareFunc("LifeboatObject",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			ctx = context.WithValue(ctx, opStateKey{}, &opState{object: objectOf(in.Parameters)})
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
	if err != nil {
		return err
	}
	return st.Finalize.Insert(middleware.FinalizeMiddlewareFunc("LifeboatRetryLog",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			out, md, err := next.HandleFinalize(ctx, in)
			os, _ := ctx.Value(opStateKey{}).(*opState)
			if err == nil || os == nil {
				return out, md, err
			}
			os.failed++
			if ctx.Err() != nil || os.failed >= p.max || !p.retryer.IsErrorRetryable(err) {
				return out, md, err
			}
			if ws, ok := ctx.Value(writeStateKey{}).(*writeState); ok {
				ws.retried.Store(true)
			}
			url := ""
			if req, ok := in.Request.(*smithyhttp.Request); ok && req.URL != nil {
				url = req.Method + " " + req.URL.String()
			}
			p.logRetry(awsmiddleware.GetOperationName(ctx), os.object, os.failed+1, url, err)
			return out, md, err
		}), "Retry", middleware.After)
}

// objectOf names the object (or listed prefix) of an S3 operation.
func objectOf(in any) string {
	switch v := in.(type) {
	case *s3.GetObjectInput:
		return aws.ToString(v.Key)
	case *s3.HeadObjectInput:
		return aws.ToString(v.Key)
	case *s3.PutObjectInput:
		return aws.ToString(v.Key)
	case *s3.DeleteObjectInput:
		return aws.ToString(v.Key)
	case *s3.CopyObjectInput:
		return aws.ToString(v.Key)
	case *s3.CreateMultipartUploadInput:
		return aws.ToString(v.Key)
	case *s3.UploadPartInput:
		return aws.ToString(v.Key)
	case *s3.CompleteMultipartUploadInput:
		return aws.ToString(v.Key)
	case *s3.AbortMultipartUploadInput:
		return aws.ToString(v.Key)
	case *s3.ListObjectsV2Input:
		return aws.ToString(v.Prefix) + "*"
	case *s3.ListObjectsInput:
		return aws.ToString(v.Prefix) + "*"
	}
	return ""
}
