package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lifeboat-backup/lifeboat/internal/testutil/genrepo"
)

func newGenRepoCommand() *cobra.Command {
	var (
		url, keyDir string
		opts        genrepo.Options
	)
	cmd := &cobra.Command{
		Use:   "gen-repo --blobs N --repo URL --key-out DIR",
		Short: "Generate a repository of N small blobs, with snapshots that reference them",
		Long: `Generate a native repository at URL (initialized here) holding N small data
blobs in real packs and index files, written through the repository package,
and snapshots (--snapshots, of target --target, host --host) whose files
(--blobs-per-file blobs each, paths TARGET/f0000000000...) reference all of
them. The owner and host identities go to DIR/owner.key and DIR/host.key.
Memory stays bounded; made for scale tests and benchmarks (docs/benchmarks.md).`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if url == "" || keyDir == "" || opts.Blobs <= 0 {
				return usageError{fmt.Errorf("give --blobs N (> 0), --repo URL and --key-out DIR")}
			}
			res, err := genrepo.Generate(cmd.Context(), url, keyDir, opts, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "repository %s\nsnapshots %d\nfiles %d\nblobs %d\npacks %d\nbytes %d\nowner_key %s\nhost_key %s\nseconds %.1f\n",
				res.RepoID, len(res.Snapshots), res.Files, res.Blobs, res.Packs, res.Bytes, res.OwnerKey, res.HostKey, res.Duration.Seconds())
			return nil
		},
	}
	f := cmd.Flags()
	f.Int64Var(&opts.Blobs, "blobs", 0, "number of data blobs")
	f.StringVar(&url, "repo", "", "repository URL (file:///path, s3://...)")
	f.StringVar(&keyDir, "key-out", "", "directory for owner.key and host.key")
	f.IntVar(&opts.BlobSize, "blob-size", 64, "bytes per blob")
	f.IntVar(&opts.BlobsPerFile, "blobs-per-file", 1000, "blobs per file in the snapshots")
	f.IntVar(&opts.Snapshots, "snapshots", 4, "snapshots the files are spread over")
	f.StringVar(&opts.Host, "host", "gen-host", "host of the snapshots")
	f.StringVar(&opts.Target, "target", "gen", "target name (and top directory of the snapshots)")
	f.Uint64Var(&opts.Seed, "seed", 1, "content seed")
	f.IntVar(&opts.PackSize, "pack-size", 1<<20, "pack size in bytes (the repository's)")
	return cmd
}
