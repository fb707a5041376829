package gentree

import (
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// mutateBase is the base of the mtimes Mutate gives to what it changes:
// later than every generated mtime, so that (size, mtime) change
// detection sees the change.
var mutateBase = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

type mfile struct {
	rel  string
	size int64
}

// Mutate changes about fraction of the content bytes of the tree at dir in
// place, deterministically for the same tree and seed: it overwrites a few
// ranges of large files (sizes unchanged; sparse files are left alone),
// overwrites or appends to some small files, adds a few new files and
// deletes a few small ones. Changed files and directories get new
// deterministic mtimes. It returns the number of bytes written.
func Mutate(dir string, fraction float64, seed int64) (int64, error) {
	if fraction < 0 || fraction > 1 {
		return 0, fmt.Errorf("gentree: fraction %v out of [0,1]", fraction)
	}
	var large, small []mfile
	var dirs []string
	var total int64
	seen := map[[2]uint64]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			if rel != "." {
				var st unix.Stat_t
				if err := unix.Lstat(p, &st); err == nil && st.Mode&0o200 != 0 {
					dirs = append(dirs, rel)
				}
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		k := [2]uint64{uint64(st.Dev), st.Ino}
		if seen[k] || st.Mode&0o200 == 0 {
			return nil
		}
		seen[k] = true
		if st.Blocks*512 < st.Size {
			return nil // sparse: keep its holes
		}
		total += st.Size
		f := mfile{rel, st.Size}
		if st.Size >= 1<<20 {
			large = append(large, f)
		} else if st.Size > 0 {
			small = append(small, f)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("gentree: %w", err)
	}
	target := int64(fraction * float64(total))
	if target == 0 {
		return 0, nil
	}
	r := rand.New(rand.NewPCG(uint64(seed), 0x6d7574617465))
	src := rand.NewPCG(uint64(seed), 0x72616e646f6d)
	buf := make([]byte, 1<<20)
	var changed int64
	touched := map[string]bool{}
	touchedDirs := map[string]bool{}

	overwrite := func(rel string, off int64, n int) error {
		f, err := os.OpenFile(filepath.Join(dir, rel), os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		fillRandom(src, buf[:n])
		_, err = f.WriteAt(buf[:n], off)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		changed += int64(n)
		touched[rel] = true
		return err
	}

	// 70%: ranges of large files.
	largeBudget := target * 7 / 10
	if len(small) == 0 {
		largeBudget = target
	}
	for len(large) > 0 && changed < largeBudget {
		f := large[r.IntN(len(large))]
		n := int64(64<<10 + r.IntN(960<<10))
		n = min(n, largeBudget-changed, f.size)
		off := r.Int64N(f.size-n+1) &^ 4095
		if err := overwrite(f.rel, off, int(n)); err != nil {
			return changed, fmt.Errorf("gentree: %w", err)
		}
	}
	// 20%: small files, overwritten in place or appended to.
	smallBudget := changed + (target-changed)*2/3
	if len(large) == 0 && len(small) > 0 {
		smallBudget = target * 9 / 10
	}
	for i := 0; len(small) > 0 && changed < smallBudget; i++ {
		f := small[r.IntN(len(small))]
		n := min(int64(1+r.IntN(4096)), smallBudget-changed)
		if i%2 == 0 || n > f.size {
			if err := overwrite(f.rel, f.size, int(n)); err != nil { // append
				return changed, fmt.Errorf("gentree: %w", err)
			}
		} else if err := overwrite(f.rel, r.Int64N(f.size-n+1), int(n)); err != nil {
			return changed, fmt.Errorf("gentree: %w", err)
		}
	}
	// The rest: new files.
	for i := 0; changed < target && len(dirs) > 0; i++ {
		d := dirs[r.IntN(len(dirs))]
		rel := filepath.Join(d, fmt.Sprintf("new-%d-%03d.bin", seed, i))
		n := min(int64(1024+r.IntN(64<<10)), target-changed)
		if err := os.WriteFile(filepath.Join(dir, rel), nil, 0o644); err != nil {
			return changed, fmt.Errorf("gentree: %w", err)
		}
		if err := overwrite(rel, 0, int(n)); err != nil {
			return changed, fmt.Errorf("gentree: %w", err)
		}
		touchedDirs[d] = true
	}
	// Delete a few small files (not counted in the result).
	nDel := min(max(1, int(fraction*float64(len(small)))), 20, len(small)/2)
	for range nDel {
		i := r.IntN(len(small))
		f := small[i]
		small = slices.Delete(small, i, i+1)
		if touched[f.rel] {
			continue
		}
		if err := os.Remove(filepath.Join(dir, f.rel)); err != nil {
			return changed, fmt.Errorf("gentree: %w", err)
		}
		touchedDirs[filepath.Dir(f.rel)] = true
	}
	// Deterministic mtimes: files first, then directories.
	for _, m := range []map[string]bool{touched, touchedDirs} {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, rel := range keys {
			if err := setMtime(filepath.Join(dir, rel), mtimeFor(seed, rel, mutateBase)); err != nil {
				return changed, fmt.Errorf("gentree: %w", err)
			}
		}
	}
	return changed, nil
}
