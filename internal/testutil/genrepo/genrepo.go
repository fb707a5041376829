// Package genrepo writes large synthetic repositories for scale tests and
// benchmarks (lifeboat-dev gen-repo): real packs and index files of small
// blobs, written through engine/repo (sealed, in the pack and index
// formats every reader checks), and snapshots whose files point at them.
// It streams: memory stays bounded whatever the number of blobs.
package genrepo

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/engine/storage"
)

// Options say what to generate.
type Options struct {
	Blobs        int64  // data blobs in all (> 0)
	BlobSize     int    // bytes per blob (default 64; at least 16)
	BlobsPerFile int    // blobs per file of the snapshots (default 1000)
	Snapshots    int    // snapshots the files are spread over (default 4)
	Host         string // host of the snapshots (default "gen-host")
	Target       string // target name and top directory (default "gen")
	Seed         uint64 // varies the content, so two repositories share no blob
	PackSize     int    // pack size (default 1 MiB: 16384 blobs of 64 bytes, as packs of small files hold thousands)
}

// Result describes what was written.
type Result struct {
	RepoID    snapshot.ID
	Snapshots []snapshot.ID
	Files     int64
	Blobs     int64
	Packs     int64
	Bytes     int64 // blob plaintext
	OwnerKey  string
	HostKey   string
	Duration  time.Duration
}

func (o *Options) defaults() error {
	if o.Blobs <= 0 {
		return errors.New("--blobs must be positive")
	}
	if o.BlobSize == 0 {
		o.BlobSize = 64
	}
	if o.BlobSize < 16 {
		return fmt.Errorf("blob size %d: at least 16 bytes", o.BlobSize)
	}
	if o.BlobsPerFile <= 0 {
		o.BlobsPerFile = 1000
	}
	if o.Snapshots <= 0 {
		o.Snapshots = 4
	}
	if o.PackSize == 0 {
		o.PackSize = 1 << 20
	}
	if o.Host == "" {
		o.Host = "gen-host"
	}
	if o.Target == "" {
		o.Target = "gen"
	}
	return nil
}

// FilePath is the path in the snapshots of file i (0-based, over all
// snapshots): what `restore --include` names.
func FilePath(target string, i int64) string { return fmt.Sprintf("%s/f%010d", target, i) }

// Generate initializes a repository at url (which must not hold one) and
// fills it; the owner and host identity files go to keyDir/owner.key and
// keyDir/host.key (which must not exist). progress (may be nil) gets a
// line per snapshot.
func Generate(ctx context.Context, url, keyDir string, o Options, progress io.Writer) (*Result, error) {
	start := time.Now()
	if err := o.defaults(); err != nil {
		return nil, err
	}
	if progress == nil {
		progress = io.Discard
	}
	res := &Result{OwnerKey: filepath.Join(keyDir, "owner.key"), HostKey: filepath.Join(keyDir, "host.key")}
	for _, p := range []string{res.OwnerKey, res.HostKey} {
		if _, err := os.Stat(p); err == nil {
			return nil, fmt.Errorf("%s exists; gen-repo does not overwrite key files", p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	if err := os.MkdirAll(keyDir, 0o700); err != nil {
		return nil, err
	}
	b, err := storage.OpenWith(ctx, url, storage.OpenOptions{Create: true})
	if err != nil {
		return nil, err
	}
	defer b.Close()
	ini, err := repo.Init(ctx, b, repo.InitOptions{PackSize: o.PackSize})
	if err != nil {
		return nil, fmt.Errorf("init %s: %w", storage.Redact(url), err)
	}
	res.RepoID = ini.RepoID
	for _, k := range []struct{ path, role, secret string }{{res.OwnerKey, "owner", ini.OwnerIdentity}, {res.HostKey, "host", ini.HostIdentity}} {
		text := fmt.Sprintf("# lifeboat %s identity for repository %s\n%s\n%s\n", k.role, ini.RepoID, ini.Pin.Comment(), k.secret)
		if err := os.WriteFile(k.path, []byte(text), 0o600); err != nil {
			return nil, fmt.Errorf("write %s key: %w", k.role, err)
		}
	}
	creds, err := repo.ReadKeyFile(res.OwnerKey)
	if err != nil {
		return nil, err
	}
	r, err := repo.OpenUnindexed(ctx, b, creds)
	if err != nil {
		return nil, err
	}
	lk, err := r.Lock(ctx, false, "gen-repo", 0)
	if err != nil {
		return nil, err
	}
	defer lk.Unlock(context.WithoutCancel(ctx))
	r.SkipIndexTracking()

	files := (o.Blobs + int64(o.BlobsPerFile) - 1) / int64(o.BlobsPerFile)
	perSnap := (files + int64(o.Snapshots) - 1) / int64(o.Snapshots)
	g := &gen{r: r, o: o}
	for s, first := 0, int64(0); first < files; s, first = s+1, first+perSnap {
		last := min(first+perSnap, files)
		id, err := g.snapshot(ctx, s, first, last)
		if err != nil {
			return nil, err
		}
		res.Snapshots = append(res.Snapshots, id)
		fmt.Fprintf(progress, "snapshot %s: files %d..%d, %d blobs so far\n", id.Short(), first, last-1, g.blobs)
	}
	st := r.Stats()
	res.Files, res.Blobs, res.Packs, res.Bytes = files, g.blobs, st.Packs, st.BlobBytes
	res.Duration = time.Since(start)
	return res, nil
}

type gen struct {
	r     *repo.Repository
	o     Options
	blobs int64
}

// content is blob n's plaintext: its number and the seed, then a keyed
// pattern, so every blob is distinct and incompressible enough.
func (g *gen) content(n int64, buf []byte) []byte {
	buf = buf[:g.o.BlobSize]
	binary.LittleEndian.PutUint64(buf, uint64(n))
	binary.LittleEndian.PutUint64(buf[8:], g.o.Seed)
	x := uint64(n)*0x9E3779B97F4A7C15 ^ g.o.Seed
	for i := 16; i < len(buf); i += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], x)
		copy(buf[i:], w[:])
	}
	return buf
}

// fileBlobs is how many blobs file i has (the last one takes the rest).
func (g *gen) fileBlobs(i int64) int64 {
	return min(int64(g.o.BlobsPerFile), g.o.Blobs-i*int64(g.o.BlobsPerFile))
}

// snapshot writes files [first, last) and a snapshot of them. Files are
// filled in parallel, a window at a time, and enter the metadata stream in
// order.
func (g *gen) snapshot(ctx context.Context, s int, first, last int64) (snapshot.ID, error) {
	mtime := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tw := g.r.NewTreeWriter(ctx)
	root := &snapshot.Node{Entry: snapshot.Entry{Path: g.o.Target, Type: snapshot.TypeDir, Mode: 0o755, ModTime: mtime}}
	if err := tw.Add(root); err != nil {
		tw.Abort(err)
		return snapshot.ID{}, err
	}
	workers := runtime.GOMAXPROCS(0)
	window := int64(4 * workers)
	var stats snapshot.Stats
	for w := first; w < last; w += window {
		nodes := make([]*snapshot.Node, min(window, last-w))
		eg, ectx := errgroup.WithContext(ctx)
		eg.SetLimit(workers)
		for k := range nodes {
			i := w + int64(k)
			eg.Go(func() error {
				n, err := g.file(ectx, i, mtime)
				nodes[k] = n
				return err
			})
		}
		if err := eg.Wait(); err != nil {
			tw.Abort(err)
			return snapshot.ID{}, err
		}
		for _, n := range nodes {
			if err := tw.Add(n); err != nil {
				tw.Abort(err)
				return snapshot.ID{}, err
			}
			stats.Files++
			stats.BytesIn += n.Size
			stats.Blobs += int64(len(n.Content))
			g.blobs += int64(len(n.Content))
		}
	}
	stats.Dirs = 1
	tree, err := tw.Close()
	if err != nil {
		return snapshot.ID{}, err
	}
	if err := g.r.Flush(ctx); err != nil {
		return snapshot.ID{}, err
	}
	stats.BytesAdded = stats.BytesIn
	t := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(s) * time.Hour)
	sn := &snapshot.Snapshot{Time: t, Host: g.o.Host, Target: g.o.Target, Kind: "files", Paths: []string{"/" + g.o.Target},
		Tree: tree, RecoveryPoint: snapshot.RecoveryPoint{Time: t}, Stats: stats, Program: "lifeboat-dev gen-repo"}
	return g.r.SaveSnapshot(ctx, sn)
}

// file stores file i's blobs and returns its node.
func (g *gen) file(ctx context.Context, i int64, mtime time.Time) (*snapshot.Node, error) {
	nb := g.fileBlobs(i)
	n := &snapshot.Node{Entry: snapshot.Entry{Path: FilePath(g.o.Target, i), Type: snapshot.TypeFile, Mode: 0o644,
		ModTime: mtime, Size: nb * int64(g.o.BlobSize)}, Content: make([]snapshot.ID, nb)}
	buf := make([]byte, g.o.BlobSize)
	base := i * int64(g.o.BlobsPerFile)
	for k := range nb {
		data := g.content(base+k, buf)
		id := g.r.BlobID(data)
		if _, err := g.r.SaveBlob(ctx, repo.DataBlob, id, data); err != nil {
			return nil, fmt.Errorf("file %s: %w", n.Path, err)
		}
		n.Content[k] = id
	}
	return n, nil
}
