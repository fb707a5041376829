package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/url"
	"strings"
	"time"

	driver "github.com/go-sql-driver/mysql"
)

func init() {
	// The driver logs some connection problems itself; they are returned as
	// errors too, and its log must never reach the user's terminal twice.
	_ = driver.SetLogger(log.New(io.Discard, "", 0))
}

// ParseDSN reads a server address in either form:
//
//	mysql://user[:password]@host[:port]/[?param=value...]
//	user[:password]@tcp(host:port)/[?param=value...]   (go-sql-driver's DSN)
//
// A database name in the DSN is ignored (databases are selected
// separately). password, when not empty, replaces one in the DSN: pass it
// from a file or the environment, not on the command line.
func ParseDSN(dsn, password string) (*driver.Config, error) {
	var cfg *driver.Config
	if strings.HasPrefix(dsn, "mysql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			// url.Parse quotes the input, which holds the password.
			return nil, errors.New("invalid mysql:// URL (expected mysql://user[:password]@host[:port]/)")
		}
		cfg = driver.NewConfig()
		cfg.Net = "tcp"
		host := u.Host
		if host == "" {
			host = "127.0.0.1"
		}
		if _, _, err := net.SplitHostPort(host); err != nil {
			host = net.JoinHostPort(strings.Trim(host, "[]"), "3306")
		}
		cfg.Addr = host
		if u.User != nil {
			cfg.User = u.User.Username()
			cfg.Passwd, _ = u.User.Password()
		}
		q := u.Query()
		if s := q.Get("socket"); s != "" {
			cfg.Net, cfg.Addr = "unix", s
		}
		if q.Get("tls") != "" {
			cfg.TLSConfig = q.Get("tls")
			if err := cfg.Apply(); err != nil {
				return nil, err
			}
		}
	} else {
		var err error
		if cfg, err = driver.ParseDSN(dsn); err != nil {
			return nil, fmt.Errorf("invalid DSN: %v (expected user@tcp(host:port)/ or mysql://user@host:port/)", scrub(err, dsn))
		}
	}
	if password != "" {
		cfg.Passwd = password
	}
	if cfg.User == "" {
		cfg.User = "root"
	}
	cfg.DBName = ""
	cfg.ParseTime = false
	cfg.InterpolateParams = true
	cfg.MultiStatements = false
	cfg.Loc = time.UTC
	cfg.MaxAllowedPacket = 0 // ask the server
	if cfg.Timeout == 0 {
		cfg.Timeout = 15 * time.Second
	}
	cfg.Params = nil
	return cfg, nil
}

// scrub removes a password from an error text that quotes the DSN.
func scrub(err error, dsn string) string {
	s := err.Error()
	if i := strings.LastIndexByte(dsn, '@'); i > 0 {
		s = strings.ReplaceAll(s, dsn[:i], "***")
	}
	return s
}

// Redact returns a DSN in the mysql://user@host:port/ form, without a
// password, fit for logs and snapshot metadata.
func Redact(dsn string) string {
	cfg, err := ParseDSN(dsn, "")
	if err != nil {
		return "mysql://(unparsable DSN)"
	}
	return RedactConfig(cfg)
}

// RedactConfig is Redact for a parsed configuration.
func RedactConfig(cfg *driver.Config) string {
	u := url.URL{Scheme: "mysql", User: url.User(cfg.User), Host: cfg.Addr, Path: "/"}
	if cfg.Net == "unix" {
		u.Host = "localhost"
		u.RawQuery = url.Values{"socket": {cfg.Addr}}.Encode()
	}
	return u.String()
}

// Open opens a pool of up to conns connections and checks that the server
// answers and accepts the credentials. Errors name the server, never the
// password.
func Open(ctx context.Context, cfg *driver.Config, conns int) (*sql.DB, error) {
	c, err := driver.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("mysql %s: %w", RedactConfig(cfg), err)
	}
	db := sql.OpenDB(c)
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	db.SetConnMaxLifetime(0)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, connectError(cfg, err)
	}
	return db, nil
}

func connectError(cfg *driver.Config, err error) error {
	var me *driver.MySQLError
	if errors.As(err, &me) && me.Number == 1045 {
		return fmt.Errorf("mysql %s: access denied for user %q (wrong password?): %w", RedactConfig(cfg), cfg.User, err)
	}
	return fmt.Errorf("mysql %s: cannot connect: %w", RedactConfig(cfg), err)
}

// QuoteName quotes an identifier with backticks.
func QuoteName(name string) string {
	return "`" + strings.ReplaceAll(name, "`", "``") + "`"
}

// QuoteString quotes a string literal for any sql_mode (no backslash
// reliance except what NO_BACKSLASH_ESCAPES leaves intact).
func QuoteString(s string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", "''") + "'"
}
