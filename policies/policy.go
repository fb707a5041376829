package policies

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Sentinel errors of Policy.Target and Policy.Secondary; callers map them
// to usage errors.
var (
	ErrUnknownTarget    = errors.New("unknown target")
	ErrTargetRequired   = errors.New("the policy has several targets: name one")
	ErrUnknownSecondary = errors.New("unknown secondary repository")
)

// Option changes how a policy is loaded.
type Option func(*options)

type options struct {
	environ  []string
	hostname func() (string, error)
}

// WithEnviron applies the LIFEBOAT_* overrides found in environ (as from
// os.Environ) before validation: see EnvOverrides.
func WithEnviron(environ []string) Option { return func(o *options) { o.environ = environ } }

// withHostname replaces os.Hostname (tests).
func withHostname(f func() (string, error)) Option { return func(o *options) { o.hostname = f } }

// Load reads, validates and completes the policy file at path. An invalid
// policy gives ValidationErrors listing every problem.
func Load(path string, opts ...Option) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return Parse(path, data, opts...)
}

// Parse validates and completes a policy; name is the file name used in
// error messages.
func Parse(name string, data []byte, opts ...Option) (*Policy, error) {
	o := options{hostname: os.Hostname}
	for _, f := range opts {
		f(&o)
	}
	src := newSource(name)
	root, errs := parseYAML(name, data)
	if root == nil {
		return nil, errs
	}
	src.root = root
	p := &Policy{File: name}
	d := &decoder{src: src}
	d.decode(root, reflect.ValueOf(p).Elem(), "", nil, 0)
	errs = append(errs, d.errs...)
	if o.environ != nil {
		errs = append(errs, resolveDSNs(p, src, o.environ)...)
	}
	if len(o.environ) > 0 {
		set, envErrs := applyEnv(p, src, o.environ)
		errs = append(errs, envErrs...)
		// A value the environment supplies is no longer missing.
		errs = slices.DeleteFunc(errs, func(e ValidationError) bool { return e.Msg == "required" && set[e.Field] })
	}
	errs = append(errs, validate(p, src)...)
	if len(errs) > 0 {
		return nil, errs.sort()
	}
	applyDefaults(p, o.hostname)
	p.src = src
	return p, nil
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseYAML returns the root node of the one document in data, or the
// syntax problems.
func parseYAML(name string, data []byte) (*yaml.Node, ValidationErrors) {
	syntax := func(err error) ValidationError {
		e := ValidationError{File: name, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
		if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
			e.Line, _ = strconv.Atoi(m[1])
			e.Msg = m[2]
		}
		e.Msg = "YAML syntax: " + e.Msg
		return e
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, ValidationErrors{{File: name, Msg: "empty policy"}}
		}
		return nil, ValidationErrors{syntax(err)}
	}
	var errs ValidationErrors
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		errs = append(errs, ValidationError{File: name, Line: extra.Line, Column: extra.Column,
			Msg: "a policy is one YAML document: remove the second"})
	case !errors.Is(err, io.EOF):
		errs = append(errs, syntax(err))
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 || isNull(doc.Content[0]) {
		return nil, append(errs, ValidationError{File: name, Msg: "empty policy"})
	}
	return doc.Content[0], errs
}

// applyDefaults fills what the policy leaves out (docs/policy.md).
func applyDefaults(p *Policy, hostname func() (string, error)) {
	if p.Host == "" {
		h, err := hostname()
		if err != nil || h == "" {
			h = "localhost"
		}
		p.Host = h
	}
	pr := &p.Repositories.Primary
	if pr.Engine == "" {
		pr.Engine = "native"
	}
	movePassword(&pr.Password, &pr.PasswordFile)
	if p.Hooks.Timeout == 0 {
		p.Hooks.Timeout = DefaultHookTimeout
	}
	for i := range p.Targets {
		t := &p.Targets[i]
		if t.Hooks.Timeout == 0 {
			t.Hooks.Timeout = DefaultHookTimeout
		}
		if t.Kind == KindMySQL || t.Kind == KindPostgres {
			if t.Jobs == 0 {
				t.Jobs = 2
			}
			movePassword(&t.Password, &t.PasswordFile)
		}
		if t.Kind == KindMySQL && t.LockMode == "" {
			t.LockMode = "ftwrl"
		}
	}
	if p.Replication.DeleteAfter == 0 {
		p.Replication.DeleteAfter = Duration(7 * 24 * time.Hour)
	}
	if p.Replication.MaxDeletePercent == 0 {
		p.Replication.MaxDeletePercent = 50
	}
	for i := range p.Repositories.Secondaries {
		p.Repositories.Secondaries[i].Replication = p.Replication
	}
	r := &p.Retention
	if r.Timezone == "" {
		r.Timezone = "UTC"
	}
	if r.WeekStarts == "" {
		r.WeekStarts = "monday"
	}
	if r.PeriodPick == "" {
		r.PeriodPick = "last"
	}
	if r.PruneEvery == 0 {
		r.PruneEvery = Duration(7 * 24 * time.Hour)
	}
	movePassword(&p.Drill.MySQL.Password, &p.Drill.MySQL.PasswordFile)
	movePassword(&p.Drill.Postgres.Password, &p.Drill.Postgres.PasswordFile)
	for i := range p.Drill.Checks {
		if p.Drill.Checks[i].Timeout == 0 {
			p.Drill.Checks[i].Timeout = Duration(5 * time.Minute)
		}
	}
	if len(p.Notify.On) == 0 && (!p.Notify.Email.IsZero() || p.Notify.Webhook.URL != "" || p.Notify.PingURL != "") {
		p.Notify.On = []string{"failure", "partial", "objective_violation", "lag"}
	}
	movePassword(&p.Notify.Email.Password, &p.Notify.Email.PasswordFile)
}

// movePassword stores a `password: env:NAME` reference in PasswordFile, so
// that users of a policy read secrets from one place.
func movePassword(pw, file *SecretRef) {
	if *file == "" {
		*file = *pw
	}
	*pw = ""
}

// Target returns the target called name. With one target in the policy,
// name may be empty.
func (p *Policy) Target(name string) (*Target, error) {
	if name == "" {
		if len(p.Targets) == 1 {
			return &p.Targets[0], nil
		}
		return nil, fmt.Errorf("%w (--target %s)", ErrTargetRequired, strings.Join(p.TargetNames(), "|"))
	}
	for i := range p.Targets {
		if p.Targets[i].Name == name {
			return &p.Targets[i], nil
		}
	}
	return nil, fmt.Errorf("%w %q (the policy has: %s)", ErrUnknownTarget, name, strings.Join(p.TargetNames(), ", "))
}

// TargetNames lists the targets' names in policy order.
func (p *Policy) TargetNames() []string {
	names := make([]string, len(p.Targets))
	for i, t := range p.Targets {
		names[i] = t.Name
	}
	return names
}

// Secondary returns the secondary repository called name; with one
// secondary, name may be empty.
func (p *Policy) Secondary(name string) (*Secondary, error) {
	sec := p.Repositories.Secondaries
	if name == "" && len(sec) == 1 {
		return &sec[0], nil
	}
	var names []string
	for i := range sec {
		if sec[i].Name == name {
			return &sec[i], nil
		}
		names = append(names, sec[i].Name)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%w: the policy has no secondaries", ErrUnknownSecondary)
	}
	return nil, fmt.Errorf("%w %q (the policy has: %s)", ErrUnknownSecondary, name, strings.Join(names, ", "))
}

// Location returns the retention time zone (valid after Load/Parse).
func (r Retention) Location() *time.Location {
	loc, err := time.LoadLocation(r.Timezone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// WeekStart returns week_starts as a time.Weekday (Monday by default).
func (r Retention) WeekStart() time.Weekday {
	if d, ok := weekdayNames[r.WeekStarts]; ok {
		return d
	}
	return time.Monday
}

// IsZero reports whether no email notification is configured.
func (e Email) IsZero() bool { return e.SMTP == "" && e.From == "" && len(e.To) == 0 }
