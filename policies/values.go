package policies

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/redact"
)

// scalar is implemented by value types that parse themselves from one YAML
// scalar; the error message becomes a ValidationError at the value.
type scalar interface {
	parseScalar(s string) error
}

// Duration is a time.Duration written like Go's ("26h", "15m", "1h30m")
// with two more units: d (24h) and w (7d): "7d", "2w", "1d12h".
type Duration time.Duration

// D returns the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats the duration with the largest whole units ("7d", "26h",
// "1d12h", "90s"); 0 is "0s".
func (d Duration) String() string {
	t := time.Duration(d)
	if t == 0 {
		return "0s"
	}
	var b strings.Builder
	if t < 0 {
		b.WriteByte('-')
		t = -t
	}
	if t%time.Second != 0 {
		return b.String() + t.String()
	}
	for _, u := range []struct {
		n string
		d time.Duration
	}{{"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}} {
		if t >= u.d {
			fmt.Fprintf(&b, "%d%s", t/u.d, u.n)
			t %= u.d
		}
	}
	return b.String()
}

// MarshalText writes the String form.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

func (d *Duration) parseScalar(s string) error {
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

var durationUnits = map[string]time.Duration{
	"ns": time.Nanosecond, "us": time.Microsecond, "µs": time.Microsecond, "ms": time.Millisecond,
	"s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour, "w": 7 * 24 * time.Hour,
}

var durationRE = regexp.MustCompile(`^([0-9]+)(?:\.([0-9]+))?(ns|us|µs|ms|s|m|h|d|w)`)

// ParseDuration parses a non-negative duration: a sequence of numbers with
// units ns, us, ms, s, m, h, d (24h) or w (7d), e.g. "26h", "7d", "1w2d",
// "1h30m", "0". A duration over time.Duration's range (about 292 years)
// is an error, never a wrapped-around negative value.
func ParseDuration(s string) (time.Duration, error) {
	bad := fmt.Errorf("%q is not a duration (e.g. 15m, 26h, 7d, 2w)", s)
	if s == "0" {
		return 0, nil
	}
	if s == "" {
		return 0, bad
	}
	tooLong := fmt.Errorf("%q is too long (at most 106751d, about 292 years)", s)
	var total int64
	for rest := s; rest != ""; {
		m := durationRE.FindStringSubmatch(rest)
		if m == nil {
			return 0, bad
		}
		unit := int64(durationUnits[m[3]])
		n, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil || n > math.MaxInt64/unit {
			return 0, tooLong
		}
		v := n * unit
		if m[2] != "" {
			// As time.ParseDuration: the leading digits that fit, scaled.
			f, scale := int64(0), 1.0
			for _, c := range m[2] {
				if f > (math.MaxInt64-9)/10 {
					break
				}
				f, scale = f*10+int64(c-'0'), scale*10
			}
			v += int64(float64(f) * (float64(unit) / scale))
			if v < 0 {
				return 0, tooLong
			}
		}
		if total > math.MaxInt64-v {
			return 0, tooLong
		}
		total += v
		rest = rest[len(m[0]):]
	}
	return time.Duration(total), nil
}

// Size is a number of bytes, written as a plain integer or with a unit:
// B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024).
type Size int64

var sizeUnits = map[string]int64{
	"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
	"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40,
}

var sizeRE = regexp.MustCompile(`^([0-9]+)\s*([A-Za-z]*)$`)

func (z *Size) parseScalar(s string) error {
	m := sizeRE.FindStringSubmatch(strings.TrimSpace(s))
	bad := fmt.Errorf("%q is not a size (e.g. 1048576, 500KiB, 10MB, 2GiB)", s)
	if m == nil {
		return bad
	}
	mult, ok := sizeUnits[m[2]]
	if !ok {
		return bad
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return bad
	}
	*z = Size(n * mult)
	return nil
}

// SecretRef names where a secret (or key material) lives: a file path, or
// env:NAME for the environment variable NAME. Never the secret itself.
type SecretRef string

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// EnvName returns NAME for an env:NAME reference, or "".
func (r SecretRef) EnvName() string {
	if name, ok := strings.CutPrefix(string(r), "env:"); ok {
		return name
	}
	return ""
}

// IsZero reports whether no reference is set.
func (r SecretRef) IsZero() bool { return r == "" }

// Read returns the secret: the environment variable's value for env:NAME,
// else the file's content. A trailing newline is removed; an empty
// secret is an error.
func (r SecretRef) Read() ([]byte, error) {
	if r == "" {
		return nil, errors.New("no secret reference")
	}
	var data []byte
	if name := r.EnvName(); name != "" {
		v, ok := os.LookupEnv(name)
		if !ok {
			return nil, fmt.Errorf("environment variable %s is not set", name)
		}
		data = []byte(v)
	} else {
		var err error
		if data, err = os.ReadFile(string(r)); err != nil {
			return nil, err
		}
	}
	data = []byte(strings.TrimRight(string(data), "\r\n"))
	if len(data) == 0 {
		return nil, fmt.Errorf("%s: empty secret", r)
	}
	return data, nil
}

func (r *SecretRef) parseScalar(s string) error {
	if err := checkRef(s, true); err != nil {
		return err
	}
	*r = SecretRef(s)
	return nil
}

// checkRef accepts env:NAME and, when paths is set, a file path.
func checkRef(s string, paths bool) error {
	if name, ok := strings.CutPrefix(s, "env:"); ok {
		if !envNameRE.MatchString(name) {
			return fmt.Errorf("%q is not a valid env:NAME reference", s)
		}
		return nil
	}
	if !paths {
		return errors.New("inline secrets are not allowed: use password_file: PATH or env:NAME")
	}
	if s == "" || strings.ContainsAny(s, "\x00\n") {
		return fmt.Errorf("%q is not a file path or env:NAME reference", s)
	}
	return nil
}

// RepositorySchemes are the URL schemes a repository (and a bucket target)
// may use: the gocloud.dev drivers lifeboat links.
var RepositorySchemes = []string{"file", "mem", "s3", "gs", "azblob"}

func checkStorageURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		return fmt.Errorf("%q is not a URL (e.g. s3://bucket/prefix?region=eu-central-1)", redact.String(s))
	}
	ok := false
	for _, sc := range RepositorySchemes {
		ok = ok || u.Scheme == sc
	}
	if !ok {
		return fmt.Errorf("scheme %q is not supported", u.Scheme)
	}
	if _, hasPass := u.User.Password(); hasPass {
		return errors.New("the URL holds a password: give storage credentials through the environment or a credentials file")
	}
	if u.Scheme != "mem" && u.Host == "" && u.Path == "" && u.Opaque == "" {
		return fmt.Errorf("%q names no bucket or directory", redact.String(s))
	}
	return nil
}

// ResticSchemes are the prefixes of restic's own repository strings
// (RESTIC_REPOSITORY), which a policy with engine: restic may give
// verbatim: sftp:user@host:/srv/repo, rest:https://host:8000/,
// s3:s3.amazonaws.com/bucket, b2:bucket:path, azure:container:/path,
// gs:bucket:/path, rclone:remote:path, swift:container:/path,
// local:/srv/repo. An absolute path (/srv/restic-repo) is one too.
var ResticSchemes = []string{"local", "sftp", "rest", "s3", "b2", "azure", "gs", "rclone", "swift"}

// IsResticLocation reports whether s is in restic's own form (an absolute
// path, or one of ResticSchemes followed by ':' and not by "//", which
// is lifeboat's URL form: s3://bucket is lifeboat's, s3:host/bucket
// restic's). sftp:// is restic's form only.
func IsResticLocation(s string) bool {
	if strings.HasPrefix(s, "/") {
		return true
	}
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok || !slices.Contains(ResticSchemes, scheme) {
		return false
	}
	return scheme == "sftp" || !strings.HasPrefix(rest, "//")
}

// checkResticRepository accepts what the restic engine runs: lifeboat's
// file:// and s3:// URLs, and restic's own repository strings.
func checkResticRepository(s string) error {
	if !IsResticLocation(s) {
		u, err := url.Parse(s)
		if err == nil && (u.Scheme == "file" || u.Scheme == "s3") {
			return checkStorageURL(s)
		}
		return fmt.Errorf("%q is not a restic repository: give file:///path, s3://bucket/prefix?endpoint=..., or restic's own form (/srv/restic-repo, sftp:, rest:, s3:, b2:, azure:, gs:, rclone:)", redact.String(s))
	}
	scheme, rest, _ := strings.Cut(s, ":")
	if strings.HasPrefix(s, "/") {
		scheme, rest = "local", s
	}
	if strings.TrimSpace(rest) == "" || strings.ContainsAny(s, "\x00\n") {
		return fmt.Errorf("%q names no %s location", redact.String(s), scheme)
	}
	if scheme == "local" && !strings.HasPrefix(rest, "/") {
		return fmt.Errorf("%q is not an absolute path", redact.String(s))
	}
	// rest:https://user:pass@host/, sftp://user:pass@host/ may embed a password.
	if _, r, ok := strings.Cut(s, "://"); ok {
		host, _, _ := strings.Cut(r, "/")
		if userinfo, _, found := strings.Cut(host, "@"); found && strings.Contains(userinfo, ":") {
			return errors.New("the repository string holds a password: inline secrets are not allowed (restic reads a REST server's credentials from RESTIC_REST_USERNAME and RESTIC_REST_PASSWORD)")
		}
	}
	return nil
}

func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", redact.String(s))
	}
	if _, hasPass := u.User.Password(); hasPass {
		return errors.New("the URL holds a password: inline secrets are not allowed")
	}
	return nil
}

// mysqlDSNPassword reports whether a go-sql-driver DSN
// (user[:password]@proto(addr)/db?params) holds a password.
func mysqlDSNPassword(dsn string) bool {
	slash := strings.LastIndex(dsn, "/")
	if slash < 0 {
		slash = len(dsn)
	}
	at := strings.LastIndex(dsn[:slash], "@")
	if at < 0 {
		return false
	}
	return strings.Contains(dsn[:at], ":")
}

// postgresDSNPassword reports whether a postgres:// URL holds a password.
func postgresDSNPassword(dsn string) bool {
	u, err := url.Parse(dsn)
	if err != nil {
		return strings.Contains(dsn, "@") // cannot tell: be safe
	}
	_, has := u.User.Password()
	return has || u.Query().Has("password")
}
