package storage

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Timeouts bound how long an object store may stay silent. None of them
// limits a whole request: a large upload or download that keeps moving
// bytes runs as long as it needs.
type Timeouts struct {
	// Connect bounds the TCP connect (and TLS handshake).
	Connect time.Duration
	// Response bounds the wait for the response headers once the request
	// (with its body) has been handed to the kernel: a backstop for a
	// server that accepts bytes but never answers. It includes draining
	// the socket buffer (up to a few MiB), so it is generous; Idle is what
	// detects a silent server.
	Response time.Duration
	// Idle bounds the time a connection with a request in progress may go
	// without moving a byte in either direction: a dead or blackholed
	// endpoint in the middle of an upload or a download.
	Idle time.Duration
}

// DefaultTimeouts are used for s3:// unless the URL sets connect_timeout,
// response_timeout or idle_timeout.
var DefaultTimeouts = Timeouts{Connect: 10 * time.Second, Response: 2 * time.Minute, Idle: 60 * time.Second}

// newHTTPClient returns the HTTP client of an S3 bucket: the standard
// transport with the timeouts of t, and connections that fail once no
// byte has moved on them for t.Idle.
func newHTTPClient(t Timeouts, maxConns int) *http.Client {
	d := &net.Dialer{Timeout: t.Connect, KeepAlive: 30 * time.Second}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return c, err
		}
		pc := &progressConn{Conn: c, idle: t.Idle}
		pc.touch(true)
		return pc, nil
	}
	tr.TLSHandshakeTimeout = t.Connect
	tr.ResponseHeaderTimeout = t.Response
	tr.ExpectContinueTimeout = time.Second
	tr.MaxIdleConnsPerHost = maxConns
	// Idle pooled connections are closed by the transport before the
	// progress deadline would fail them.
	tr.IdleConnTimeout = min(90*time.Second, t.Idle/2)
	if tr.IdleConnTimeout <= 0 {
		tr.IdleConnTimeout = 90 * time.Second
	}
	return &http.Client{Transport: tr}
}

// progressConn is a connection whose read and write deadline is pushed
// forward by every byte moved in either direction: a request that keeps
// sending (a long upload) is not failed because no response has come yet,
// and one that moves nothing for idle fails with a timeout, also while a
// Read is pending (net.Conn deadlines apply to pending calls). Bytes the
// application has handed to the kernel count as moving while the kernel's
// send queue keeps draining (the peer acknowledges them): a slow link with
// megabytes of socket buffer is slow, not silent.
type progressConn struct {
	net.Conn
	idle time.Duration
	last atomic.Int64 // unix nanoseconds of the last deadline set
	outq atomic.Int64 // send queue length when the deadline was last set or checked
}

// touch moves the deadline to now+idle, at most about every idle/16 (a
// deadline update is cheap but not free) unless force.
func (c *progressConn) touch(force bool) {
	if c.idle <= 0 {
		return
	}
	now := time.Now()
	if !force && now.UnixNano()-c.last.Load() < int64(c.idle/16) {
		return
	}
	c.last.Store(now.UnixNano())
	c.outq.Store(int64(sendQueue(c.Conn)))
	_ = c.Conn.SetDeadline(now.Add(c.idle))
}

// draining tells, when the deadline has passed, whether the send queue
// shrank since it was last looked at: the peer is still taking bytes.
func (c *progressConn) draining() bool {
	q := int64(sendQueue(c.Conn))
	return q > 0 && q < c.outq.Load()
}

func (c *progressConn) Read(p []byte) (int, error) {
	var l = curLimits.Load()
	if l != nil && l.down != nil {
		p = p[:chunk(l.down, len(p))]
	}
	for {
		n, err := c.Conn.Read(p)
		if n > 0 {
			c.touch(false)
			if l != nil {
				take(l.down, n)
			}
		}
		if n == 0 && c.idle > 0 && isTimeout(err) && c.draining() {
			c.touch(true)
			continue
		}
		return n, err
	}
}

func (c *progressConn) Write(p []byte) (int, error) {
	var up *rate.Limiter
	if l := curLimits.Load(); l != nil {
		up = l.up
	}
	done := 0
	for done < len(p) {
		end := done + chunk(up, len(p)-done)
		take(up, end-done)
		c.touch(false)
		for done < end {
			n, err := c.Conn.Write(p[done:end])
			done += n
			if n > 0 {
				c.touch(false)
			}
			if err == nil {
				continue
			}
			if c.idle > 0 && isTimeout(err) && (n > 0 || c.draining()) {
				c.touch(true)
				continue
			}
			return done, err
		}
	}
	return done, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
