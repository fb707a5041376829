package sanitize

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"filippo.io/age"
	"filippo.io/age/agessh"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/lifeboat-backup/lifeboat/internal/atomicfile"
)

// Output is an export file being written: compressed by its extension
// (.sql, .sql.gz, .sql.zst; a trailing .age is allowed), optionally
// age-encrypted, into a temporary file renamed into place by Commit. Abort
// (or a failed Commit) removes it: no partial export is left behind.
type Output struct {
	path string
	tmp  *atomicfile.File
	enc  io.WriteCloser // age, or nil
	comp io.WriteCloser // gzip/zstd, or nil
	w    io.Writer
	done bool
}

// ParseRecipients parses age recipients (age1..., ssh-ed25519, ssh-rsa).
func ParseRecipients(rs []string) ([]age.Recipient, error) {
	var out []age.Recipient
	for _, s := range rs {
		s = strings.TrimSpace(s)
		var r age.Recipient
		var err error
		if strings.HasPrefix(s, "ssh-") {
			r, err = agessh.ParseRecipient(s)
		} else {
			r, err = age.ParseX25519Recipient(s)
		}
		if err != nil {
			return nil, rulesErrorf("recipient %q: %v", s, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// CreateOutput starts writing path. With recipients the file is
// encrypted to them (age binary format).
func CreateOutput(path string, recipients []age.Recipient) (*Output, error) {
	base := strings.TrimSuffix(path, ".age")
	var kind string
	switch {
	case strings.HasSuffix(base, ".sql.zst"):
		kind = "zst"
	case strings.HasSuffix(base, ".sql.gz"):
		kind = "gz"
	case strings.HasSuffix(base, ".sql"):
		kind = "sql"
	default:
		return nil, rulesErrorf("output %s: name it .sql, .sql.gz or .sql.zst (optionally .age)", path)
	}
	if _, err := os.Stat(path); err == nil {
		return nil, rulesErrorf("output %s exists: remove it or choose another name", path)
	}
	tmp, err := atomicfile.Create(path, 0o600)
	if err != nil {
		return nil, err
	}
	o := &Output{path: path, tmp: tmp, w: tmp}
	if len(recipients) > 0 {
		if o.enc, err = age.Encrypt(tmp, recipients...); err != nil {
			o.Abort()
			return nil, err
		}
		o.w = o.enc
	}
	switch kind {
	case "zst":
		zw, err := zstd.NewWriter(o.w, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
		if err != nil {
			o.Abort()
			return nil, err
		}
		o.comp, o.w = zw, zw
	case "gz":
		gw, _ := gzip.NewWriterLevel(o.w, gzip.DefaultCompression)
		o.comp, o.w = gw, gw
	}
	return o, nil
}

func (o *Output) Write(p []byte) (int, error) { return o.w.Write(p) }

// Commit finishes the file and moves it into place.
func (o *Output) Commit() error {
	if o.done {
		return errors.New("output already closed")
	}
	var err error
	if o.comp != nil {
		err = o.comp.Close()
	}
	if o.enc != nil && err == nil {
		err = o.enc.Close()
	}
	if err == nil {
		err = o.tmp.Commit()
	} else {
		o.tmp.Abort()
	}
	o.done = true
	if err != nil {
		return fmt.Errorf("write %s: %w", o.path, err)
	}
	return nil
}

// Abort removes the unfinished file.
func (o *Output) Abort() {
	if o.done {
		return
	}
	o.done = true
	o.tmp.Abort()
}
