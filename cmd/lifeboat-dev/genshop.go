package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeboat-backup/lifeboat/internal/testutil/shop"
	"github.com/lifeboat-backup/lifeboat/targets/mysql"
)

func newGenShopCommand() *cobra.Command {
	var (
		dsn, passwordFile string
		opts              shop.Options
	)
	cmd := &cobra.Command{
		Use:   "gen-shop --dsn DSN [--rows N] [--database shop]",
		Short: "Generate a deterministic Magento-like shop database in a MySQL/MariaDB server",
		Long: `Generate a deterministic Magento-like shop database: --rows customers and orders,
3 items and 2 addresses per order, 1.5 addresses per customer, products, quotes,
newsletter subscribers (latin1), an event log, a table of hard cases, a view, a
function, a procedure, a trigger and an event. The same --seed and --rows give the
same rows. The password comes from --password-file or $MYSQL_PWD.

  lifeboat-dev gen-shop --dsn 'lifeboat@tcp(127.0.0.1:3306)/' --rows 100000`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dsn == "" {
				return usageError{fmt.Errorf("--dsn is required")}
			}
			password := os.Getenv("MYSQL_PWD")
			if passwordFile != "" {
				b, err := os.ReadFile(passwordFile)
				if err != nil {
					return err
				}
				password = string(trimNewline(b))
			}
			cfg, err := mysql.ParseDSN(dsn, password)
			if err != nil {
				return usageError{err}
			}
			ctx := context.Background()
			db, err := mysql.Open(ctx, cfg, max(opts.Jobs, 4)+1)
			if err != nil {
				return err
			}
			defer db.Close()
			start := time.Now()
			st, err := shop.Generate(ctx, db, opts)
			if err != nil {
				return err
			}
			names := make([]string, 0, len(st.Tables))
			for n := range st.Tables {
				names = append(names, n)
			}
			sort.Strings(names)
			out := cmd.OutOrStdout()
			for _, n := range names {
				fmt.Fprintf(out, "%s %d\n", n, st.Tables[n])
			}
			fmt.Fprintf(out, "rows %d\nseconds %.1f\n", st.Rows, time.Since(start).Seconds())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dsn, "dsn", "", "server: mysql://user@host:port/ or user@tcp(host:port)/")
	f.StringVar(&passwordFile, "password-file", "", "file holding the password (default: $MYSQL_PWD)")
	f.StringVar(&opts.Database, "database", "shop", "database to create")
	f.BoolVar(&opts.Replace, "replace", false, "drop the database first if it exists")
	f.IntVar(&opts.Rows, "rows", 1000, "customers and orders")
	f.Uint64Var(&opts.Seed, "seed", 1, "random seed")
	f.IntVar(&opts.Jobs, "jobs", 4, "tables loaded in parallel")
	return cmd
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
