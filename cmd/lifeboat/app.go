package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"golang.org/x/term"

	"github.com/lifeboat-backup/lifeboat/engine/logarchive"
	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/restic"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/engine/storage"
	"github.com/lifeboat-backup/lifeboat/internal/humanize"
	"github.com/lifeboat-backup/lifeboat/internal/report"
	"github.com/lifeboat-backup/lifeboat/policies"
	"github.com/lifeboat-backup/lifeboat/restore/drill"
	"github.com/lifeboat-backup/lifeboat/targets/mysql/binlog"
	"github.com/lifeboat-backup/lifeboat/targets/postgres/wal"
)

// Exit codes (design.md, "Conventions"); set only in exitCode.
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitObjective   = 3
	exitPartial     = 4
	exitIncomplete  = 5
	exitNoRepo      = 10
	exitLocked      = 11
	exitWrongKey    = 12
	exitGap         = 13
	exitInterrupted = 130
)

// usageError marks bad flags or arguments (exit 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// partialError: the snapshot was saved, but some source data could not be
// read (exit 4).
type partialError struct{ n int }

func (e partialError) Error() string {
	return fmt.Sprintf("snapshot saved, but %d source entries could not be read (listed above)", e.n)
}

// app holds what every command shares: standard streams, output mode and
// the global options. No package-level state, so tests run it in-process.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	v              *viper.Viper
	json           bool
	quiet          bool
	verbose        int // -v: list files (backup, restore)
	cpuProfile     string
	policy         *policies.Policy // from --policy or the run/replicate argument
	drillKey       bool             // a drill: the policy's drill.key_file before its primary key_file
	flags          *pflag.FlagSet   // the global flags (option tells given from default)
	warned         map[string]bool  // environment variables a policy overruled, named once
	printer        *report.Printer  // out()
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *app {
	v := viper.New()
	v.SetEnvPrefix("LIFEBOAT")
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	v.AutomaticEnv()
	return &app{stdin: stdin, stdout: stdout, stderr: stderr, v: v}
}

func (a *app) root() *cobra.Command {
	root := &cobra.Command{
		Use:   "lifeboat",
		Short: "Backups and disaster recovery: deduplicated, compressed, encrypted snapshots in object storage",
		Long: `lifeboat backs up file trees, MySQL/MariaDB and PostgreSQL databases, buckets, block volumes
and command streams into a repository in object storage (file://, s3://, gs://, azblob://),
deduplicated, zstd-compressed and age-encrypted; restores, replicates, drills and exports them.

Repository and key also come from the environment: LIFEBOAT_REPO, LIFEBOAT_KEY_FILE,
LIFEBOAT_PASSPHRASE_FILE. A policy's own repository is never overridden by the environment
(docs/reliability.md).

Exit codes: 0 ok, 1 failure, 2 bad usage, 3 objective violated (drill), 4 snapshot saved but
some source data unreadable, 5 restore finished but some entries could not be restored
(listed), 10 no repository, 11 repository locked, 12 wrong key, 13 gap in a binlog or WAL archive,
130 interrupted.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.Version = versionLine()
	root.SetVersionTemplate("{{.Version}}\n")
	pf := root.PersistentFlags()
	a.flags = pf
	pf.String("repo", "", "repository URL (env LIFEBOAT_REPO)")
	pf.String("key-file", "", "age identity file: owner or host key (env LIFEBOAT_KEY_FILE)")
	pf.String("passphrase-file", "", "file holding the repository passphrase (env LIFEBOAT_PASSPHRASE_FILE)")
	pf.String("pin", "", "the repository's signing key as init printed it (env LIFEBOAT_PIN); key files init wrote carry it")
	pf.String("policy", "", "work through this policy's primary repository and key (env LIFEBOAT_POLICY)")
	pf.String("engine", "", "repository engine: native or restic (env LIFEBOAT_ENGINE; default: the policy's, else native)")
	pf.Duration("retry-lock", 0, "wait this long for a conflicting lock to go away")
	pf.Int("uploads", repo.DefaultUploads, "full packs uploaded at once in the background while new ones are filled (env LIFEBOAT_UPLOADS); each holds up to a pack in memory on s3://")
	pf.Int("limit-upload", 0, "limit what is sent to s3:// stores to this many KiB/s, all connections together (env LIFEBOAT_LIMIT_UPLOAD; 0: none)")
	pf.Int("limit-download", 0, "limit what is received from s3:// stores to this many KiB/s, all connections together (env LIFEBOAT_LIMIT_DOWNLOAD; 0: none)")
	pf.BoolVar(&a.json, "json", false, "print JSON lines (summary last) instead of text")
	pf.BoolVarP(&a.quiet, "quiet", "q", false, "print only the summary and errors")
	pf.CountVarP(&a.verbose, "verbose", "v", "list the files a backup stores (new, modified, unchanged) or a restore restores")
	pf.StringVar(&a.cpuProfile, "cpu-profile", "", "write a CPU profile to this file (for performance work)")
	_ = pf.MarkHidden("cpu-profile")
	for _, name := range []string{"repo", "key-file", "passphrase-file", "pin", "retry-lock", "policy", "engine", "limit-upload", "limit-download", "uploads"} {
		_ = a.v.BindPFlag(name, pf.Lookup(name))
	}
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		if err := a.startProfile(); err != nil {
			return err
		}
		// Always set (0: none), so an in-process run never inherits the
		// limits of the one before.
		if err := storage.SetLimits(a.v.GetInt("limit-upload"), a.v.GetInt("limit-download")); err != nil {
			return usageError{err}
		}
		return a.usePolicy()
	}
	root.PersistentPostRun = func(*cobra.Command, []string) { pprof.StopCPUProfile() }
	root.AddCommand(a.initCmd(), a.backupCmd(), a.snapshotsCmd(), a.lsCmd(), a.restoreCmd(),
		a.checkCmd(), a.pruneCmd(), a.forgetCmd(), a.unlockCmd(), a.versionCmd(), a.replicateCmd(), a.runCmd(), a.failoverCmd(), a.statusCmd())
	root.AddCommand(a.systemdCmd(), a.daemonCmd(), a.historyCmd())
	root.AddCommand(a.configCmd(), a.keyCmd())
	root.AddCommand(a.drillCmd(), a.tagCmd())
	root.AddCommand(a.walCmd(), a.binlogCmd())
	root.AddCommand(a.exportCmd(), a.sanitizeCmd())
	root.AddCommand(a.manCmd())
	root.AddCommand(a.browseCmds()...)
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	guardCommands(root)
	a.addCompletions(root)
	return root
}

func (a *app) run(ctx context.Context, args []string) int {
	root := a.root()
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	code := exitCode(ctx, err)
	if cmd != nil && cmd.Annotations[annotAbortRecovery] != "" && code != exitInterrupted && !errors.Is(err, logarchive.ErrNotFound) {
		// wal fetch: whatever fails but "not found", even a bad policy or
		// usage, must stop PostgreSQL's recovery (cmd_wal.go).
		code = exitAbortRecovery
	}
	msg := err.Error()
	if code == exitUsage {
		msg += "\nTry: lifeboat --help"
	}
	if a.json {
		_ = json.NewEncoder(a.stderr).Encode(map[string]any{"error": err.Error(), "exit_code": code})
		if workCommand(cmd) && !a.out().Summarized() {
			// The JSON contract (docs/json.md): a command that does work
			// ends with one summary, also when it fails.
			_ = a.emit(map[string]any{"message_type": report.TypeError, "error": err.Error(), "exit_code": code})
			_ = a.emit(map[string]any{"message_type": report.TypeSummary, "ok": false, "error": err.Error(), "exit_code": code})
		}
	} else {
		fmt.Fprintln(a.stderr, "lifeboat: "+termLines(msg))
	}
	return code
}

// workCommands print JSON lines with a message_type and end with exactly
// one summary, also on failure (docs/json.md).
var workCommands = map[string]bool{"backup": true, "restore": true, "forget": true, "prune": true, "check": true,
	"replicate": true, "run": true, "drill": true, "export": true}

// workCommand reports whether cmd is, or is under, a work command.
func workCommand(cmd *cobra.Command) bool {
	for ; cmd != nil && cmd.HasParent(); cmd = cmd.Parent() {
		if !cmd.Parent().HasParent() {
			return workCommands[cmd.Name()]
		}
	}
	return false
}

// exitCode maps typed errors to exit codes, in this one place.
func exitCode(ctx context.Context, err error) int {
	var ue usageError
	var pe partialError
	var ie *snapshot.IncompleteError
	var ve policies.ValidationErrors
	var gap *binlog.GapError
	var walGap *wal.GapError
	switch {
	case ctx.Err() != nil:
		return exitInterrupted
	case errors.As(err, &ue) || errors.As(err, &ve) || isCobraUsage(err) || errors.Is(err, snapshot.ErrUnsupported):
		return exitUsage
	case errors.As(err, &pe):
		return exitPartial
	case errors.As(err, &ie):
		return exitIncomplete
	case errors.Is(err, drill.ErrObjectiveViolated):
		return exitObjective
	case errors.Is(err, repo.ErrNoRepository), errors.Is(err, restic.ErrNoRepository):
		return exitNoRepo
	case repo.IsLocked(err), errors.Is(err, restic.ErrLocked):
		return exitLocked
	case errors.Is(err, repo.ErrWrongKey), errors.Is(err, repo.ErrNoDataKey), errors.Is(err, restic.ErrWrongPassword):
		return exitWrongKey
	case errors.As(err, &gap), errors.As(err, &walGap):
		return exitGap
	}
	return exitFailure
}

func isCobraUsage(err error) bool {
	s := err.Error()
	return strings.HasPrefix(s, "unknown command") || strings.HasPrefix(s, "unknown flag") ||
		strings.Contains(s, "arg(s), received") || strings.HasPrefix(s, "required flag")
}

func (a *app) startProfile() error {
	if a.cpuProfile == "" {
		return nil
	}
	f, err := os.Create(a.cpuProfile)
	if err != nil {
		return err
	}
	return pprof.StartCPUProfile(f)
}

// option returns where a command works (repository URL, engine): the flag
// when given on the command line, else what the policy says (pol, when
// set), else the environment (LIFEBOAT_*). The environment fills what a
// command lacks and never overrides a policy: `run POLICY` with
// LIFEBOAT_REPO exported backed up into the environment's repository,
// while `status POLICY` looked at the policy's. An environment value the
// policy overrules is named once.
func (a *app) option(name, pol string) string {
	if f := a.flags.Lookup(name); f != nil && f.Changed {
		return f.Value.String()
	}
	if pol == "" {
		return a.v.GetString(name)
	}
	env := "LIFEBOAT_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	if v := os.Getenv(env); v != "" && v != pol && !a.warned[env] {
		if a.warned == nil {
			a.warned = map[string]bool{}
		}
		a.warned[env] = true
		fmt.Fprintf(a.stderr, "note: %s ignored: the policy names its own %s (give --%s to override it)\n", env, name, name)
	}
	return pol
}

// credential returns a key or passphrase file: the flag, else the
// environment, else the policy's (pol). Unlike the repository (option),
// the environment may override a policy's credentials: they say who is
// acting, not where data goes, and a restore host's operator exports the
// owner key to fail over with a policy whose key_file is the backup host's
// key. A key that does not fit fails with exit 12, never silently.
func (a *app) credential(name, pol string) string {
	if v := a.v.GetString(name); v != "" {
		return v
	}
	return pol
}

func (a *app) repoURL() (string, error) {
	var pol string
	if a.policy != nil {
		pol = a.policy.Repositories.Primary.URL
	}
	u := a.option("repo", pol)
	if u == "" {
		return "", usagef("no repository: give --repo URL, --policy FILE or set LIFEBOAT_REPO")
	}
	return u, nil
}

// usePolicy loads the policy named by --policy (once); commands then work
// through its primary repository unless --repo/--key-file say otherwise.
func (a *app) usePolicy() error {
	path := a.v.GetString("policy")
	if path == "" || a.policy != nil {
		return nil
	}
	p, err := a.loadPolicy(path)
	if err != nil {
		return err
	}
	a.policy = p
	return nil
}

func (a *app) passphrase() (string, error) {
	var pol string
	if a.policy != nil {
		pol = string(a.policy.Repositories.Primary.PasswordFile)
	}
	f := a.credential("passphrase-file", pol)
	var data []byte
	var err error
	switch {
	case f != "" && f != pol:
		data, err = os.ReadFile(f)
	case pol != "":
		f = "repositories.primary.password_file"
		data, err = a.policy.Repositories.Primary.PasswordFile.Read()
	default:
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("passphrase file: %w", err)
	}
	p := strings.TrimRight(string(data), "\r\n")
	if p == "" {
		return "", fmt.Errorf("passphrase file %s is empty", f)
	}
	return p, nil
}

func (a *app) credentials() (repo.Credentials, error) {
	var c repo.Credentials
	var err error
	if c.Passphrase, err = a.passphrase(); err != nil {
		return c, err
	}
	if kf := a.v.GetString("key-file"); kf != "" {
		kc, err := repo.ReadKeyFile(kf)
		if err != nil {
			return c, usageNotFound("--key-file", err)
		}
		c.Identities, c.Pins = kc.Identities, kc.Pins
	} else if ref, field := a.policyKeyFile(); ref != "" {
		data, err := ref.Read()
		if err != nil {
			return c, fmt.Errorf("%s: %w", field, err)
		}
		kc, err := repo.ParseCredentials(data)
		if err != nil {
			return c, fmt.Errorf("%s: %w", field, err)
		}
		c.Identities, c.Pins = kc.Identities, kc.Pins
	}
	if s := a.v.GetString("pin"); s != "" {
		p, err := repo.ParsePin(s)
		if err != nil {
			return c, usagef("--pin: %v", err)
		}
		c.Pins = append(c.Pins, p)
	}
	return c, nil
}

// policyKeyFile is the policy's key the command reads with, and its
// field: a drill's drill.key_file (the owner key on the drill host), else
// repositories.primary.key_file.
func (a *app) policyKeyFile() (policies.SecretRef, string) {
	switch {
	case a.policy == nil:
		return "", ""
	case a.drillKey && a.policy.Drill.KeyFile != "":
		return a.policy.Drill.KeyFile, "drill.key_file"
	}
	return a.policy.Repositories.Primary.KeyFile, "repositories.primary.key_file"
}

// openRepo opens the repository named by --repo with the given
// credentials, without its index (lock loads it).
func (a *app) openRepo(ctx context.Context) (*repo.Repository, error) {
	url, err := a.repoURL()
	if err != nil {
		return nil, err
	}
	return a.openRepoAt(ctx, url)
}

// openRepoAt opens the repository at url with the command's credentials,
// without its index (lock loads it).
func (a *app) openRepoAt(ctx context.Context, url string) (*repo.Repository, error) {
	creds, err := a.credentials()
	if err != nil {
		return nil, err
	}
	b, err := storage.OpenWith(ctx, url, storage.OpenOptions{Ping: true})
	if err != nil {
		if errors.Is(err, storage.ErrNotExist) {
			return nil, fmt.Errorf("%w: %v", repo.ErrNoRepository, err)
		}
		return nil, err
	}
	r, err := repo.OpenUnindexed(ctx, b, creds)
	if err != nil {
		_ = b.Close()
		if errors.Is(err, repo.ErrNoRepository) {
			return nil, fmt.Errorf("%s: %w (run `lifeboat init` first)", storage.Redact(url), err)
		}
		return nil, err
	}
	for _, w := range r.Warnings() {
		fmt.Fprintf(a.stderr, "warning: %s: %s\n", storage.Redact(url), w)
	}
	n := a.v.GetInt("uploads")
	if n < 1 || n > 256 {
		_ = b.Close()
		return nil, usagef("--uploads %d: want 1 to 256", n)
	}
	r.SetUploads(n)
	return r, nil
}

// lockMode is the lock a command takes around its work.
type lockMode int

const (
	noLock        lockMode = iota // read-only listing: never blocks, never blocked
	readLock                      // reads packs: a shared lock if it can be written (read-only or full storage: a warning)
	sharedLock                    // writes new objects
	exclusiveLock                 // rewrites the index from scratch (repair), changes keys
	pruneLock                     // prune: beside writers, never beside another prune
)

// withRepo opens the repository, takes the lock, loads the index, runs fn,
// and releases both (kopia's repositoryWriterAction): the one place
// commands get a repository.
func (a *app) withRepo(ctx context.Context, mode lockMode, purpose string, fn func(context.Context, *repo.Repository) error) error {
	name, err := a.engineName()
	if err != nil {
		return err
	}
	if name == "restic" {
		return usagef("this command works on native repositories only; the repository's engine is restic (docs/restic-engine.md)")
	}
	r, err := a.openRepo(ctx)
	if err != nil {
		return err
	}
	defer r.Bucket().Close()
	ctx, unlock, err := a.lock(ctx, r, mode, purpose, "")
	if err != nil {
		return err
	}
	defer unlock()
	return lockLost(ctx, fn(ctx, r))
}

// lock takes a lock of mode on r for purpose and then loads the index
// (repo.Repository.Lock: lock first, then load). The context it gives ends
// when the lease is lost: others may treat the lock as stale from then on
// (a prune could delete what we write or read). A read lock that cannot be
// written (read-only credentials, a full disk) is a warning naming where,
// and the read goes on. unlock releases it.
func (a *app) lock(ctx context.Context, r *repo.Repository, mode lockMode, purpose, where string) (_ context.Context, unlock func(), _ error) {
	if mode == noLock {
		return ctx, func() {}, r.LoadIndex(ctx)
	}
	var lk *repo.Lock
	var err error
	if mode == pruneLock {
		lk, err = r.LockForPrune(ctx, purpose, a.v.GetDuration("retry-lock"))
	} else {
		lk, err = r.Lock(ctx, mode == exclusiveLock, purpose, a.v.GetDuration("retry-lock"))
	}
	if err != nil && mode == readLock && !repo.IsLocked(err) && ctx.Err() == nil {
		if where == "" {
			where = "repository"
		}
		fmt.Fprintf(a.stderr, "warning: %s: no lock (%v): a prune there meanwhile could remove what this reads\n", where, err)
		return ctx, func() {}, r.LoadIndex(ctx)
	}
	if err != nil {
		return nil, nil, err
	}
	a.reportDamage(r)
	ctx, cancel := context.WithCancelCause(ctx)
	go func() {
		select {
		case <-lk.Lost():
			cancel(repo.ErrLockLost)
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		cancel(nil)
		if err := lk.Unlock(context.WithoutCancel(ctx)); err != nil {
			// Append-only credentials cannot delete: the lock stays until its
			// lease ends; the owner's `lifeboat unlock` or prune removes it.
			fmt.Fprintf(a.stderr, "warning: lock not released (%v); it expires with its lease, and the owner's credentials remove it (`lifeboat unlock`)\n", err)
		}
	}, nil
}

// reportDamage warns about index files the index load skipped.
func (a *app) reportDamage(r *repo.Repository) {
	if bad := r.DamagedIndexes(); len(bad) > 0 {
		for _, err := range bad {
			fmt.Fprintf(a.stderr, "warning: skipped %v\n", err)
		}
		fmt.Fprintf(a.stderr, "warning: %d index files skipped: blobs only they list are stored again; `lifeboat check --repair` rebuilds the index\n", len(bad))
	}
}

// lockLost names a lost lease as the cause of err, the error of work done
// under a lock (its context ended).
func lockLost(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); err != nil && errors.Is(cause, repo.ErrLockLost) {
		return fmt.Errorf("%w (%v)", cause, err)
	}
	return err
}

// out is the command's printer (internal/report), made on first use,
// after the flags are parsed.
func (a *app) out() *report.Printer {
	if a.printer == nil {
		f, ok := a.stderr.(*os.File)
		a.printer = report.New(a.stdout, a.stderr, report.Options{JSON: a.json, Quiet: a.quiet,
			Terminal: ok && term.IsTerminal(int(f.Fd())), FPS: report.FPSFromEnv()})
	}
	return a.printer
}

// emit prints one JSON object (a line) in --json mode.
func (a *app) emit(v any) error { return a.out().JSON(v) }

// printf prints text unless in --json or --quiet mode.
func (a *app) printf(format string, args ...any) {
	if a.json || a.quiet {
		return
	}
	fmt.Fprintf(a.stdout, format, args...)
}

// progress redraws status() on stderr while running on a terminal (text
// only: nothing in JSON); the returned stop function clears the line.
func (a *app) progress(status func() string) (stop func()) { return a.out().ProgressText(status) }

// progressOf reports a phase with a known or unknown total: status lines
// in JSON, a redrawn line with percent and ETA on a terminal, nothing
// otherwise (report.Printer.Progress). count is read at every tick.
func (a *app) progressOf(count func() report.Counter) (stop func()) {
	start := time.Now()
	return a.out().Progress(func() report.Status { return report.Make(count(), time.Since(start)) })
}

// verboseFile lists one file a backup stored or a restore restored (-v):
// a verbose_status line in JSON, else "ACTION  PATH, SIZE" as restic's
// -v does; nil without -v or with --quiet.
func (a *app) verboseFile(sizeKey string) func(path, action string, size int64) {
	if a.verbose == 0 || a.quiet {
		return nil
	}
	return func(path, action string, size int64) {
		if a.json {
			_ = a.emit(map[string]any{"message_type": report.TypeVerbose, "action": action, "item": path, sizeKey: size})
			return
		}
		a.out().Line("%-10s %s, %s", action, termSafe(path), humanize.Bytes(size))
	}
}

// warn prints a warning: something around a command's work went wrong
// without changing its result (a journal, a notification, metrics).
func (a *app) warn(err error) { fmt.Fprintln(a.stderr, "warning: "+err.Error()) }
