package policies

import (
	"strings"
)

// EnvOverride is a LIFEBOAT_* environment variable that replaces one
// policy value. The set is deliberately small: what differs between hosts
// running the same policy (a restore host uses the owner key, a test
// points at a local bucket).
type EnvOverride struct {
	Var   string // LIFEBOAT_REPOSITORIES_PRIMARY_URL
	Field string // repositories.primary.url
	set   func(p *Policy, v string) error
}

func setString(f func(p *Policy) *string) func(*Policy, string) error {
	return func(p *Policy, v string) error { *f(p) = v; return nil }
}

func setRef(f func(p *Policy) *SecretRef) func(*Policy, string) error {
	return func(p *Policy, v string) error { return f(p).parseScalar(v) }
}

// EnvOverrides lists the environment variables Load and Parse honour with
// WithEnviron, and ApplyEnv.
var EnvOverrides = []EnvOverride{
	{"LIFEBOAT_HOST", "host", setString(func(p *Policy) *string { return &p.Host })},
	{"LIFEBOAT_REPOSITORIES_PRIMARY_URL", "repositories.primary.url",
		setString(func(p *Policy) *string { return &p.Repositories.Primary.URL })},
	{"LIFEBOAT_REPOSITORIES_PRIMARY_KEY_FILE", "repositories.primary.key_file",
		setRef(func(p *Policy) *SecretRef { return &p.Repositories.Primary.KeyFile })},
	{"LIFEBOAT_REPOSITORIES_PRIMARY_PASSWORD_FILE", "repositories.primary.password_file",
		setRef(func(p *Policy) *SecretRef { return &p.Repositories.Primary.PasswordFile })},
	{"LIFEBOAT_DRILL_KEY_FILE", "drill.key_file",
		setRef(func(p *Policy) *SecretRef { return &p.Drill.KeyFile })},
	{"LIFEBOAT_SANITIZE_KEY_FILE", "sanitize.key_file",
		setRef(func(p *Policy) *SecretRef { return &p.Sanitize.KeyFile })},
	{"LIFEBOAT_NOTIFY_WEBHOOK_URL", "notify.webhook.url",
		setString(func(p *Policy) *string { return &p.Notify.Webhook.URL })},
	{"LIFEBOAT_NOTIFY_PING_URL", "notify.ping_url", setString(func(p *Policy) *string { return &p.Notify.PingURL })},
	{"LIFEBOAT_METRICS_TEXTFILE", "metrics.textfile", setString(func(p *Policy) *string { return &p.Metrics.Textfile })},
}

// applyEnv sets the overrides present (non-empty) in environ; it returns
// the fields set and the values it could not parse.
func applyEnv(p *Policy, src *source, environ []string) (map[string]bool, ValidationErrors) {
	vals := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "LIFEBOAT_") {
			vals[k] = v
		}
	}
	set := map[string]bool{}
	var errs ValidationErrors
	for _, o := range EnvOverrides {
		v := vals[o.Var]
		if v == "" {
			continue
		}
		src.env[o.Field] = o.Var
		set[o.Field] = true
		if err := o.set(p, v); err != nil {
			errs = append(errs, src.errAt(o.Field, "", nil, "%v", err))
		}
	}
	return set, errs
}

// ApplyEnv applies the EnvOverrides present in environ to a policy from
// Load or Parse and validates the result again: a policy is never left
// half overridden with bad values unreported. Load(path,
// WithEnviron(os.Environ())) does the same in one step, and also lets the
// environment supply a required value the file leaves out.
func ApplyEnv(p *Policy, environ []string) error {
	src := p.src
	if src == nil {
		src = newSource(p.File)
	}
	q := *p
	_, errs := applyEnv(&q, src, environ)
	errs = append(errs, validate(&q, src)...)
	if len(errs) > 0 {
		return errs.sort()
	}
	*p = q
	return nil
}

// resolveDSNs replaces every dsn: env:NAME (targets, drill servers) by
// the value of NAME in environ. A variable that is unset or empty is a
// problem at the dsn; a resolved DSN may hold a password (the
// environment is a place for secrets), so validate does not refuse it.
func resolveDSNs(p *Policy, src *source, environ []string) ValidationErrors {
	vals := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vals[k] = v
		}
	}
	refs := map[string]*string{"drill.mysql.dsn": &p.Drill.MySQL.DSN, "drill.postgres.dsn": &p.Drill.Postgres.DSN}
	for i := range p.Targets {
		refs[indexPath("targets", i)+".dsn"] = &p.Targets[i].DSN
	}
	var errs ValidationErrors
	for path, dsn := range refs {
		name := SecretRef(*dsn).EnvName()
		if name == "" || !envNameRE.MatchString(name) {
			continue // not a reference; a malformed one is validate's
		}
		v, ok := vals[name]
		switch {
		case !ok:
			errs = append(errs, src.errAt(path, "", nil, "environment variable %s is not set (dsn: env:%s)", name, name))
		case strings.TrimSpace(v) == "":
			errs = append(errs, src.errAt(path, "", nil, "environment variable %s is empty (dsn: env:%s)", name, name))
		default:
			*dsn = v
			src.dsnEnv[path] = name
		}
	}
	return errs
}
