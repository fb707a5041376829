// Package miniotest starts throw-away MinIO servers on loopback for tests.
//
// The minio binary is found via $LIFEBOAT_MINIO, then
// $LIFEBOAT_CACHE/bin/minio (default ~/.cache/lifeboat/bin/minio, where
// scripts/deps builds it), then $PATH. Without one, tests skip, unless
// LIFEBOAT_REQUIRE_MINIO=1, when they fail (make test and CI set it).
//
// Starting a server points this process's AWS credential environment
// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) at the server's test-only
// root user, so that storage.Open(srv.URL(...)) works as it would in
// production. Every server uses the same credentials.
package miniotest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/lifeboat-backup/lifeboat/internal/scratch/scratchproc"
	"github.com/lifeboat-backup/lifeboat/internal/testutil/sharedserver"
)

// Test-only credentials of every server started here.
const (
	AccessKey = "lifeboat"
	SecretKey = "lifeboat-secret"
	Region    = "us-east-1"
)

// Server is one MinIO server on 127.0.0.1.
type Server struct {
	Endpoint  string // http://127.0.0.1:PORT
	Addr      string // 127.0.0.1:PORT
	AccessKey string
	SecretKey string
	Region    string
	DataDir   string
	Binary    string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// Binary returns the path of the minio binary, or an error saying where
// it was looked for.
func Binary() (string, error) {
	if p := os.Getenv("LIFEBOAT_MINIO"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("LIFEBOAT_MINIO=%s: %w", p, err)
		}
		return p, nil
	}
	cache := os.Getenv("LIFEBOAT_CACHE")
	if cache == "" {
		if home, err := os.UserHomeDir(); err == nil {
			cache = filepath.Join(home, ".cache", "lifeboat")
		}
	}
	if cache != "" {
		p := filepath.Join(cache, "bin", "minio")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}
	return "", errors.New("no minio binary: set LIFEBOAT_MINIO, or run scripts/deps (builds $LIFEBOAT_CACHE/bin/minio), or put minio on PATH")
}

// Required tells whether LIFEBOAT_REQUIRE_MINIO=1 forbids skipping.
func Required() bool { return os.Getenv("LIFEBOAT_REQUIRE_MINIO") == "1" }

// binaryOrSkip finds the binary or skips (fails when required) t.
func binaryOrSkip(t testing.TB) string {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		if Required() {
			t.Fatalf("miniotest: LIFEBOAT_REQUIRE_MINIO=1 but %v", err)
		}
		t.Skipf("miniotest: %v (set LIFEBOAT_REQUIRE_MINIO=1 to fail instead)", err)
	}
	return bin
}

// Start starts a MinIO server with a t.TempDir data directory on a free
// loopback port, waits until it is healthy and stops it when t's test
// ends. It skips t when there is no minio binary (see the package doc).
func Start(t testing.TB) *Server {
	t.Helper()
	bin := binaryOrSkip(t)
	s, err := New(bin, t.TempDir())
	if err != nil {
		t.Fatalf("miniotest: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// New starts a server from bin with data in dataDir (created if missing)
// and waits until it is healthy. The caller stops it. Use Start in tests
// and Shared for one server per test binary.
func New(bin, dataDir string) (*Server, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	s := &Server{AccessKey: AccessKey, SecretKey: SecretKey, Region: Region, DataDir: dataDir, Binary: bin}
	var err error
	for attempt := 0; attempt < 3; attempt++ { // the free port may be taken meanwhile
		var port int
		if port, err = scratchproc.FreePort(); err != nil {
			return nil, err
		}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		s.Endpoint = "http://" + s.Addr
		if err = s.start(); err == nil {
			setCredentialEnv()
			return s, nil
		}
	}
	return nil, err
}

func setCredentialEnv() {
	os.Setenv("AWS_ACCESS_KEY_ID", AccessKey)
	os.Setenv("AWS_SECRET_ACCESS_KEY", SecretKey)
	os.Unsetenv("AWS_SESSION_TOKEN")
	os.Unsetenv("AWS_PROFILE")
}

// start runs the binary on s.Addr and waits for health.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return fmt.Errorf("minio %s already running", s.Addr)
	}
	cmd := exec.Command(s.Binary, "server", "--quiet", "--address", s.Addr, s.DataDir)
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+s.AccessKey,
		"MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_BROWSER=off", // no console, no second port
		"MINIO_UPDATE=off",
		"MINIO_CI_CD=1",
	)
	logs := &bytes.Buffer{}
	cmd.Stdout = &syncWriter{w: logs}
	cmd.Stderr = cmd.Stdout
	// Never outlive the test binary, even if Stop is not reached.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.Binary, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done

	deadline := time.Now().Add(60 * time.Second)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case <-done:
			s.cmd = nil
			return fmt.Errorf("minio on %s exited during startup: %s\n%s", s.Addr, cmd.ProcessState, s.logText())
		default:
		}
		resp, err := client.Get(s.Endpoint + "/minio/health/live")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			s.cmd = nil
			return fmt.Errorf("minio on %s not healthy after 60s: %v\n%s", s.Addr, err, s.logText())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *Server) logText() string {
	if w, ok := s.cmdOut(); ok {
		return w.String()
	}
	return ""
}

func (s *Server) cmdOut() (*syncWriter, bool) {
	if s.cmd == nil {
		return nil, false
	}
	w, ok := s.cmd.Stdout.(*syncWriter)
	return w, ok
}

// Logs returns what the server printed so far (its current run).
func (s *Server) Logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logText()
}

// Running tells whether the server process is up.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

// Stop shuts the server down (SIGTERM, SIGKILL after 10s) and waits for
// it. The data directory stays; Restart brings the server back on the
// same address with the same data. Stop on a stopped server is a no-op.
func (s *Server) Stop() { s.halt(syscall.SIGTERM, 10*time.Second) }

// Kill ends the server at once with SIGKILL, as a crash or a lost region
// would, and waits for the process to exit.
func (s *Server) Kill() { s.halt(syscall.SIGKILL, 0) }

func (s *Server) halt(sig syscall.Signal, grace time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(sig)
	if grace > 0 {
		select {
		case <-s.done:
		case <-time.After(grace):
			_ = s.cmd.Process.Kill()
		}
	}
	<-s.done
	s.cmd = nil
}

// Restart starts a stopped or killed server again on the same address and
// data directory and waits until it is healthy.
func (s *Server) Restart() error {
	var err error
	for i := 0; i < 20; i++ { // the port can be briefly unavailable
		if err = s.start(); err == nil {
			return nil
		}
		time.Sleep(250 * time.Millisecond)
	}
	return err
}

// URL returns the gocloud s3 URL of bucket on this server, e.g.
// s3://b?endpoint=http://127.0.0.1:PORT&region=us-east-1&use_path_style=true,
// with &prefix=... when prefix is not empty.
func (s *Server) URL(bucket, prefix string) string {
	q := url.Values{}
	q.Set("endpoint", s.Endpoint)
	q.Set("region", s.Region)
	q.Set("use_path_style", "true")
	if prefix != "" {
		q.Set("prefix", prefix)
	}
	return "s3://" + bucket + "?" + q.Encode()
}

// Env returns the environment for a subprocess (the lifeboat CLI, restic,
// aws) that talks to this server.
func (s *Server) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + s.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s.SecretKey,
		"AWS_REGION=" + s.Region,
		"MINIO_ENDPOINT=" + s.Endpoint,
	}
}

// Client returns an S3 client for this server.
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(s.Endpoint),
		Region:       s.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		UsePathStyle: true,
	})
}

// MakeBucket creates bucket (bucket names: 3-63 of a-z 0-9 . -).
func (s *Server) MakeBucket(ctx context.Context, bucket string) error {
	_, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	if err != nil {
		return fmt.Errorf("create bucket %s on %s: %w", bucket, s.Endpoint, err)
	}
	return nil
}

// CreateBucket creates bucket or fails t.
func (s *Server) CreateBucket(t testing.TB, bucket string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.MakeBucket(ctx, bucket); err != nil {
		t.Fatal(err)
	}
}

var shared sharedserver.Shared[*Server]

// Shared returns one server for the whole test binary, started on first
// use; buckets keep tests apart. It skips t like Start. Use Main in
// TestMain to stop it when the tests are done (without Main it is killed
// when the test binary exits).
func Shared(t testing.TB) *Server {
	t.Helper()
	bin := binaryOrSkip(t)
	return shared.Get(t, "miniotest", func(dir string) (*Server, error) { return New(bin, dir) })
}

// Main runs m and then stops the shared server and removes its data:
//
//	func TestMain(m *testing.M) { os.Exit(miniotest.Main(m)) }
func Main(m *testing.M) int { return shared.Main(m) }

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.w.Len() > 1<<20 {
		return len(p), nil // keep the first MiB
	}
	return w.w.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.String()
}
