package policies

import (
	"fmt"
	"maps"
	"net"
	"net/mail"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"filippo.io/age"
	"filippo.io/age/agessh"

	"github.com/lifeboat-backup/lifeboat/internal/redact"
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

const nameRule = "must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"

// checker runs the checks that need more than one value's type: formats,
// cross references, uniqueness, combinations.
type checker struct {
	src  *source
	errs ValidationErrors
}

func (c *checker) add(path, value string, allowed []string, format string, args ...any) {
	if c.src.bad[path] {
		return // one problem per value
	}
	c.errs = append(c.errs, c.src.errAt(path, value, allowed, format, args...))
}

func validate(p *Policy, src *source) ValidationErrors {
	c := &checker{src: src}
	if src.has("version") && p.Version != 1 {
		c.add("version", strconv.Itoa(p.Version), []string{"1"}, "version %d is not supported", p.Version)
	}
	if p.Name != "" && !nameRE.MatchString(p.Name) {
		c.add("name", p.Name, nil, "%q: %s", p.Name, nameRule)
	}
	if p.Host != "" && strings.ContainsAny(p.Host, " \t/") {
		c.add("host", p.Host, nil, "%q is not a host name", p.Host)
	}
	c.repositories(p)
	c.targets(p)
	c.retention(p)
	if src.has("objectives.rpo") && p.Objectives.RPO <= 0 {
		c.add("objectives.rpo", p.Objectives.RPO.String(), nil, "must be greater than 0")
	}
	if src.has("objectives.rto") && p.Objectives.RTO <= 0 {
		c.add("objectives.rto", p.Objectives.RTO.String(), nil, "must be greater than 0")
	}
	c.hooks("hooks", p.Hooks)
	for i, t := range p.Targets {
		c.hooks(indexPath("targets", i)+".hooks", t.Hooks)
	}
	c.drill(p)
	c.sanitize(p)
	c.notify(p)
	if t := p.Metrics.Textfile; t != "" && !strings.HasSuffix(t, ".prom") {
		c.add("metrics.textfile", t, nil, "node-exporter reads only files ending in .prom")
	}
	return c.errs
}

func (c *checker) storageURL(path, u string) {
	if u == "" {
		if c.src.has(path) {
			c.add(path, "", nil, "empty: give a URL (e.g. s3://bucket/prefix?region=eu-central-1)")
		}
		return
	}
	if err := checkStorageURL(u); err != nil {
		var allowed []string
		if strings.HasPrefix(err.Error(), "scheme") {
			allowed = RepositorySchemes
		}
		c.add(path, redact.String(u), allowed, "%v", err) // never echo a secret
	}
}

// resticURL checks a repository of the restic engine: lifeboat's file://
// and s3:// URLs, or restic's own repository string, verbatim.
func (c *checker) resticURL(path, u string) {
	if u == "" {
		if c.src.has(path) {
			c.add(path, "", nil, "empty: give a repository (e.g. /srv/restic-repo, sftp:user@host:/srv/repo, s3://bucket/prefix)")
		}
		return
	}
	if err := checkResticRepository(u); err != nil {
		c.add(path, redact.String(u), nil, "%v", err)
	}
}

func (c *checker) httpURL(path, u string) {
	if u == "" {
		if c.src.has(path) {
			c.add(path, "", nil, "empty: give an http(s) URL")
		}
		return
	}
	if err := checkHTTPURL(u); err != nil {
		c.add(path, "", nil, "%v", err)
	}
}

func (c *checker) passwords(path string, pw, file SecretRef) {
	if pw != "" && file != "" {
		c.add(path+".password", "", nil, "give password_file or password, not both")
	}
}

func (c *checker) repositories(p *Policy) {
	pr := p.Repositories.Primary
	url := c.storageURL
	if pr.Engine == "restic" {
		url = c.resticURL
	}
	url("repositories.primary.url", pr.URL)
	if pr.Engine == "restic" && pr.KeyFile != "" {
		c.add("repositories.primary.key_file", "", nil, "the restic engine has no age keys: use password_file")
	}
	c.passwords("repositories.primary", pr.Password, pr.PasswordFile)
	if c.src.has("repositories.primary") && pr.KeyFile == "" && pr.PasswordFile == "" && pr.Password == "" {
		msg := "no key: give key_file (an age identity file: the host key on backup hosts) or password_file (passphrase mode)"
		if pr.Engine == "restic" {
			msg = "no password: give password_file (the restic repository's password, a file or env:NAME)"
		}
		e := c.src.errAt("repositories.primary", "", nil, "%s", msg)
		if k := c.src.keys["repositories.primary"]; k != nil {
			e.Line, e.Column = k.Line, k.Column // the primary: key, not its first value
		}
		c.errs = append(c.errs, e)
	}
	names := map[string]string{}
	for i, s := range p.Repositories.Secondaries {
		path := indexPath("repositories.secondaries", i)
		c.unique(names, path+".name", s.Name, "secondary")
		url(path+".url", s.URL)
		if s.URL != "" && s.URL == pr.URL {
			c.add(path+".url", s.URL, nil, "a secondary must not be the primary repository")
		}
		if s.PasswordFile != "" && pr.Engine != "restic" {
			c.add(path+".password_file", "", nil, "a native secondary is a byte copy of the primary and opens with its keys: password_file is for restic secondaries")
		}
	}
}

// unique reports a name seen before (first: names[name] is its path) or
// not well formed.
func (c *checker) unique(names map[string]string, path, name, what string) {
	if name == "" {
		return
	}
	if !nameRE.MatchString(name) {
		c.add(path, name, nil, "%q: %s", name, nameRule)
		return
	}
	if first, dup := names[name]; dup {
		line := ""
		if n := c.src.values[first]; n != nil {
			line = fmt.Sprintf(" (first at line %d)", n.Line)
		}
		c.add(path, name, nil, "duplicate %s name %q%s", what, name, line)
		return
	}
	names[name] = path
}

func (c *checker) targets(p *Policy) {
	if c.src.has("targets") && len(p.Targets) == 0 {
		c.add("targets", "", Kinds, "at least one target is needed")
	}
	names := map[string]string{}
	for i, t := range p.Targets {
		path := indexPath("targets", i)
		c.unique(names, path+".name", t.Name, "target")
		switch t.Kind {
		case KindMySQL, KindPostgres:
			c.dsn(path+".dsn", t.Kind, t.DSN)
			c.passwords(path, t.Password, t.PasswordFile)
			if c.src.has(path+".jobs") && (t.Jobs < 1 || t.Jobs > 64) {
				c.add(path+".jobs", strconv.Itoa(t.Jobs), nil, "must be between 1 and 64")
			}
			c.nonEmpty(path+".databases", t.Databases)
			c.nonEmpty(path+".exclude_tables", t.ExcludeTables)
			if a := t.Archive; a != nil {
				c.archive(path+".archive", a)
			}
		case KindFiles:
			if c.src.has(path+".paths") && len(t.Paths) == 0 {
				c.add(path+".paths", "", nil, "at least one path is needed")
			}
			for j, f := range t.Paths {
				c.absPath(indexPath(path+".paths", j), f)
				if filepath.Clean(f) == "/" {
					c.add(indexPath(path+".paths", j), f, nil, "/ cannot be a root: list the directories below it")
				}
			}
			c.patterns(path+".exclude", t.Exclude)
			c.patterns(path+".iexclude", t.IExclude)
			for j, f := range t.ExcludeFile {
				if f == "" {
					c.add(indexPath(path+".exclude_file", j), "", nil, "empty value")
				}
				c.absPath(indexPath(path+".exclude_file", j), f)
			}
			for j, n := range t.ExcludeIfPresent {
				if n == "" || strings.Contains(n, "/") || n == "." || n == ".." {
					c.add(indexPath(path+".exclude_if_present", j), n, nil, "%q is not a file name", n)
				}
			}
		case KindExec:
			c.argv(path+".command", t.Command)
			c.argv(path+".restore_command", t.RestoreCommand)
		case KindBucket:
			c.storageURL(path+".url", t.URL)
			c.patterns(path+".include", t.Include)
			c.patterns(path+".exclude", t.Exclude)
		case KindVolume:
			c.absPath(path+".path", t.Path)
			c.argv(path+".before", t.Before)
			c.argv(path+".after", t.After)
			if bs := int64(t.BlockSize); c.src.has(path+".block_size") && (bs < MinVolumeBlockSize || bs > MaxVolumeBlockSize || bs&(bs-1) != 0) {
				c.add(path+".block_size", strconv.FormatInt(bs, 10), nil, "must be a power of two from 4KiB to 16MiB")
			}
		}
	}
}

// archive checks a target's archive block and sets its defaults.
func (c *checker) archive(path string, a *Archive) {
	if c.src.has(path+".max_delay") && (a.MaxDelay < MinArchiveDelay || a.MaxDelay > MaxArchiveDelay) {
		c.add(path+".max_delay", a.MaxDelay.String(), nil, "must be from 1s to 1h")
	}
	if sz := int64(a.SegmentSize); c.src.has(path+".segment_size") && (sz < MinArchiveSegmentSize || sz > MaxArchiveSegmentSize) {
		c.add(path+".segment_size", strconv.FormatInt(sz, 10), nil, "must be from 64KiB to 1GiB")
	}
	if c.src.has(path+".server_id") && (a.ServerID < 1 || int64(a.ServerID) > 1<<32-1) {
		c.add(path+".server_id", strconv.Itoa(a.ServerID), nil, "must be from 1 to 4294967295")
	}
	if a.MaxDelay == 0 {
		a.MaxDelay = Duration(30 * time.Second)
	}
	if a.SegmentSize == 0 {
		a.SegmentSize = 16 << 20
	}
}

func (c *checker) dsn(path, kind, dsn string) {
	if c.src.dsnEnv[path] != "" {
		return // from the environment: a password there is allowed
	}
	if dsn == "" || strings.HasPrefix(dsn, "env:") {
		if dsn != "" && checkRef(dsn, false) != nil {
			c.add(path, "", nil, "not a valid env:NAME reference")
		}
		return
	}
	has := mysqlDSNPassword(dsn)
	if kind == KindPostgres {
		if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
			c.add(path, "", nil, "not a postgres:// URL (key=value connection strings are not supported): postgres://user@host:5432/db")
			return
		}
		has = postgresDSNPassword(dsn)
	}
	if has {
		c.add(path, "", nil, "the DSN holds a password: inline secrets are not allowed (use password_file: PATH or env:NAME)")
	}
}

func (c *checker) nonEmpty(path string, list []string) {
	for j, s := range list {
		if strings.TrimSpace(s) == "" {
			c.add(indexPath(path, j), "", nil, "empty value")
		}
	}
}

func (c *checker) patterns(path string, list []string) {
	for j, s := range list {
		if _, err := filepath.Match(s, ""); err != nil || s == "" {
			c.add(indexPath(path, j), s, nil, "%q is not a glob pattern", s)
		}
	}
}

func (c *checker) absPath(path, f string) {
	if f != "" && !filepath.IsAbs(f) {
		c.add(path, f, nil, "%q is not an absolute path", f)
	}
}

func (c *checker) argv(path string, argv []string) {
	if c.src.has(path) && (len(argv) == 0 || argv[0] == "") {
		c.add(path, "", nil, "needs a command: a list, program first (e.g. [redis-cli, --rdb, \"-\"])")
	}
}

func (c *checker) hooks(path string, h Hooks) {
	if c.src.has(path+".timeout") && h.Timeout <= 0 {
		c.add(path+".timeout", h.Timeout.String(), nil, "must be greater than 0")
	}
	if c.src.has(path+".timeout") && h.IsZero() {
		c.add(path+".timeout", h.Timeout.String(), nil, "no hook to time: add before, after or on_error")
	}
}

func (c *checker) retention(p *Policy) {
	r := p.Retention
	if r.Timezone != "" {
		if _, err := time.LoadLocation(r.Timezone); err != nil || r.Timezone == "Local" {
			c.add("retention.timezone", r.Timezone, nil, "unknown time zone %q (use an IANA name such as Europe/Berlin, or UTC)", r.Timezone)
		}
	}
	c.nonEmpty("retention.keep_tags", r.KeepTags)
	if c.src.has("retention.prune_every") && r.PruneEvery <= 0 {
		c.add("retention.prune_every", r.PruneEvery.String(), nil, "must be greater than 0")
	}
}

var checkKeys = map[string][]string{
	CheckSQL:     {"min", "max", "expect", "database"},
	CheckPath:    {"min_files", "min_size"},
	CheckCommand: {"expect"},
	CheckHTTP:    {"expect"},
}

func (c *checker) drill(p *Policy) {
	if p.Drill.KeyFile != "" && p.Repositories.Primary.Engine == "restic" {
		c.add("drill.key_file", "", nil, "the restic engine has no age keys: the drill reads with the repository's password")
	}
	for _, s := range []struct {
		path, kind string
		srv        DrillServer
	}{{"drill.mysql", KindMySQL, p.Drill.MySQL}, {"drill.postgres", KindPostgres, p.Drill.Postgres}} {
		if s.srv.ServerBinary != "" && s.srv.DSN != "" {
			c.add(s.path+".dsn", "", nil, "give server_binary or dsn, not both")
		}
		c.dsn(s.path+".dsn", s.kind, s.srv.DSN)
		c.passwords(s.path, s.srv.Password, s.srv.PasswordFile)
	}
	targets := map[string]*Target{}
	for i := range p.Targets {
		targets[p.Targets[i].Name] = &p.Targets[i]
	}
	names := map[string]string{}
	for i, ch := range p.Drill.Checks {
		path := indexPath("drill.checks", i)
		if ch.Name != "" {
			if first, dup := names[ch.Name]; dup {
				c.add(path+".name", ch.Name, nil, "duplicate check name %q (first at line %d)", ch.Name, c.src.values[first].Line)
			}
			names[ch.Name] = path + ".name"
		}
		var kinds []string
		for _, k := range []string{CheckSQL, CheckPath, CheckCommand, CheckHTTP} {
			if c.src.has(path + "." + k) {
				kinds = append(kinds, k)
			}
		}
		switch len(kinds) {
		case 0:
			c.add(path, "", []string{CheckSQL, CheckPath, CheckCommand, CheckHTTP}, "a check needs one of sql, path, command or http")
			continue
		case 1:
		default:
			c.add(path+"."+kinds[1], "", nil, "a check has one of sql, path, command or http, not both %s and %s", kinds[0], kinds[1])
			continue
		}
		kind := kinds[0]
		for _, k := range []string{"min", "max", "expect", "database", "min_files", "min_size"} {
			if c.src.has(path+"."+k) && !slices.Contains(checkKeys[kind], k) {
				c.add(path+"."+k, "", nil, "%s does not apply to a %s check", k, kind)
			}
		}
		if ch.Min != nil && ch.Max != nil && *ch.Min > *ch.Max {
			c.add(path+".max", "", nil, "max is less than min")
		}
		var t *Target
		if ch.Target != "" {
			if t = targets[ch.Target]; t == nil {
				c.add(path+".target", ch.Target, slices.Compact(slices.DeleteFunc(slices.Sorted(maps.Keys(targets)),
					func(s string) bool { return s == "" })), "unknown target %q", ch.Target)
				continue
			}
		}
		switch kind {
		case CheckSQL:
			if t == nil && ch.Target == "" {
				c.requireTarget(p, path, "an sql check", KindMySQL, KindPostgres)
			} else if t != nil && t.Kind != KindMySQL && t.Kind != KindPostgres {
				c.add(path+".target", ch.Target, nil, "an sql check needs a mysql or postgres target, %q is %s", t.Name, t.Kind)
			}
			switch {
			case ch.Database == "":
			case t == nil || t.Kind != KindPostgres:
				c.add(path+".database", ch.Database, nil, "database applies to sql checks on a postgres target (mysql queries name their database)")
			case len(t.Databases) > 0 && !slices.Contains(t.Databases, ch.Database):
				c.add(path+".database", ch.Database, t.Databases, "target %q does not back up database %q", t.Name, ch.Database)
			}
		case CheckPath:
			if t == nil && ch.Target == "" {
				c.requireTarget(p, path, "a path check", KindFiles, KindBucket)
			} else if t != nil && t.Kind != KindFiles && t.Kind != KindBucket {
				c.add(path+".target", ch.Target, nil, "a path check needs a files or bucket target, %q is %s", t.Name, t.Kind)
			}
		case CheckCommand:
			c.argv(path+".command", ch.Command)
		case CheckHTTP:
			c.httpURL(path+".http", ch.HTTP)
		}
		if c.src.has(path+".timeout") && ch.Timeout <= 0 {
			c.add(path+".timeout", ch.Timeout.String(), nil, "must be greater than 0")
		}
	}
}

func (c *checker) requireTarget(p *Policy, path, what string, kinds ...string) {
	var fit []string
	for _, t := range p.Targets {
		if slices.Contains(kinds, t.Kind) {
			fit = append(fit, t.Name)
		}
	}
	c.add(path+".target", "", fit, "%s needs a target", what)
}

func (c *checker) sanitize(p *Policy) {
	s := p.Sanitize
	c.tableRules(s.Rules, "sanitize.rules")
	for i, r := range s.Export.Recipients {
		path := indexPath("sanitize.export.recipients", i)
		var err error
		if strings.HasPrefix(r, "ssh-") {
			_, err = agessh.ParseRecipient(r)
		} else {
			_, err = age.ParseX25519Recipient(r)
		}
		if err != nil {
			c.add(path, truncate(r), nil, "%q is not an age recipient (age1..., ssh-ed25519 ..., ssh-rsa ...): %v", truncate(r), err)
		}
	}
}

// tableRules checks sanitize table rules found at path.
func (c *checker) tableRules(rules map[string]TableRules, path string) {
	for table, r := range rules {
		path := childPath(path, table)
		if r.Action == "" && r.Where == "" && len(r.Columns) == 0 && c.src.values[path] == nil && c.src.keys[path] != nil {
			c.add(path, "", []string{TableTruncate, TableSkip, "a mapping of column rules"}, "empty table rule")
		}
	}
}

func (c *checker) notify(p *Policy) {
	n := p.Notify
	e := n.Email
	if c.src.has("notify.email") {
		if e.SMTP == "" {
			c.add("notify.email.smtp", "", nil, "required (host:port)")
		} else if host, port, err := net.SplitHostPort(e.SMTP); err != nil || host == "" || !isPort(port) {
			c.add("notify.email.smtp", e.SMTP, nil, "%q is not host:port (e.g. smtp.example.com:587)", e.SMTP)
		}
		if e.From == "" {
			c.add("notify.email.from", "", nil, "required")
		} else if _, err := mail.ParseAddress(e.From); err != nil {
			c.add("notify.email.from", e.From, nil, "%q is not an email address", e.From)
		}
		if len(e.To) == 0 {
			c.add("notify.email.to", "", nil, "required: a list of addresses")
		}
		for i, a := range e.To {
			if _, err := mail.ParseAddress(a); err != nil {
				c.add(indexPath("notify.email.to", i), a, nil, "%q is not an email address", a)
			}
		}
		c.passwords("notify.email", e.Password, e.PasswordFile)
		if (e.Password != "" || e.PasswordFile != "") && e.Username == "" {
			c.add("notify.email.username", "", nil, "required with a password")
		}
	}
	c.httpURL("notify.webhook.url", n.Webhook.URL)
	c.httpURL("notify.ping_url", n.PingURL)
	if c.src.has("notify.on") && e.IsZero() && n.Webhook.URL == "" && n.PingURL == "" {
		c.add("notify.on", "", nil, "no channel to notify: add email, webhook or ping_url")
	}
}

func isPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n > 0 && n < 65536
}
