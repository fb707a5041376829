package binlog

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	driver "github.com/go-sql-driver/mysql"

	"github.com/lifeboat-backup/lifeboat/internal/scratch/mariadb"
	"github.com/lifeboat-backup/lifeboat/targets/mysql"
)

// clientBinary finds a MariaDB client program (mariadb-binlog, mariadb),
// with the MySQL name as a fallback.
func clientBinary(name, fallback string) (string, error) {
	p, err := mariadb.Look(name)
	if err == nil {
		return p, nil
	}
	if p, err2 := mariadb.Look(fallback); err2 == nil {
		return p, nil
	}
	return "", fmt.Errorf("no %s found (install mariadb-client): %w", name, err)
}

// writeDefaults writes an option file (mode 0600) in dir for the client
// programs: the connection of cfg with its password, which so never
// appears on a command line or in the environment. It returns the file's
// path; the caller removes it.
func writeDefaults(dir string, cfg *driver.Config) (string, error) {
	var b bytes.Buffer
	b.WriteString("[client]\n")
	fmt.Fprintf(&b, "user=%s\n", quoteOption(cfg.User))
	if cfg.Passwd != "" {
		fmt.Fprintf(&b, "password=%s\n", quoteOption(cfg.Passwd))
	}
	if cfg.Net == "unix" {
		fmt.Fprintf(&b, "socket=%s\n", quoteOption(cfg.Addr))
	} else {
		host, port, err := net.SplitHostPort(cfg.Addr)
		if err != nil {
			return "", fmt.Errorf("mysql address %q: %w", cfg.Addr, err)
		}
		fmt.Fprintf(&b, "host=%s\nport=%s\nprotocol=tcp\n", quoteOption(host), quoteOption(port))
	}
	f, err := os.CreateTemp(dir, ".client-*.cnf")
	if err != nil {
		return "", err
	}
	if _, err := f.Write(b.Bytes()); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return filepath.Clean(f.Name()), nil
}

// quoteOption quotes a value for a MySQL option file: double quotes, with
// backslash escapes for the characters the parser unescapes.
func quoteOption(s string) string {
	r := strings.NewReplacer("\\", "\\\\", "\"", "\\\"", "\n", "\\n", "\r", "\\r", "\t", "\\t", "\b", "\\b")
	return "\"" + r.Replace(s) + "\""
}

// tail returns the last lines of a command's output, for its error.
func tail(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 2000 {
		s = "..." + s[len(s)-2000:]
	}
	return s
}

func parseDest(dsn, password string) (*driver.Config, error) { return mysql.ParseDSN(dsn, password) }

func redactDest(cfg *driver.Config) string { return mysql.RedactConfig(cfg) }
