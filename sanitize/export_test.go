package sanitize_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/engine/repo/repotest"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/engine/storage"
	"github.com/lifeboat-backup/lifeboat/internal/testutil/shop"
	"github.com/lifeboat-backup/lifeboat/policies"
	"github.com/lifeboat-backup/lifeboat/sanitize"
	"github.com/lifeboat-backup/lifeboat/targets/mysql"
	"github.com/lifeboat-backup/lifeboat/targets/mysql/mysqltest"
)

func TestMain(m *testing.M) { os.Exit(mysqltest.Main(m)) }

var testKey = []byte("0123456789abcdef0123456789abcdef")

func exec1(t *testing.T, db *sql.DB, qs ...string) {
	t.Helper()
	for _, q := range qs {
		_, err := db.Exec(q)
		require.NoError(t, err, q)
	}
}

func count(t *testing.T, db *sql.DB, q string) int64 {
	t.Helper()
	var n int64
	require.NoError(t, db.QueryRow(q).Scan(&n), q)
	return n
}

func strs(t *testing.T, db *sql.DB, q string) []string {
	t.Helper()
	rows, err := db.Query(q)
	require.NoError(t, err, q)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s sql.NullString
		require.NoError(t, rows.Scan(&s))
		if s.Valid && s.String != "" {
			out = append(out, s.String)
		}
	}
	require.NoError(t, rows.Err())
	return out
}

// sqlQuoted is how the export writes a string value.
func sqlQuoted(s string) string {
	r := strings.NewReplacer("\\", "\\\\", "'", "\\'", "\n", "\\n", "\r", "\\r", "\x00", "\\0", "\x1a", "\\Z")
	return "'" + r.Replace(s) + "'"
}

// containsWord: s occurs in b not as part of a longer word or address.
func containsWord(b []byte, s string) bool {
	part := func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._+-@", c) >= 0
	}
	for off := 0; ; {
		i := bytes.Index(b[off:], []byte(s))
		if i < 0 {
			return false
		}
		i += off
		if (i == 0 || !part(b[i-1])) && (i+len(s) == len(b) || !part(b[i+len(s)])) {
			return true
		}
		off = i + 1
	}
}

type fixture struct {
	srv *mysqltest.Server
	db  *sql.DB
	s   snapshot.Reader
}

const (
	srcDB = "san_src"
	// where conditions, checked against the server's own evaluation.
	quoteWhere = "is_active = 1 AND (customer_id IS NOT NULL OR customer_email LIKE 'q1%') AND grand_total >= 10.5"
	newsWhere  = "change_status_at > NOW() - INTERVAL 1000 DAY OR subscriber_status IN (1, 3) OR subscriber_name IS NULL"
)

func setup(t *testing.T) *fixture {
	t.Helper()
	srv := mysqltest.Shared(t)
	db := srv.DB(t, "")
	_, err := shop.Generate(context.Background(), db, shop.Options{Database: srcDB, Rows: 300, Replace: true})
	require.NoError(t, err)
	// A table no preset knows: contact details in innocent-looking columns.
	exec1(t, db, "CREATE TABLE "+srcDB+".crm_contact (id INT NOT NULL PRIMARY KEY, info VARCHAR(64) NULL, note VARCHAR(40) NULL, qty INT NOT NULL DEFAULT 0)")
	for i := 1; i <= 40; i++ {
		exec1(t, db, fmt.Sprintf("INSERT INTO %s.crm_contact VALUES (%d, 'crm%d@corp.example.net', 'n%d', %d)", srcDB, i, i, i, i))
	}
	b, err := storage.OpenWith(context.Background(), "mem://", storage.OpenOptions{Create: true})
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	tr := repotest.Init(t, b, repotest.SmallChunks, 0)
	r := tr.Open(t, tr.Owner)
	src, err := mysql.New(mysql.Options{DSN: srv.DSN(), Password: srv.Password, Databases: []string{srcDB}, Jobs: 2})
	require.NoError(t, err)
	res, err := engine.Backup(context.Background(), r, src, engine.BackupOptions{Workers: 4})
	require.NoError(t, err)
	return &fixture{srv: srv, db: db, s: r.SnapshotReader(res.Snapshot)}
}

func policy() policies.Sanitize {
	return policies.Sanitize{
		Preset: "magento2",
		Rules: map[string]policies.TableRules{
			"crm_contact":                  {Columns: map[string]string{"info": "fake:email", "note": "fixed:{first_name} {last_name}"}},
			srcDB + ".quote":               {Where: quoteWhere},
			"newsletter_subscriber":        {Where: newsWhere},
			"catalog_product_entity":       {Columns: map[string]string{"sku": "keep"}},
			srcDB + ".sales_order_payment": {Columns: map[string]string{"last_trans_id": "mask:keep_last=3"}},
		},
	}
}

func export(t *testing.T, f *fixture, c *sanitize.Config, o sanitize.ExportOptions) []byte {
	t.Helper()
	var buf bytes.Buffer
	_, err := sanitize.Export(context.Background(), f.s, c, o, &buf)
	require.NoError(t, err)
	return buf.Bytes()
}

func TestSanitizedExportShop(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	c, err := sanitize.Compile(policy(), sanitize.Options{Key: testKey})
	require.NoError(t, err)

	// Lint: the preset and rules cover the shop; the unruled crm table is found.
	bare := policy()
	delete(bare.Rules, "crm_contact")
	cb, err := sanitize.Compile(bare, sanitize.Options{Key: testKey})
	require.NoError(t, err)
	findings, err := sanitize.Lint(ctx, f.s, cb, sanitize.LintOptions{})
	require.NoError(t, err)
	var got []string
	for _, fi := range findings {
		got = append(got, fi.Table+"."+fi.Column+":"+fi.Kind)
	}
	require.Equal(t, []string{"crm_contact.info:email"}, got, "%v", findings)
	findings, err = sanitize.Lint(ctx, f.s, c, sanitize.LintOptions{})
	require.NoError(t, err)
	require.Empty(t, findings)

	// Export through a .sql.zst file, renamed to a fresh database.
	const dst = "san_dst"
	exec1(t, f.db, "DROP DATABASE IF EXISTS "+dst)
	dir := t.TempDir()
	path := filepath.Join(dir, "dump.sql.zst")
	out, err := sanitize.CreateOutput(path, nil)
	require.NoError(t, err)
	st, err := sanitize.Export(ctx, f.s, c, sanitize.ExportOptions{Rename: map[string]string{srcDB: dst}, BatchBytes: 64 << 10}, out)
	require.NoError(t, err)
	require.NoError(t, out.Commit())
	require.Greater(t, st.Bytes, int64(100<<10))
	comp, err := os.ReadFile(path)
	require.NoError(t, err)
	zr, err := zstd.NewReader(bytes.NewReader(comp))
	require.NoError(t, err)
	dump, err := io.ReadAll(zr)
	zr.Close()
	require.NoError(t, err)
	require.Equal(t, st.Bytes, int64(len(dump)))
	plain := filepath.Join(dir, "dump.sql")
	require.NoError(t, os.WriteFile(plain, dump, 0o600))

	// Load with the mariadb client.
	client, err := exec.LookPath("mariadb")
	if err != nil {
		client, err = exec.LookPath("mysql")
	}
	require.NoError(t, err, "mariadb client")
	in, err := os.Open(plain)
	require.NoError(t, err)
	defer in.Close()
	cmd := exec.Command(client, "--no-defaults", "-h", "127.0.0.1", "-P", fmt.Sprint(f.srv.Port), "-u", f.srv.User, "--password="+f.srv.Password)
	cmd.Stdin = in
	msg, err := cmd.CombinedOutput()
	if len(msg) > 3000 {
		msg = msg[len(msg)-3000:]
	}
	require.NoError(t, err, "load the dump: %s", msg)

	// No original personal value anywhere in the dump.
	pii := map[string][]string{
		"emails":  strs(t, f.db, "SELECT email FROM san_src.customer_entity UNION SELECT customer_email FROM san_src.sales_order UNION SELECT customer_email FROM san_src.quote UNION SELECT subscriber_email FROM san_src.newsletter_subscriber UNION SELECT email FROM san_src.sales_order_address UNION SELECT info FROM san_src.crm_contact"),
		"phones":  strs(t, f.db, "SELECT telephone FROM san_src.customer_address_entity UNION SELECT telephone FROM san_src.sales_order_address"),
		"streets": strs(t, f.db, "SELECT street FROM san_src.customer_address_entity UNION SELECT street FROM san_src.sales_order_address"),
		"ips":     strs(t, f.db, "SELECT remote_ip FROM san_src.quote UNION SELECT remote_ip FROM san_src.sales_order"),
	}
	for kind, vals := range pii {
		require.NotEmpty(t, vals, kind)
		for _, v := range vals {
			require.False(t, containsWord(dump, v), "%s: %q in the export", kind, v)
			require.False(t, bytes.Contains(dump, []byte(sqlQuoted(v))), "%s: %q in the export", kind, v)
		}
	}
	// Names also appear in product names ("T-Shirt Anna"): no name column
	// value may appear as a value of its own.
	names := strs(t, f.db, "SELECT firstname FROM san_src.customer_entity UNION SELECT lastname FROM san_src.customer_entity "+
		"UNION SELECT firstname FROM san_src.customer_address_entity UNION SELECT lastname FROM san_src.sales_order_address "+
		"UNION SELECT customer_firstname FROM san_src.sales_order UNION SELECT customer_lastname FROM san_src.sales_order "+
		"UNION SELECT subscriber_name FROM san_src.newsletter_subscriber UNION SELECT city FROM san_src.customer_address_entity")
	require.NotEmpty(t, names)
	odd := strings.Join(strs(t, f.db, "SELECT CONCAT_WS('|', s, CONVERT(l USING utf8mb4)) FROM san_src.`odd table ``name`"), "|")
	for _, v := range names {
		if strings.Contains(odd, v) {
			continue // the hard-cases table has name-like test strings
		}
		require.False(t, bytes.Contains(dump, []byte(sqlQuoted(v))), "name %q in the export", v)
	}

	// Row counts: equal but for the truncated and filtered tables.
	for _, tb := range append(shop.Tables(), "crm_contact") {
		q := "SELECT COUNT(*) FROM %s." + mysql.QuoteName(tb)
		want := count(t, f.db, fmt.Sprintf(q, srcDB))
		switch tb {
		case "report_event":
			want = 0
		case "quote":
			want = count(t, f.db, "SELECT COUNT(*) FROM san_src.quote WHERE "+quoteWhere)
			require.Greater(t, want, int64(0))
			require.Less(t, want, count(t, f.db, "SELECT COUNT(*) FROM san_src.quote"))
		case "newsletter_subscriber":
			want = count(t, f.db, "SELECT COUNT(*) FROM san_src.newsletter_subscriber WHERE "+newsWhere)
			require.Greater(t, want, int64(0))
		}
		require.Equal(t, want, count(t, f.db, fmt.Sprintf(q, dst)), tb)
	}

	// Joins keep their shape: same email, same fake, in every table.
	join := "SELECT COUNT(*) FROM %[1]s.customer_entity c JOIN %[1]s.sales_order o ON o.customer_email = c.email"
	require.Equal(t, count(t, f.db, fmt.Sprintf(join, srcDB)), count(t, f.db, fmt.Sprintf(join, dst)))
	require.Greater(t, count(t, f.db, fmt.Sprintf(join, dst)), int64(0))
	shape := "SELECT COUNT(*) FROM %[1]s.customer_entity c JOIN %[1]s.sales_order o ON o.customer_id = c.entity_id JOIN %[1]s.sales_order_address a ON a.parent_id = o.entity_id"
	require.Equal(t, count(t, f.db, fmt.Sprintf(shape, srcDB)), count(t, f.db, fmt.Sprintf(shape, dst)))
	distinct := "SELECT COUNT(DISTINCT email) FROM %s.customer_entity"
	require.Equal(t, count(t, f.db, fmt.Sprintf(distinct, srcDB)), count(t, f.db, fmt.Sprintf(distinct, dst)))
	require.Zero(t, count(t, f.db, "SELECT COUNT(*) FROM san_dst.customer_entity WHERE email NOT LIKE '%@example.%'"))
	require.Zero(t, count(t, f.db, "SELECT COUNT(*) FROM san_dst.customer_entity WHERE dob IS NOT NULL"))
	require.Zero(t, count(t, f.db, "SELECT COUNT(*) FROM san_dst.sales_order_payment WHERE last_trans_id NOT LIKE 'xxxx%'"))
	// Untouched tables load back identical.
	sum := "CHECKSUM TABLE %s.catalog_product_entity"
	var a, b sql.NullInt64
	require.NoError(t, f.db.QueryRow(fmt.Sprintf(sum, srcDB)).Scan(new(string), &a))
	require.NoError(t, f.db.QueryRow(fmt.Sprintf(sum, dst)).Scan(new(string), &b))
	require.Equal(t, a, b)
	// Views, routines, triggers came along.
	require.Equal(t, int64(2), count(t, f.db, "SELECT COUNT(*) FROM information_schema.VIEWS WHERE TABLE_SCHEMA = 'san_dst'"))
	require.Equal(t, int64(1), count(t, f.db, "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'san_dst'"))
	require.Equal(t, count(t, f.db, "SELECT COUNT(*) FROM san_dst.customer_orders"), count(t, f.db, "SELECT COUNT(*) FROM san_src.customer_orders"))

	// The same key gives byte-identical exports; another key other fakes.
	o := sanitize.ExportOptions{Rename: map[string]string{srcDB: dst}, BatchBytes: 64 << 10}
	require.Equal(t, dump, export(t, f, c, o))
	c2, err := sanitize.Compile(policy(), sanitize.Options{Key: bytes.Repeat([]byte("k"), 32)})
	require.NoError(t, err)
	require.NotEqual(t, dump, export(t, f, c2, o))
	// Small chunks: the output does not depend on the number of workers.
	small := sanitize.ExportOptions{BatchBytes: 8 << 10, ChunkBytes: 16 << 10, Jobs: 1}
	one := export(t, f, c, small)
	small.Jobs = 4
	require.Equal(t, one, export(t, f, c, small))

	// age-encrypted to a recipient.
	id, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	rs, err := sanitize.ParseRecipients([]string{id.Recipient().String()})
	require.NoError(t, err)
	encPath := filepath.Join(dir, "dump.sql.gz.age")
	out, err = sanitize.CreateOutput(encPath, rs)
	require.NoError(t, err)
	_, err = sanitize.Export(ctx, f.s, c, sanitize.ExportOptions{Databases: []string{srcDB}}, out)
	require.NoError(t, err)
	require.NoError(t, out.Commit())
	ef, err := os.Open(encPath)
	require.NoError(t, err)
	defer ef.Close()
	dr, err := age.Decrypt(ef, id)
	require.NoError(t, err)
	head := make([]byte, 2)
	_, err = io.ReadFull(dr, head)
	require.NoError(t, err)
	require.Equal(t, []byte{0x1f, 0x8b}, head) // gzip inside

	// Bad input: clear errors, nothing written.
	bad := func(s policies.Sanitize, want string) {
		t.Helper()
		c, err := sanitize.Compile(s, sanitize.Options{Key: testKey})
		if err == nil {
			var buf bytes.Buffer
			_, err = sanitize.Export(ctx, f.s, c, sanitize.ExportOptions{}, &buf)
			require.Zero(t, buf.Len(), "nothing written before the rules are checked")
		}
		require.Error(t, err)
		require.True(t, errors.Is(err, sanitize.ErrRules), "%v", err)
		require.Contains(t, err.Error(), want)
	}
	rules := func(table string, cols map[string]string) policies.Sanitize {
		return policies.Sanitize{Preset: "magento2", Rules: map[string]policies.TableRules{table: {Columns: cols}}}
	}
	bad(rules("no_such_table", map[string]string{"x": "null"}), `table "no_such_table" is not in the snapshot`)
	bad(rules("customer_entity", map[string]string{"no_col": "null"}), `no column "no_col"`)
	bad(rules("customer_entity", map[string]string{"email": "fake:nope"}), `unknown fake kind "nope"`)
	bad(rules("customer_entity", map[string]string{"group_id": "fake:email"}), "fake:email on a smallint column")
	bad(rules("customer_entity", map[string]string{"created_at": "null"}), "NOT NULL column")
	bad(rules("customer_entity", map[string]string{"email": "fixed:{nope}"}), "unknown fake kind {nope}")
	bad(policies.Sanitize{Rules: map[string]policies.TableRules{"quote": {Where: "created_at > SLEEP(1)"}}}, "not supported")
	bad(policies.Sanitize{Rules: map[string]policies.TableRules{"quote": {Where: "nope = 1"}}}, `no column "nope"`)
	_, err = sanitize.Compile(policies.Sanitize{KeyFile: policies.SecretRef(filepath.Join(dir, "missing.key"))}, sanitize.Options{})
	require.ErrorIs(t, err, sanitize.ErrRules)
	require.Contains(t, err.Error(), "missing.key")
	_, err = sanitize.Compile(policies.Sanitize{}, sanitize.Options{})
	require.ErrorContains(t, err, "key_file is required")
	_, err = sanitize.CreateOutput(filepath.Join(dir, "dump.txt"), nil)
	require.ErrorContains(t, err, ".sql.zst")
	_, err = sanitize.CreateOutput(path, nil)
	require.ErrorContains(t, err, "exists")
	out, err = sanitize.CreateOutput(filepath.Join(dir, "aborted.sql"), nil)
	require.NoError(t, err)
	out.Abort()
	left, _ := filepath.Glob(filepath.Join(dir, "*aborted*"))
	require.Empty(t, left)
}

// countingSnapshot counts the content readers open, and fails the reads
// of the node named fail after 100 bytes.
type countingSnapshot struct {
	snapshot.Reader
	fail string
	open atomic.Int64
}

var errBroken = errors.New("broken read")

func (s *countingSnapshot) Open(ctx context.Context, n *snapshot.Node) io.ReadCloser {
	s.open.Add(1)
	var rc io.ReadCloser = &closeOnce{ReadCloser: s.Reader.Open(ctx, n), open: &s.open}
	if n.Path == s.fail {
		rc = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(io.LimitReader(rc, 100), iotest.ErrReader(errBroken)), rc}
	}
	return rc
}

type closeOnce struct {
	io.ReadCloser
	open   *atomic.Int64
	closed bool
}

func (c *closeOnce) Close() error {
	if !c.closed {
		c.closed = true
		c.open.Add(-1)
	}
	return c.ReadCloser.Close()
}

// TestSnapshotReaders: export and lint close every content reader they
// open (another engine holds a process per reader), also when a read
// fails, and a failed read is an error naming the table, not a shorter
// sample or dump.
func TestSnapshotReaders(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	c, err := sanitize.Compile(policy(), sanitize.Options{Key: testKey})
	require.NoError(t, err)
	s := &countingSnapshot{Reader: f.s}
	var want bytes.Buffer
	_, err = sanitize.Export(ctx, s, c, sanitize.ExportOptions{}, &want)
	require.NoError(t, err)
	require.Zero(t, s.open.Load(), "readers left open by Export")
	_, err = sanitize.Lint(ctx, s, c, sanitize.LintOptions{SampleRows: 5})
	require.NoError(t, err)
	require.Zero(t, s.open.Load(), "readers left open by Lint")

	s.fail = srcDB + "/crm_contact" + mysql.SuffixData
	_, err = sanitize.Export(ctx, s, c, sanitize.ExportOptions{}, io.Discard)
	require.ErrorIs(t, err, errBroken)
	require.ErrorContains(t, err, "export `san_src`.`crm_contact`")
	require.Zero(t, s.open.Load(), "readers left open by a failed Export")
	_, err = sanitize.Lint(ctx, s, c, sanitize.LintOptions{})
	require.ErrorIs(t, err, errBroken)
	require.ErrorContains(t, err, "san_src/crm_contact")
	require.Zero(t, s.open.Load(), "readers left open by a failed Lint")
}
