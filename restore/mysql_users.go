package restore

import (
	"context"
	"errors"
	"fmt"

	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/targets/mysql"
)

// ErrNoUsers: the snapshot was taken without the user accounts.
var ErrNoUsers = errors.New("has no user accounts (back up with --users, policy key users: true)")

// MySQLHasUsers fails (ErrNoUsers) unless s is a mysql snapshot with
// user accounts: callers check before restoring the databases.
func MySQLHasUsers(ctx context.Context, s Snapshot) error {
	_, err := usersNode(ctx, s)
	return err
}

func usersNode(ctx context.Context, s Snapshot) (*repo.Node, error) {
	sn := s.Info()
	if sn.Kind != "mysql" {
		return nil, fmt.Errorf("snapshot %s is a %s snapshot, not mysql", sn.ID.Short(), sn.Kind)
	}
	l, err := mysql.ReadLayoutAll(s.Tree(ctx).Next)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", sn.ID.Short(), err)
	}
	if l.Users == nil {
		return nil, fmt.Errorf("snapshot %s %w", sn.ID.Short(), ErrNoUsers)
	}
	return l.Users, nil
}

// MySQLUsers runs a mysql snapshot's user accounts and grants
// (mysql.UsersFile, written by backups with mysql.Options.Users) on the
// server of opts.DSN, statement by statement, in one session with an
// empty sql_mode (as they were dumped). The statements are idempotent:
// an account that exists is kept as it is (CREATE USER IF NOT EXISTS),
// its grants are added. Run it after MySQL: grants on tables need the
// tables. It returns the number of accounts and roles. Errors name the
// statement's account, never a password hash.
func MySQLUsers(ctx context.Context, s Snapshot, opts MySQLOptions) (int, error) {
	node, err := usersNode(ctx, s)
	if err != nil {
		return 0, err
	}
	return mysqlUsers(ctx, s, node, opts)
}

// mysqlUsers runs the statements of node, the snapshot's UsersFile.
func mysqlUsers(ctx context.Context, s Snapshot, node *repo.Node, opts MySQLOptions) (int, error) {
	sn := s.Info()
	text, err := ReadNode(ctx, s, node)
	if err != nil {
		return 0, err
	}
	stmts, err := mysql.ParseUsers(text)
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
