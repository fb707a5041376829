package sanitize_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/engine/repo/repotest"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/engine/storage"
	"github.com/lifeboat-backup/lifeboat/internal/testutil/oroshop"
	"github.com/lifeboat-backup/lifeboat/policies"
	"github.com/lifeboat-backup/lifeboat/sanitize"
	"github.com/lifeboat-backup/lifeboat/targets/postgres"
	"github.com/lifeboat-backup/lifeboat/targets/postgres/postgrestest"
)

// TestSanitizedExportPostgres: a generated OroCommerce-like database is
// backed up with the postgres target (whole and split archives), exported
// with the orocommerce preset and loaded with psql into a fresh database:
// no original email, name or phone remains, row counts match but for
// truncated tables, joins keep their shape, and the export is the same
// byte for byte with the same key whatever the number of workers.
func TestSanitizedExportPostgres(t *testing.T) {
	ctx := context.Background()
	s := postgrestest.Start(t)
	s.CreateDatabase(t, "oro")
	s.MustPSQL(t, "oro", oroshop.SQL(400))
	b, err := storage.OpenWith(ctx, "mem://", storage.OpenOptions{Create: true})
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	tr := repotest.Init(t, b, repotest.SmallChunks, 0)
	r := tr.Open(t, tr.Owner)
	c, err := sanitize.Compile(policies.Sanitize{Preset: "orocommerce", Rules: map[string]policies.TableRules{
		"oro_payment_transaction":  {Where: "successful = 't' AND amount >= 100"},
		"public.oro_customer_user": {Columns: map[string]string{"email": "fake:email"}},
	}}, sanitize.Options{Key: testKey})
	require.NoError(t, err)
	o := sanitize.ExportOptions{PGBinDir: s.BinDir(), ChunkBytes: 8 << 10}

	var dumps [][]byte
	var last *snapshot.Snapshot
	for _, jobs := range []int{1, 2} { // one whole archive, then split archives
		src, err := postgres.New(postgres.Options{DSN: s.URL(), Password: s.Password, Databases: []string{"oro"}, Jobs: jobs, BinDir: s.BinDir()})
		require.NoError(t, err)
		res, err := engine.Backup(ctx, r, src, engine.BackupOptions{Workers: 2})
		require.NoError(t, err)
		last = res.Snapshot
		var buf bytes.Buffer
		o.Jobs = jobs
		st, err := sanitize.Export(ctx, r.SnapshotReader(res.Snapshot), c, o, &buf)
		require.NoError(t, err)
		require.Equal(t, int64(buf.Len()), st.Bytes)
		dumps = append(dumps, buf.Bytes())
		var again bytes.Buffer
		o.Jobs = 3
		_, err = sanitize.Export(ctx, r.SnapshotReader(res.Snapshot), c, o, &again)
		require.NoError(t, err)
		require.True(t, bytes.Equal(buf.Bytes(), again.Bytes()), "same key, same export")
	}
	dump := dumps[1]

	// No original personal value anywhere.
	vals := func(q string) []string {
		out := s.MustPSQL(t, "oro", q)
		require.NotEmpty(t, out, q)
		return strings.Split(out, "\n")
	}
	for _, q := range []string{
		"SELECT email FROM oro_customer_user UNION SELECT email_lowercase FROM oro_customer_user UNION SELECT email FROM oro_user",
		"SELECT DISTINCT first_name FROM oro_customer_user UNION SELECT last_name FROM oro_customer_user UNION SELECT last_name FROM oro_order_address UNION SELECT first_name FROM oro_user",
		"SELECT phone FROM oro_customer_address UNION SELECT phone FROM oro_order_address UNION SELECT phone FROM oro_user",
		"SELECT street FROM oro_customer_address UNION SELECT street FROM oro_order_address",
		"SELECT name FROM oro_customer UNION SELECT reference FROM oro_payment_transaction",
	} {
		for _, v := range vals(q) {
			require.False(t, containsWord(dump, v), "%q (from %s) is in the export", v, q)
		}
	}
	require.NotContains(t, string(dump), "4111111111111111")

	// Loads with psql into a fresh database.
	s.CreateDatabase(t, "oro_dev")
	path := filepath.Join(t.TempDir(), "oro.sql")
	require.NoError(t, os.WriteFile(path, dump, 0o644))
	s.MustPSQL(t, "oro_dev", `\i `+path)
	count := func(db, q string) string { return s.MustPSQL(t, db, q) }
	for _, tb := range oroshop.Tables() {
		want := count("oro", "SELECT count(*) FROM "+tb)
		switch tb {
		case "oro_email", "oro_email_address", "oro_audit":
			want = "0"
		case "oro_payment_transaction":
			want = count("oro", "SELECT count(*) FROM oro_payment_transaction WHERE successful AND amount >= 100")
			require.NotEqual(t, "0", want)
			require.NotEqual(t, count("oro", "SELECT count(*) FROM oro_payment_transaction"), want)
		}
		require.Equal(t, want, count("oro_dev", "SELECT count(*) FROM "+tb), tb)
	}
	// Joins keep their shape; sanitized columns look sanitized.
	join := "SELECT count(*) FROM oro_order o JOIN oro_customer_user u ON u.id = o.customer_user_id JOIN oro_order_address a ON a.order_id = o.id"
	require.Equal(t, count("oro", join), count("oro_dev", join))
	require.Equal(t, "0", count("oro_dev", "SELECT count(*) FROM oro_customer_user WHERE email NOT LIKE '%@example.%'"))
	require.Equal(t, count("oro", "SELECT count(DISTINCT email) FROM oro_customer_user"), count("oro_dev", "SELECT count(DISTINCT email) FROM oro_customer_user"))
	require.Equal(t, "0", count("oro_dev", "SELECT count(*) FROM oro_customer_user WHERE birthday IS NOT NULL OR password <> ''"))
	require.Equal(t, "0", count("oro_dev", "SELECT count(*) FROM oro_payment_transaction WHERE request IS NOT NULL OR length(reference) <> 64"))
	// Untouched tables and values with escapes are identical.
	digest := "SELECT md5(string_agg(t::text, '|' ORDER BY id)) FROM %s t"
	for _, tb := range []string{"oro_product"} {
		require.Equal(t, count("oro", strings.Replace(digest, "%s", tb, 1)), count("oro_dev", strings.Replace(digest, "%s", tb, 1)))
	}
	orders := "SELECT md5(string_agg(concat_ws(',', identifier, po_number, total_value, created_at), '|' ORDER BY id)) FROM oro_order"
	require.Equal(t, count("oro", orders), count("oro_dev", orders))
	require.Equal(t, "Bestellungen — commandes", count("oro_dev", "SELECT obj_description('oro_order'::regclass)"))

	// Lint: the preset covers the shop; without it, names and contents are found.
	fs, err := sanitize.Lint(ctx, r.SnapshotReader(last), c, sanitize.LintOptions{PGBinDir: s.BinDir()})
	require.NoError(t, err)
	require.Empty(t, fs)
	bare, err := sanitize.Compile(policies.Sanitize{}, sanitize.Options{Key: testKey})
	require.NoError(t, err)
	fs, err = sanitize.Lint(ctx, r.SnapshotReader(last), bare, sanitize.LintOptions{PGBinDir: s.BinDir()})
	require.NoError(t, err)
	var found []string
	for _, f := range fs {
		found = append(found, f.Table+"."+f.Column+":"+f.Kind+" ("+f.Reason+")")
	}
	for _, want := range []string{
		"public.oro_customer_user.email:email (column name)",
		"public.oro_order_address.phone:phone (column name)",
		"public.oro_customer_user.birthday:birth date (column name)",
		"public.oro_audit.object_name:email (content: 300 of 300 sampled values)",
		"public.oro_user.password:secret (column name)",
	} {
		require.Contains(t, found, want)
	}
	require.NotContains(t, strings.Join(found, " "), "oro_user.enabled")

	// Bad rules: errors before a byte is written.
	bad := func(s policies.Sanitize, want string) {
		t.Helper()
		s.Preset = "orocommerce"
		c, err := sanitize.Compile(s, sanitize.Options{Key: testKey})
		require.NoError(t, err)
		var buf bytes.Buffer
		_, err = sanitize.Export(ctx, r.SnapshotReader(last), c, o, &buf)
		require.ErrorIs(t, err, sanitize.ErrRules)
		require.ErrorContains(t, err, want)
		require.Zero(t, buf.Len())
	}
	rules := func(table string, cols map[string]string) policies.Sanitize {
		return policies.Sanitize{Rules: map[string]policies.TableRules{table: {Columns: cols}}}
	}
	bad(rules("oro_nope", map[string]string{"x": "null"}), `table "oro_nope" is not in database "oro"`)
	bad(rules("oro_user", map[string]string{"nope": "null"}), `no column "nope"`)
	bad(rules("oro_user", map[string]string{"enabled": "fake:email"}), "fake:email on a pg:boolean column")
	bad(rules("oro_user", map[string]string{"username": "null"}), "NOT NULL column")
	bad(policies.Sanitize{Rules: map[string]policies.TableRules{"oro_audit": {Action: policies.TableSkip}}}, "skip is not supported")
}

// TestSanitizedExportPostgresPartitions: pg_dump writes each partition of
// a partitioned table as a table of its own (CREATE TABLE, then ALTER
// TABLE ONLY parent ATTACH PARTITION child) with its own COPY block: the
// rules written for the partitioned table apply to every partition,
// nested and default ones included, in exports and in lint; rules naming
// a partition are an error.
func TestSanitizedExportPostgresPartitions(t *testing.T) {
	ctx := context.Background()
	s := postgrestest.Start(t)
	s.CreateDatabase(t, "parts")
	s.MustPSQL(t, "parts", `
CREATE TABLE contact (id integer NOT NULL, region text NOT NULL, email text NOT NULL, info text, note text) PARTITION BY LIST (region);
CREATE TABLE contact_eu PARTITION OF contact FOR VALUES IN ('de', 'fr') PARTITION BY RANGE (id);
CREATE TABLE contact_eu_low PARTITION OF contact_eu FOR VALUES FROM (0) TO (50);
CREATE TABLE contact_eu_high PARTITION OF contact_eu FOR VALUES FROM (50) TO (MAXVALUE);
CREATE TABLE contact_us PARTITION OF contact FOR VALUES IN ('us');
CREATE TABLE contact_other PARTITION OF contact DEFAULT;
INSERT INTO contact SELECT i, (ARRAY['de','fr','us','jp'])[i % 4 + 1], 'person' || i || '@mail.test', 'alt' || i || '@mail.test', 'private note ' || i FROM generate_series(1, 120) i;
`)
	b, err := storage.OpenWith(ctx, "mem://", storage.OpenOptions{Create: true})
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	tr := repotest.Init(t, b, repotest.SmallChunks, 0)
	r := tr.Open(t, tr.Owner)
	compile := func(rules map[string]policies.TableRules) *sanitize.Config {
		c, err := sanitize.Compile(policies.Sanitize{Rules: rules}, sanitize.Options{Key: testKey})
		require.NoError(t, err)
		return c
	}
	c := compile(map[string]policies.TableRules{"contact": {Columns: map[string]string{"email": "fake:email", "info": "null", "note": "null"}}})
	o := sanitize.ExportOptions{PGBinDir: s.BinDir(), Jobs: 2}
	for _, jobs := range []int{1, 2} { // one whole archive, then split archives
		src, err := postgres.New(postgres.Options{DSN: s.URL(), Password: s.Password, Databases: []string{"parts"}, Jobs: jobs, BinDir: s.BinDir()})
		require.NoError(t, err)
		res, err := engine.Backup(ctx, r, src, engine.BackupOptions{Workers: 2})
		require.NoError(t, err)
		sn := res.Snapshot

		var buf bytes.Buffer
		st, err := sanitize.Export(ctx, r.SnapshotReader(sn), c, o, &buf)
		require.NoError(t, err)
		dump := buf.String()
		require.Contains(t, dump, "COPY public.contact_eu_low ", "the partitions' rows are in the export")
		require.NotContains(t, dump, "@mail.test")
		require.NotContains(t, dump, "private note")
		var tables []string
		for _, ts := range st.Tables {
			tables = append(tables, ts.Table)
		}
		require.Subset(t, tables, []string{"public.contact_eu_low", "public.contact_eu_high", "public.contact_us", "public.contact_other"})

		db := fmt.Sprintf("parts_dev%d", jobs)
		s.CreateDatabase(t, db)
		path := filepath.Join(t.TempDir(), "parts.sql")
		require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
		s.MustPSQL(t, db, `\i `+path)
		require.Equal(t, "120", s.MustPSQL(t, db, "SELECT count(*) FROM contact"))
		require.Equal(t, "30", s.MustPSQL(t, db, "SELECT count(*) FROM contact_other"))
		require.Equal(t, "0", s.MustPSQL(t, db, "SELECT count(*) FROM contact WHERE email LIKE '%@mail.test' OR note IS NOT NULL OR info IS NOT NULL OR email NOT LIKE '%@example.%'"))
		require.Equal(t, "120", s.MustPSQL(t, db, "SELECT count(DISTINCT email) FROM contact"))

		// Lint: the parent's rules cover the partitions; without rules the
		// name is found once (on the partitioned table) and the contents
		// in the partitions' rows.
		fs, err := sanitize.Lint(ctx, r.SnapshotReader(sn), c, sanitize.LintOptions{PGBinDir: s.BinDir()})
		require.NoError(t, err)
		require.Empty(t, fs)
		fs, err = sanitize.Lint(ctx, r.SnapshotReader(sn), compile(nil), sanitize.LintOptions{PGBinDir: s.BinDir()})
		require.NoError(t, err)
		var found []string
		for _, f := range fs {
			found = append(found, f.Table+"."+f.Column+":"+f.Reason)
		}
		require.Contains(t, found, "public.contact.email:column name")
		require.NotContains(t, found, "public.contact_us.email:column name")
		require.NotContains(t, strings.Join(found, " "), "public.contact.info")
		require.Contains(t, strings.Join(found, " "), "public.contact_us.info:content")

		// Rules for a partition, or not fitting a partition: errors
		// before a byte is written.
		for _, tc := range []struct {
			rules map[string]policies.TableRules
			want  string
		}{
			{map[string]policies.TableRules{"contact_us": {Columns: map[string]string{"email": "fake:email"}}}, `table "contact_us" is a partition of public.contact`},
			{map[string]policies.TableRules{"public.contact_eu_low": {Action: policies.TableTruncate}}, `table "public.contact_eu_low" is a partition of public.contact`},
			{map[string]policies.TableRules{"contact": {Columns: map[string]string{"id": "fake:email"}}}, "fake:email on a int column"},
		} {
			var buf bytes.Buffer
			_, err := sanitize.Export(ctx, r.SnapshotReader(sn), compile(tc.rules), o, &buf)
			require.ErrorIs(t, err, sanitize.ErrRules)
			require.ErrorContains(t, err, tc.want)
			require.Zero(t, buf.Len())
			_, err = sanitize.Lint(ctx, r.SnapshotReader(sn), compile(tc.rules), sanitize.LintOptions{PGBinDir: s.BinDir()})
			require.ErrorIs(t, err, sanitize.ErrRules)
		}
		// truncate on the partitioned table empties every partition.
		buf.Reset()
		_, err = sanitize.Export(ctx, r.SnapshotReader(sn), compile(map[string]policies.TableRules{"contact": {Action: policies.TableTruncate}}), o, &buf)
		require.NoError(t, err)
		require.NotContains(t, buf.String(), "COPY public.contact")
	}
}

// TestSanitizedExportPostgresInherits: a table inheriting from another
// (INHERITS) has rows of its own in a COPY block of its own, with the
// parent's columns: the parent's rules cover them, the child's own rules
// add to them, and the export loads back.
func TestSanitizedExportPostgresInherits(t *testing.T) {
	ctx := context.Background()
	s := postgrestest.Start(t)
	s.CreateDatabase(t, "inh")
	s.MustPSQL(t, "inh", `
CREATE TABLE person (id integer PRIMARY KEY, email text NOT NULL, note text);
CREATE TABLE customer (phone text) INHERITS (person);
CREATE TABLE "VIP customer" () INHERITS (customer);
INSERT INTO person SELECT i, 'p' || i || '@mail.test', 'private note ' || i FROM generate_series(1, 10) i;
INSERT INTO customer SELECT i, 'c' || i || '@mail.test', 'private note ' || i, '+49 555 ' || i FROM generate_series(11, 30) i;
INSERT INTO "VIP customer" SELECT i, 'v' || i || '@mail.test', 'private note ' || i, '+49 777 ' || i FROM generate_series(31, 35) i;
`)
	b, err := storage.OpenWith(ctx, "mem://", storage.OpenOptions{Create: true})
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	tr := repotest.Init(t, b, repotest.SmallChunks, 0)
	r := tr.Open(t, tr.Owner)
	src, err := postgres.New(postgres.Options{DSN: s.URL(), Password: s.Password, Databases: []string{"inh"}, Jobs: 1, BinDir: s.BinDir()})
	require.NoError(t, err)
	res, err := engine.Backup(ctx, r, src, engine.BackupOptions{Workers: 2})
	require.NoError(t, err)
	c, err := sanitize.Compile(policies.Sanitize{Rules: map[string]policies.TableRules{
		"person":   {Columns: map[string]string{"email": "fake:email", "note": "null"}},
		"customer": {Columns: map[string]string{"phone": "fake:phone"}},
	}}, sanitize.Options{Key: testKey})
	require.NoError(t, err)
	var buf bytes.Buffer
	_, err = sanitize.Export(ctx, r.SnapshotReader(res.Snapshot), c, sanitize.ExportOptions{PGBinDir: s.BinDir()}, &buf)
	require.NoError(t, err)
	dump := buf.String()
	require.Contains(t, dump, `COPY public."VIP customer" `)
	require.NotContains(t, dump, "@mail.test")
	require.NotContains(t, dump, "private note")
	require.NotContains(t, dump, "+49 555")
	require.NotContains(t, dump, "+49 777")
	// Lint sees the same rules: the parent's cover the children's columns.
	fs, err := sanitize.Lint(ctx, r.SnapshotReader(res.Snapshot), c, sanitize.LintOptions{PGBinDir: s.BinDir()})
	require.NoError(t, err)
	for _, f := range fs {
		require.NotContains(t, []string{"email", "note", "phone"}, f.Column, "%s.%s: %s", f.Table, f.Column, f.Reason)
	}

	s.CreateDatabase(t, "inh_dev")
	path := filepath.Join(t.TempDir(), "inh.sql")
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
	s.MustPSQL(t, "inh_dev", `\i `+path)
	require.Equal(t, "35", s.MustPSQL(t, "inh_dev", "SELECT count(*) FROM person"), "parent and children rows")
	require.Equal(t, "0", s.MustPSQL(t, "inh_dev", "SELECT count(*) FROM person WHERE email LIKE '%@mail.test' OR note IS NOT NULL"))
	require.Equal(t, "25", s.MustPSQL(t, "inh_dev", "SELECT count(*) FROM customer WHERE phone IS NOT NULL AND phone NOT LIKE '+49 %'"))
}
