package miniotest

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Fault is what a Proxy does to the bytes it carries.
type Fault int32

const (
	// Pass forwards every byte.
	Pass Fault = iota
	// Blackhole accepts connections but stops moving bytes, in both
	// directions and on open connections too: an endpoint that went silent
	// (a machine that hangs, a dropped route). The kernel's buffers fill,
	// then nothing is acknowledged. Back to Pass, held bytes flow again, as
	// after a healed partition.
	Blackhole
	// Reset answers every connection, open or new, with a TCP reset.
	Reset
	// Delay holds every chunk of bytes for the proxy's delay.
	Delay
)

// Proxy is a loopback TCP proxy in front of an S3 endpoint that injects
// network faults (see Fault). It forwards the Host header as it comes, so
// signed requests stay valid.
type Proxy struct {
	ln     net.Listener
	target string
	fault  atomic.Int32
	delay  atomic.Int64
	cut    atomic.Int64 // reset a connection after this many response bytes (0: never), once
	seen   atomic.Int64 // response bytes since CutAfter
	mu     sync.Mutex
	conns  map[net.Conn]bool
	closed bool
	done   chan struct{} // closed by Close
	wg     sync.WaitGroup
}

// StartProxy starts a proxy to target (host:port) on 127.0.0.1, closed
// at the end of the test.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]bool{}, done: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// Endpoint is the proxy's URL (http://127.0.0.1:PORT).
func (p *Proxy) Endpoint() string { return "http://" + p.ln.Addr().String() }

// Set switches the fault, for open connections too. Reset resets the open
// ones at once.
func (p *Proxy) Set(f Fault) {
	p.fault.Store(int32(f))
	if f == Reset {
		p.mu.Lock()
		for c := range p.conns {
			resetConn(c)
		}
		p.mu.Unlock()
	}
}

// SetDelay sets the hold of the Delay fault.
func (p *Proxy) SetDelay(d time.Duration) { p.delay.Store(int64(d)) }

// CutAfter resets the next connection whose responses reach n bytes, in the
// middle of the response: a server that died while sending.
func (p *Proxy) CutAfter(n int64) {
	p.seen.Store(0)
	p.cut.Store(n)
}

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	close(p.done)
	_ = p.ln.Close()
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		_ = c.Close()
		return false
	}
	p.conns[c] = true
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	_ = c.Close()
}

func resetConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer p.untrack(c)
			if Fault(p.fault.Load()) == Reset {
				resetConn(c)
				return
			}
			up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
			if err != nil {
				resetConn(c)
				return
			}
			if !p.track(up) {
				return
			}
			defer p.untrack(up)
			done := make(chan bool, 2)
			go func() { done <- p.pipe(up, c, false) }()
			go func() { done <- p.pipe(c, up, true) }()
			if eof := <-done; !eof {
				resetConn(c)
				resetConn(up)
			}
			<-done
		}()
	}
}

// pipe copies src to dst chunk by chunk, applying the current fault to
// each chunk; response says src is the server. It reports whether src
// ended cleanly (then dst's write side is closed, the other direction
// goes on).
func (p *Proxy) pipe(dst, src net.Conn, response bool) bool {
	buf := make([]byte, 32<<10)
	for {
		if !p.holdWhileBlackholed() {
			return false
		}
		n, err := src.Read(buf)
		if n > 0 {
			if !p.holdWhileBlackholed() {
				return false
			}
			switch Fault(p.fault.Load()) {
			case Reset:
				return false
			case Delay:
				time.Sleep(time.Duration(p.delay.Load()))
			}
			chunk := buf[:n]
			if cut := p.cut.Load(); response && cut > 0 {
				if seen := p.seen.Add(int64(n)); seen >= cut && p.cut.CompareAndSwap(cut, 0) {
					_, _ = dst.Write(chunk[:int64(n)-(seen-cut)])
					return false
				}
			}
			if _, werr := dst.Write(chunk); werr != nil {
				return false
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				if tc, ok := dst.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
				}
				return true
			}
			return false
		}
	}
}

// holdWhileBlackholed waits while the fault is Blackhole; false when the
// proxy closed meanwhile.
func (p *Proxy) holdWhileBlackholed() bool {
	for Fault(p.fault.Load()) == Blackhole {
		select {
		case <-p.done:
			return false
		case <-time.After(10 * time.Millisecond):
		}
	}
	return true
}

// Throttle is an HTTP proxy in front of an S3 endpoint that answers some
// requests itself with an S3 error (503 SlowDown by default), as a store
// under load does.
type Throttle struct {
	srv *http.Server
	ln  net.Listener
	// Status and Code are the error returned (503, "SlowDown").
	Status int
	Code   string

	fail     func(n int, r *http.Request) bool
	n        atomic.Int64
	injected atomic.Int64
}

// StartThrottle starts a Throttle to endpoint (http://host:port): request
// number n (from 0, in arrival order) is refused when fail(n, r) is true.
func StartThrottle(t testing.TB, endpoint string, fail func(n int, r *http.Request) bool) *Throttle {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	th := &Throttle{ln: ln, Status: http.StatusServiceUnavailable, Code: "SlowDown", fail: fail}
	rp := httputil.NewSingleHostReverseProxy(u) // keeps the Host header: signatures stay valid
	rp.ErrorLog = log.New(io.Discard, "", 0)    // clients that give up are the point
	th.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(th.n.Add(1) - 1)
		if th.fail(n, r) {
			th.injected.Add(1)
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(th.Status)
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
				`<Error><Code>%s</Code><Message>Please reduce your request rate.</Message><Resource>%s</Resource><RequestId>lifeboat-test-%d</RequestId></Error>`,
				th.Code, r.URL.Path, n)
			return
		}
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = th.srv.Serve(ln) }()
	t.Cleanup(func() { _ = th.srv.Close() })
	return th
}

// Endpoint is the throttle's URL (http://127.0.0.1:PORT).
func (th *Throttle) Endpoint() string { return "http://" + th.ln.Addr().String() }

// Injected is the number of requests refused so far.
func (th *Throttle) Injected() int { return int(th.injected.Load()) }

// Requests is the number of requests seen so far.
func (th *Throttle) Requests() int { return int(th.n.Load()) }

// URLVia returns s's URL for bucket with the endpoint replaced by
// endpoint (a Proxy's or a Throttle's) and extra parameters appended.
func (s *Server) URLVia(endpoint, bucket string, extra url.Values) string {
	q := url.Values{}
	q.Set("endpoint", endpoint)
	q.Set("region", s.Region)
	q.Set("use_path_style", "true")
	for k, v := range extra {
		q[k] = v
	}
	return "s3://" + bucket + "?" + q.Encode()
}
