package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/targets/postgres/postgrestest"
)

func TestCLIPostgresBackupRestore(t *testing.T) {
	s := postgrestest.Start(t)
	path := os.Getenv("PATH") // cli.run's t.Setenv keeps a case's PATH
	s.CreateDatabase(t, "oro")
	s.MustPSQL(t, "oro", `CREATE TABLE oro_customer (id serial PRIMARY KEY, name text, attrs jsonb, logo bytea);
		INSERT INTO oro_customer (name, attrs, logo) SELECT 'Kunde ' || g || ' ü', jsonb_build_object('n', g), '\x00ff'::bytea FROM generate_series(1, 500) g`)
	digest := `SELECT count(*) || ' ' || md5(string_agg(t::text, '|' ORDER BY t::text)) FROM oro_customer t`
	want := s.MustPSQL(t, "oro", digest)

	c, dir, _ := setup(t)
	pwFile := filepath.Join(dir, "pg.pw")
	require.NoError(t, os.WriteFile(pwFile, []byte(s.Password+"\n"), 0o600))
	c.env["PGPASSWORD"] = ""
	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "host.key")
	out := c.ok("backup", "postgres", "--dsn", s.URL(), "--password-file", pwFile, "--databases", "oro", "--globals")
	require.Contains(t, out, "WAL LSN")
	require.NotContains(t, out, s.Password)

	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "owner.key")
	out = c.ok("restore", "latest", "--to", s.URL(), "--password-file", pwFile, "--rename", "oro=oro_copy", "--jobs", "2")
	require.Contains(t, out, "oro_copy")
	require.Equal(t, want, s.MustPSQL(t, "oro_copy", digest))

	// The destination exists now: clear error, non-zero exit.
	_, errs, code := c.run("restore", "latest", "--to", s.URL()+"oro_copy", "--password-file", pwFile)
	require.NotEqual(t, 0, code)
	require.Contains(t, errs, "already exists")

	// Bad input: wrong password, absent database, no pg_dump.
	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "host.key")
	bad := filepath.Join(dir, "bad.pw")
	require.NoError(t, os.WriteFile(bad, []byte("nope-not-it\n"), 0o600))
	for _, tc := range []struct {
		args []string
		env  map[string]string
		msg  string
	}{
		{[]string{"--password-file", bad}, nil, "password authentication failed"},
		{[]string{"--password-file", pwFile, "--databases", "absent"}, nil, `database "absent" does not exist`},
		{[]string{"--password-file", pwFile}, map[string]string{"PATH": t.TempDir()}, "not found on PATH"},
	} {
		_, errs, code := c.with(t, tc.env).run(append([]string{"backup", "postgres", "--dsn", s.URL()}, tc.args...)...)
		require.NotEqual(t, 0, code, tc.args)
		require.Contains(t, errs, tc.msg)
		require.NotContains(t, errs, "nope-not-it")
	}
	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "owner.key")
	out = c.ok("snapshots")
	require.Contains(t, out, "1 snapshots")

	// Restore bad input: wrong password, a database the snapshot lacks,
	// no pg_restore on PATH.
	for _, tc := range []struct {
		args []string
		env  map[string]string
		msg  string
	}{
		{[]string{"--password-file", bad, "--rename", "oro=x1"}, nil, "password authentication failed"},
		{[]string{"--password-file", pwFile, "--databases", "absent"}, nil, `holds no database "absent"`},
		{[]string{"--password-file", pwFile, "--rename", "oro=x2"}, map[string]string{"PATH": t.TempDir()}, "not found on PATH"},
	} {
		cc := &cli{t: t, env: map[string]string{"PATH": path}}
		for k, v := range c.env {
			cc.env[k] = v
		}
		for k, v := range tc.env {
			cc.env[k] = v
		}
		_, errs, code := cc.run(append([]string{"restore", "latest", "--to", s.URL()}, tc.args...)...)
		require.Equal(t, 1, code, tc.args)
		require.Contains(t, errs, tc.msg)
		require.NotContains(t, errs, "nope-not-it")
	}

	// --jobs 2: split archives, restored in parallel.
	c.env["PATH"] = path
	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "host.key")
	c.ok("backup", "postgres", "--dsn", s.URL(), "--password-file", pwFile, "--databases", "oro", "--jobs", "2")
	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "owner.key")
	c.ok("restore", "latest", "--to", s.URL(), "--password-file", pwFile, "--rename", "oro=oro_split", "--jobs", "2")
	require.Equal(t, want, s.MustPSQL(t, "oro_split", digest))
}
