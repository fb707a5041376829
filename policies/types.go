package policies

import "time"

// Struct tags used by the decoder, the validator and JSONSchema:
//
//	yaml:"key"         the policy key
//	req:"1"            required (for target fields: required for the kinds listed)
//	enum:"a,b"         allowed values
//	kinds:"mysql,..."  target fields: the kinds the key applies to
//	doc:"..."          description (schema, docs)

// Policy is one policy file, validated and with defaults applied.
type Policy struct {
	Version      int          `yaml:"version" req:"1" doc:"policy format version: 1"`
	Name         string       `yaml:"name" req:"1" doc:"policy name: tags snapshots, names units, metrics and journal entries"`
	Host         string       `yaml:"host" doc:"host name recorded in snapshots; default: the hostname"`
	Repositories Repositories `yaml:"repositories" req:"1" doc:"where snapshots are stored"`
	Targets      []Target     `yaml:"targets" req:"1" doc:"what is backed up"`
	Schedule     Schedule     `yaml:"schedule" doc:"when lifeboat run runs (systemd timer or lifeboat daemon)"`
	Retention    Retention    `yaml:"retention" doc:"which snapshots are kept"`
	Replication  Replication  `yaml:"replication" doc:"how secondaries follow deletions on the primary"`
	Objectives   Objectives   `yaml:"objectives" doc:"recovery objectives checked by drills"`
	Drill        Drill        `yaml:"drill" doc:"restore drills: schedule, scratch servers, health checks"`
	Sanitize     Sanitize     `yaml:"sanitize" doc:"sanitized exports for developers"`
	Notify       Notify       `yaml:"notify" doc:"notifications"`
	Metrics      Metrics      `yaml:"metrics" doc:"Prometheus metrics"`
	Hooks        Hooks        `yaml:"hooks" doc:"shell commands run around the whole run: before the first target, after success, on error"`

	// File is the name the policy was parsed under (Load: its path).
	File string `yaml:"-"`

	src *source // positions, for ApplyEnv
}

// Repositories are the primary repository and its replicas.
type Repositories struct {
	Primary     Repository  `yaml:"primary" req:"1" doc:"the repository every run writes to"`
	Secondaries []Secondary `yaml:"secondaries" doc:"replicas, copied to after every run; failover restores from them"`
}

// Repository is the primary repository.
type Repository struct {
	URL          string    `yaml:"url" req:"1" doc:"storage URL: file://, mem://, s3://, gs://, azblob://"`
	Engine       string    `yaml:"engine" enum:"native,restic" doc:"repository engine; default native"`
	KeyFile      SecretRef `yaml:"key_file" doc:"age identity file (owner or host key), or env:NAME; native engine"`
	PasswordFile SecretRef `yaml:"password_file" doc:"file holding the repository passphrase (native passphrase mode, restic), or env:NAME"`
	Password     SecretRef `yaml:"password" doc:"env:NAME only (never inline); stored in PasswordFile after validation"`
}

// Secondary is a replica of the primary repository.
type Secondary struct {
	Name         string    `yaml:"name" req:"1" doc:"unique name, used by failover --from"`
	URL          string    `yaml:"url" req:"1" doc:"storage URL: file://, mem://, s3://, gs://, azblob://"`
	MaxLag       Duration  `yaml:"max_lag" doc:"alert (notify on: lag) when the newest snapshot is missing here longer than this; 0: never"`
	PasswordFile SecretRef `yaml:"password_file" doc:"restic engine: this secondary's own password (file or env:NAME); default: the primary's"`

	// Replication is the policy's replication block (set by Load).
	Replication Replication `yaml:"-"`
}

// Replication says how secondaries follow deletions on the primary: a
// primary emptied by mistake or by an attacker must not empty its replicas.
type Replication struct {
	DeleteAfter      Duration `yaml:"delete_after" doc:"keep what the primary forgot (snapshots, index files, packs) this long in the secondaries; default 7d"`
	MaxDeletePercent int      `yaml:"max_delete_percent" doc:"refuse (and alert) a replication that finds more than this percent of a secondary's snapshots gone from the primary at once; default 50, 100: no limit"`
}

// Target kinds.
const (
	KindMySQL    = "mysql"
	KindPostgres = "postgres"
	KindFiles    = "files"
	KindBucket   = "bucket"
	KindVolume   = "volume"
	KindExec     = "exec"
)

// Kinds lists the target kinds.
var Kinds = []string{KindMySQL, KindPostgres, KindFiles, KindBucket, KindVolume, KindExec}

// Target is one thing to back up. Which keys apply depends on Kind (the
// kinds tag); a key given for another kind is an error.
type Target struct {
	Name  string   `yaml:"name" req:"1" doc:"unique target name (letters, digits, . _ -); snapshots are tagged with it"`
	Kind  string   `yaml:"kind" req:"1" enum:"mysql,postgres,files,bucket,volume,exec" doc:"what kind of source this is"`
	Tags  []string `yaml:"tags" doc:"extra snapshot tags"`
	Hooks Hooks    `yaml:"hooks" doc:"shell commands run around this target's backup: a failing before hook fails the target without a snapshot"`

	// mysql, postgres
	DSN           string    `yaml:"dsn" req:"mysql,postgres" kinds:"mysql,postgres" doc:"connection string without password (mysql: user@tcp(host:3306)/; postgres: postgres://user@host:5432/db), or env:NAME: the variable holds it (a password there is allowed)"`
	PasswordFile  SecretRef `yaml:"password_file" kinds:"mysql,postgres" doc:"file holding the database password, or env:NAME"`
	Password      SecretRef `yaml:"password" kinds:"mysql,postgres" doc:"env:NAME only (never inline); stored in PasswordFile after validation"`
	Databases     []string  `yaml:"databases" kinds:"mysql,postgres" doc:"databases to back up; default: all (mysql: except system schemas)"`
	ExcludeTables []string  `yaml:"exclude_tables" kinds:"mysql,postgres" doc:"db.table patterns (* and ? wildcards) left out"`
	Jobs          int       `yaml:"jobs" kinds:"mysql,postgres" doc:"parallel dump workers; default 2"`
	SplitBytes    Size      `yaml:"split_bytes" kinds:"mysql" doc:"InnoDB tables bigger than this are read in primary-key ranges on several connections; default 64MiB"`
	LockMode      string    `yaml:"lock_mode" kinds:"mysql" enum:"ftwrl,backup_lock,single" doc:"consistency: FLUSH TABLES WITH READ LOCK, backup locks, or single transaction (InnoDB only, no global lock); default ftwrl"`
	Users         bool      `yaml:"users" kinds:"mysql" doc:"also back up user accounts, roles and grants (password hashes included; needs SELECT on the mysql database); lifeboat restore --users re-creates them"`
	Archive       *Archive  `yaml:"archive" kinds:"mysql,postgres" doc:"continuous log archive for point-in-time restores: mysql binary log by lifeboat binlog archive, postgres WAL streamed by lifeboat wal receive (docs/pitr.md)"`
	Globals       bool      `yaml:"globals" kinds:"postgres" doc:"also back up roles and tablespaces (pg_dumpall --globals-only); restores and drills re-create them"`
	Method        string    `yaml:"method" kinds:"mysql,postgres" enum:"logical,physical" doc:"logical (a dump, default) or physical (postgres: pg_basebackup of the whole cluster; mysql: mariabackup of the whole server, on its host; the base of point-in-time recovery; docs/pitr.md)"`

	// files
	Paths            []string `yaml:"paths" req:"files" kinds:"files" doc:"directory trees to back up (absolute paths)"`
	Exclude          []string `yaml:"exclude" kinds:"files,bucket" doc:"glob patterns left out"`
	IExclude         []string `yaml:"iexclude" kinds:"files" doc:"glob patterns left out, matched regardless of case (restic's --iexclude)"`
	ExcludeFile      []string `yaml:"exclude_file" kinds:"files" doc:"files of exclude patterns, one a line, # comments (restic's --exclude-file; absolute paths, read at each run)"`
	ExcludeIfPresent []string `yaml:"exclude_if_present" kinds:"files" doc:"file names: a directory holding one keeps only itself and that file (restic's --exclude-if-present)"`
	ExcludeCaches    bool     `yaml:"exclude_caches" kinds:"files" doc:"leave out the content of directories with a CACHEDIR.TAG (restic's --exclude-caches)"`
	OneFileSystem    bool     `yaml:"one_file_system" kinds:"files" doc:"do not cross file-system boundaries"`

	// exec
	Command        []string `yaml:"command" req:"exec" kinds:"exec" doc:"command whose stdout is backed up (argv, no shell)"`
	RestoreCommand []string `yaml:"restore_command" kinds:"exec" doc:"command that receives the backup on stdin at restore (argv)"`

	// bucket
	URL     string   `yaml:"url" req:"bucket" kinds:"bucket" doc:"source bucket URL: file://, mem://, s3://, gs://, azblob://"`
	Prefix  string   `yaml:"prefix" kinds:"bucket" doc:"only objects under this prefix"`
	Include []string `yaml:"include" kinds:"bucket" doc:"glob patterns of object keys to back up; default: all"`

	// volume
	Path      string   `yaml:"path" req:"volume" kinds:"volume" doc:"block device or image file"`
	Before    []string `yaml:"before" kinds:"volume" doc:"command run before reading (e.g. lvcreate --snapshot, fsfreeze -f)"`
	After     []string `yaml:"after" kinds:"volume" doc:"command run after reading, also after a failure"`
	BlockSize Size     `yaml:"block_size" kinds:"volume" doc:"aligned block size the volume is cut into: a power of two from 4KiB to 16MiB; default 256KiB"`
}

// Hooks are shell command lines run around a policy run or one target's
// backup, as borgmatic's before/after/on_error hooks (docs/policy.md,
// "Hooks").
type Hooks struct {
	Before  Commands `yaml:"before" doc:"run first; one failing (non-zero exit, timeout) fails the target (policy level: every target) without a snapshot"`
	After   Commands `yaml:"after" doc:"run after success (target: its snapshot saved; policy: the whole run ok)"`
	OnError Commands `yaml:"on_error" doc:"run after a failure (a before hook, the backup, an after hook; policy: any step of the run)"`
	Timeout Duration `yaml:"timeout" doc:"time limit of each command, then it is killed and fails; default 5m"`
}

// DefaultHookTimeout is a hook command's time limit when hooks.timeout is
// not given.
const DefaultHookTimeout = Duration(5 * time.Minute)

// IsZero reports whether no hook command is configured.
func (h Hooks) IsZero() bool { return len(h.Before) == 0 && len(h.After) == 0 && len(h.OnError) == 0 }

// Commands are shell command lines (run with sh -c), written as one
// string or a list of them.
type Commands []string

// Archive configures the continuous archive of a database's log (the
// MySQL/MariaDB binary log, PostgreSQL's WAL) into the repository.
type Archive struct {
	MaxDelay    Duration `yaml:"max_delay" doc:"an archived event is stored at most this long after the server wrote it (the archive's RPO); 1s to 1h, default 30s"`
	SegmentSize Size     `yaml:"segment_size" doc:"a segment is also cut at this size (mysql; PostgreSQL's WAL segment size is the server's); 64KiB to 1GiB, default 16MiB"`
	ServerID    int      `yaml:"server_id" doc:"replica server id the archiver connects with, unique among the server's replicas (mysql); default derived from the policy and target names"`
}

// Archive limits.
const (
	MinArchiveDelay       = Duration(time.Second)
	MaxArchiveDelay       = Duration(time.Hour)
	MinArchiveSegmentSize = 64 << 10
	MaxArchiveSegmentSize = 1 << 30
)

// Volume block size limits (targets/volume.MinBlockSize, MaxBlockSize).
const (
	MinVolumeBlockSize = 4 << 10
	MaxVolumeBlockSize = 16 << 20
)

// Schedule is when a run (or drill) starts.
type Schedule struct {
	Calendar        Calendar `yaml:"calendar" doc:"systemd OnCalendar expression (supported subset: docs/policy.md)"`
	RandomizedDelay Duration `yaml:"randomized_delay" doc:"random delay added to each start (RandomizedDelaySec); default 0"`
}

// Retention rules (see package retention).
type Retention struct {
	Timezone    string   `yaml:"timezone" doc:"IANA time zone periods are counted in; default UTC"`
	WeekStarts  string   `yaml:"week_starts" enum:"monday,tuesday,wednesday,thursday,friday,saturday,sunday" doc:"first day of a week for keep_weekly; default monday"`
	PeriodPick  string   `yaml:"period_pick" enum:"first,last" doc:"which snapshot of a period a period rule keeps; default last"`
	KeepLast    int      `yaml:"keep_last" doc:"keep the newest N snapshots"`
	KeepHourly  int      `yaml:"keep_hourly" doc:"keep one snapshot for each of the last N hours that have one"`
	KeepDaily   int      `yaml:"keep_daily" doc:"keep one snapshot for each of the last N days that have one"`
	KeepWeekly  int      `yaml:"keep_weekly" doc:"keep one snapshot for each of the last N weeks that have one"`
	KeepMonthly int      `yaml:"keep_monthly" doc:"keep one snapshot for each of the last N months that have one"`
	KeepYearly  int      `yaml:"keep_yearly" doc:"keep one snapshot for each of the last N years that have one"`
	KeepWithin  Duration `yaml:"keep_within" doc:"keep every snapshot within this duration of the newest"`
	KeepTags    []string `yaml:"keep_tags" doc:"keep every snapshot carrying one of these tags"`
	PruneEvery  Duration `yaml:"prune_every" doc:"prune (free space) at most this often; forget runs every time; default 7d"`
}

// Objectives are the recovery objectives drills measure against.
type Objectives struct {
	RPO Duration `yaml:"rpo" doc:"recovery point objective: maximum age of the restored data at drill start"`
	RTO Duration `yaml:"rto" doc:"recovery time objective: maximum drill time until all checks pass"`
}

// Drill configures restore drills.
type Drill struct {
	Schedule Schedule     `yaml:"schedule" doc:"when lifeboat drill runs"`
	MySQL    DrillServer  `yaml:"mysql" doc:"scratch server for mysql targets"`
	Postgres DrillServer  `yaml:"postgres" doc:"scratch server for postgres targets"`
	Checks   []DrillCheck `yaml:"checks" doc:"health checks run after the restore"`
	KeyFile  SecretRef    `yaml:"key_file" doc:"owner key (age identity file, or env:NAME) the drill reads content with when no --key-file is given: repositories.primary.key_file is the backup host's key, which cannot restore; native engine. Needed for systemd install of a drill timer (docs/drills.md)"`
	PITR     bool         `yaml:"pitr" doc:"targets with a log archive are restored to a random point between their newest base and the archive's end (postgres: a physical base recovered with the WAL archive; mysql: a snapshot plus the binlog archive replayed; docs/pitr.md, docs/drills.md), not to the snapshot"`
}

// DrillServer is where a drill restores a database: a scratch server
// lifeboat starts from ServerBinary, or an existing scratch server (DSN).
type DrillServer struct {
	ServerBinary string    `yaml:"server_binary" doc:"server binary lifeboat starts on a scratch data directory (mariadbd, mysqld, postgres)"`
	DSN          string    `yaml:"dsn" doc:"an existing scratch server (its data is replaced!), without password"`
	PasswordFile SecretRef `yaml:"password_file" doc:"password of the DSN user, file or env:NAME"`
	Password     SecretRef `yaml:"password" doc:"env:NAME only; stored in PasswordFile after validation"`
}

// Check kinds (DrillCheck.Kind).
const (
	CheckSQL     = "sql"
	CheckPath    = "path"
	CheckCommand = "command"
	CheckHTTP    = "http"
)

// DrillCheck is one health check; exactly one of SQL, Path, Command, HTTP
// is set.
type DrillCheck struct {
	Name     string   `yaml:"name" req:"1" doc:"unique check name"`
	Target   string   `yaml:"target" doc:"target the check runs against (required for sql and path checks)"`
	SQL      string   `yaml:"sql" doc:"query returning one value, run on the restored database"`
	Database string   `yaml:"database" doc:"sql checks on postgres targets: the database the query runs in; default the target's first"`
	Min      *float64 `yaml:"min" doc:"sql: the value must be >= min"`
	Max      *float64 `yaml:"max" doc:"sql: the value must be <= max"`
	Expect   string   `yaml:"expect" doc:"sql: the value must equal this; http: the body must contain this"`
	Path     string   `yaml:"path" doc:"path inside the restored target that must exist"`
	MinFiles int      `yaml:"min_files" doc:"path: at least this many files below it"`
	MinSize  Size     `yaml:"min_size" doc:"path: at least this many bytes below it (e.g. 10MiB)"`
	Command  []string `yaml:"command" doc:"command (argv) that must exit 0"`
	HTTP     string   `yaml:"http" doc:"URL that must answer 2xx"`
	Timeout  Duration `yaml:"timeout" doc:"time limit of the check; default 5m"`
}

// Kind returns which kind of check c is (CheckSQL, ...), "" if none.
func (c DrillCheck) Kind() string {
	switch {
	case c.SQL != "":
		return CheckSQL
	case c.Path != "":
		return CheckPath
	case len(c.Command) > 0:
		return CheckCommand
	case c.HTTP != "":
		return CheckHTTP
	}
	return ""
}

// Sanitize configures sanitized exports.
type Sanitize struct {
	Preset  string                `yaml:"preset" enum:"magento2,orocommerce" doc:"built-in rules; rules below extend or override them"`
	KeyFile SecretRef             `yaml:"key_file" doc:"pseudonymization key (file or env:NAME): same key, same fakes"`
	Rules   map[string]TableRules `yaml:"rules" doc:"table -> column -> rule, or table -> truncate or skip"`
	// RulesFile holds more rules in their own file (the form of rules);
	// `export --rules FILE` / `sanitize lint --rules FILE` replace it.
	RulesFile string         `yaml:"rules_file" doc:"a separate rules file (table -> column -> rule, as under rules); --rules replaces it"`
	Export    SanitizeExport `yaml:"export" doc:"export options"`
}

// SanitizeExport holds export options.
type SanitizeExport struct {
	Recipients []string `yaml:"recipients" doc:"age recipients (age1...) exports are encrypted to"`
}

// Table actions (TableRules.Action).
const (
	TableTruncate = "truncate"
	TableSkip     = "skip"
)

// TableRules is the sanitize rule for one table: a whole-table action
// (truncate: keep the table, no rows; skip: leave it out), or per-column
// rules plus an optional where filter (keep only matching rows).
type TableRules struct {
	Action  string            // "", TableTruncate or TableSkip
	Where   string            // SQL condition
	Columns map[string]string // column -> rule (see ParseColumnRule)
}

// Notify configures notifications.
type Notify struct {
	On      []string `yaml:"on" enum:"success,failure,partial,objective_violation,lag" doc:"events that notify; default [failure, partial, objective_violation, lag]"`
	Email   Email    `yaml:"email" doc:"SMTP email"`
	Webhook Webhook  `yaml:"webhook" doc:"JSON POST"`
	PingURL string   `yaml:"ping_url" doc:"healthchecks-style URL: GET on success, /fail on failure, /start at start"`
}

// Email is SMTP notification.
type Email struct {
	SMTP         string    `yaml:"smtp" doc:"SMTP server host:port"`
	From         string    `yaml:"from" doc:"sender address"`
	To           []string  `yaml:"to" doc:"recipient addresses"`
	Username     string    `yaml:"username" doc:"SMTP user; no authentication when empty"`
	PasswordFile SecretRef `yaml:"password_file" doc:"file holding the SMTP password, or env:NAME"`
	Password     SecretRef `yaml:"password" doc:"env:NAME only; stored in PasswordFile after validation"`
}

// Webhook is a JSON POST notification.
type Webhook struct {
	URL string `yaml:"url" doc:"http(s) URL receiving a JSON POST per event"`
}

// Metrics configures Prometheus metrics.
type Metrics struct {
	Textfile string `yaml:"textfile" doc:"node-exporter textfile (*.prom) written after each run"`
}
