package main

import (
	"errors"
	"math/rand/v2"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeboat-backup/lifeboat/internal/torture"
)

// errViolations makes the process exit with 1 after the summary.
var errViolations = errors.New("torture: violations found")

func newTortureCommand() *cobra.Command {
	var (
		cfg  torture.Config
		seed int64
		ops  string
	)
	cmd := &cobra.Command{
		Use:   "torture",
		Short: "Run a seeded random workload (backups, forgets, prunes, kills, stalls, faults) against one repository and check that every saved snapshot restores",
		Long: `Run a seeded random workload against one repository through the lifeboat binary
(built from this tree unless --binary), then recover and restore every live
snapshot. Violations are printed with the seed; the same --seed replays the same
schedule. See docs/torture.md. Exit 1 when a violation was found.
Operations and modifiers for --ops: ` + strings.Join(torture.Kinds(), ", ") + `.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if seed < 0 {
				seed = rand.Int64N(1 << 40)
			}
			cfg.Seed = uint64(seed)
			if ops != "" {
				cfg.Ops = strings.Split(ops, ",")
			}
			cfg.Out = cmd.OutOrStdout()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			sum, err := torture.Run(ctx, cfg)
			if err != nil {
				return err
			}
			if len(sum.Violations) > 0 {
				return errViolations
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.DurationVar(&cfg.Duration, "duration", 10*time.Minute, "how long operations are scheduled (recovery and verification follow)")
	f.StringVar(&cfg.Store, "store", "file", "repository store: file (on a tmpfs when it can be mounted) or minio")
	f.Int64Var(&seed, "seed", -1, "schedule seed (negative: a random one, printed)")
	f.StringVar(&cfg.Dir, "dir", "", "work directory (default: a temporary one, kept when violations were found)")
	f.StringVar(&cfg.Binary, "binary", "", "lifeboat binary (default: go build ./cmd/lifeboat)")
	f.StringVar(&ops, "ops", "", "comma-separated operations and modifiers to schedule (default: all)")
	f.DurationVar(&cfg.Lease, "lease", 10*time.Second, "LIFEBOAT_TEST_LOCK_LEASE for every command; stalls last up to 1.5 leases (0: the real lease, stalls up to 8s)")
	f.IntVar(&cfg.Concurrency, "concurrency", 3, "lifeboat commands running at once")
	f.Int64Var(&cfg.TmpfsSize, "tmpfs-size", 256<<20, "bytes of the tmpfs that holds a file:// repository (disk-full fills what is free)")
	f.BoolVarP(&cfg.Verbose, "verbose", "v", false, "print the operation log as it is written")
	return cmd
}
