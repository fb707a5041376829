package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	gcaws "gocloud.dev/aws"
	"gocloud.dev/blob"
	"gocloud.dev/blob/s3blob"
)

// Retries of an s3:// bucket: MaxAttempts attempts in all per request
// (the URL's max_attempts overrides it), with exponential backoff from
// RetryBase doubling up to RetryMaxDelay, each delay drawn in [d/2, d]
// (jitter). With the defaults the delays of one request add up to at most
// about 75 s; with the timeouts (DefaultTimeouts) that bounds how long one
// request can keep a backup waiting on a dead endpoint.
const (
	DefaultMaxAttempts = 10
	RetryBase          = 250 * time.Millisecond
	RetryMaxDelay      = 15 * time.Second
)

// maxConns is the number of idle connections kept per S3 endpoint: enough
// for the uploads a backup keeps in flight.
const maxConns = 64

// s3Params are the URL parameters lifeboat reads for s3:// itself; the
// rest go to gocloud (s3blob and gocloud.dev/aws).
type s3Params struct {
	timeouts    Timeouts
	maxAttempts int
	rateLimit   int64 // rate_limiter_capacity: the SDK's retry quota; 0 = none

	// s3blob's own parameters.
	sse          types.ServerSideEncryption
	kmsKeyID     string
	accelerate   bool
	usePathStyle *bool
	disableHTTPS *bool
}

func parseS3Params(q url.Values) (s3Params, error) {
	p := s3Params{timeouts: DefaultTimeouts, maxAttempts: DefaultMaxAttempts}
	take := func(k string) (string, bool) {
		v, ok := q[k]
		if !ok {
			return "", false
		}
		q.Del(k)
		return v[0], true
	}
	for _, d := range []struct {
		name string
		dst  *time.Duration
	}{{"connect_timeout", &p.timeouts.Connect}, {"response_timeout", &p.timeouts.Response}, {"idle_timeout", &p.timeouts.Idle}} {
		if v, ok := take(d.name); ok {
			t, err := time.ParseDuration(v)
			if err != nil || t <= 0 {
				return p, fmt.Errorf("invalid %s %q: want a positive duration such as 30s", d.name, v)
			}
			*d.dst = t
		}
	}
	if v, ok := take("max_attempts"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return p, fmt.Errorf("invalid max_attempts %q: want 1..100", v)
		}
		p.maxAttempts = n
	}
	if v, ok := take("rate_limiter_capacity"); ok {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || n < 0 {
			return p, fmt.Errorf("invalid rate_limiter_capacity %q", v)
		}
		p.rateLimit = n
	}
	if v, ok := take("ssetype"); ok {
		for _, t := range types.ServerSideEncryptionAes256.Values() {
			if strings.EqualFold(string(t), v) {
				p.sse = t
			}
		}
		if p.sse == "" {
			return p, fmt.Errorf("invalid ssetype %q", v)
		}
	}
	p.kmsKeyID, _ = take("kmskeyid")
	boolParam := func(k string) (*bool, error) {
		v, ok := take(k)
		if !ok {
			return nil, nil
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("invalid %s %q: want true or false", k, v)
		}
		return &b, nil
	}
	acc, err := boolParam("accelerate")
	if err != nil {
		return p, err
	}
	p.accelerate = acc != nil && *acc
	for _, k := range []string{"use_path_style", "s3ForcePathStyle"} {
		b, err := boolParam(k)
		if err != nil {
			return p, err
		}
		if b != nil {
			p.usePathStyle = b
		}
	}
	if p.disableHTTPS, err = boolParam("disable_https"); err != nil {
		return p, err
	}
	return p, nil
}

// s3Opener opens s3:// buckets as gocloud's s3blob.URLOpener does, with
// lifeboat's HTTP client (timeouts, transport.go), retries (retry.go) and
// reads that resume after a broken connection (resume.go).
type s3Opener struct {
	log *slog.Logger
}

func (o *s3Opener) OpenBucketURL(ctx context.Context, u *url.URL) (*blob.Bucket, error) {
	q := u.Query()
	p, err := parseS3Params(q)
	if err != nil {
		return nil, err
	}
	cfg, err := gcaws.V2ConfigFromURLParams(ctx, q)
	if err != nil {
		return nil, err
	}
	pol := newRetryPolicy(p.maxAttempts, p.rateLimit, o.log)
	client := s3.NewFromConfig(cfg, func(so *s3.Options) {
		so.HTTPClient = newHTTPClient(p.timeouts, maxConns)
		so.Retryer = pol.retryer
		so.APIOptions = append(so.APIOptions, pol.middleware)
		so.UseAccelerate = p.accelerate
		if p.usePathStyle != nil {
			so.UsePathStyle = *p.usePathStyle
		}
		if p.disableHTTPS != nil {
			so.EndpointOptions.DisableHTTPS = *p.disableHTTPS
		}
	})
	inner, err := s3blob.OpenBucket(ctx, client, u.Host, &s3blob.Options{
		EncryptionType:             p.sse,
		KMSEncryptionID:            p.kmsKeyID,
		RequestChecksumCalculation: cfg.RequestChecksumCalculation,
	})
	if err != nil {
		return nil, err
	}
	return blob.NewBucket(&resumingBucket{b: inner, pol: pol}), nil
}

// newRetryer is the SDK retryer of an s3:// bucket: the standard one's
// classification (5xx, throttling such as 503 SlowDown, timeouts,
// connection resets and refusals) with lifeboat's attempts and backoff.
func newRetryer(maxAttempts int, rateLimit int64) aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = maxAttempts
		o.MaxBackoff = RetryMaxDelay
		o.Backoff = retry.BackoffDelayerFunc(func(attempt int, _ error) (time.Duration, error) {
			return backoff(attempt), nil
		})
		// A body cut short (a node killed mid-response) is retried too.
		o.Retryables = append(slices.Clone(o.Retryables), retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return aws.TrueTernary
			}
			return aws.UnknownTernary
		}))
		o.RateLimiter = ratelimit.None
		if rateLimit > 0 {
			o.RateLimiter = ratelimit.NewTokenRateLimit(uint(rateLimit))
		}
	})
}
