package restore

import (
	"context"
	"errors"
	"fmt"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/targets/mysql"
)

// ErrNoUsers: the snapshot was taken without the user accounts.
var ErrNoUsers = errors.New("has no user accounts (back up with --users, policy key users: true)")

// mysqlUsers runs a mysql snapshot's user accounts and grants (node, its
// mysql.UsersFile, written by backups with mysql.Options.Users) on the
// server of opts.DSN, statement by statement, in one session with an
// empty sql_mode (as they were dumped). The statements are idempotent:
// an account that exists is kept as it is (CREATE USER IF NOT EXISTS),
// its grants are added. MySQL runs it last (MySQLOptions.Users): grants
// on tables need the tables. It returns the number of accounts and
// roles. Errors name the statement's account, never a password hash.
func mysqlUsers(ctx context.Context, s snapshot.Reader, node *snapshot.Node, opts MySQLOptions) (int, error) {
	sn := s.Info()
	text, err := snapshot.ReadNode(ctx, s, node)
	if err != nil {
		return 0, err
	}
	stmts, err := mysql.ParseUsers(text, opts.Rename)
	if err != nil {
		return 0, fmt.Errorf("snapshot %s: %w", sn.ID.Short(), err)
	}
	cfg, err := mysql.ParseDSN(opts.DSN, opts.Password)
	if err != nil {
		return 0, err
	}
	db, err := mysql.Open(ctx, cfg, 1)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	c, err := db.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, "SET SESSION sql_mode = ''"); err != nil {
		return 0, fmt.Errorf("user accounts: %w", err)
	}
	n := 0
	for i, st := range stmts {
		if _, err := c.ExecContext(ctx, st.SQL); err != nil {
			return n, fmt.Errorf("restore %s statement %d of %d: %w", mysql.UsersFile, i+1, len(stmts), st.Error(err))
		}
		if st.Create {
			n++
		}
	}
	return n, nil
}
