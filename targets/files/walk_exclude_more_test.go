package files

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// --iexclude, --exclude-if-present and --exclude-caches in the walker.
func TestWalkExcludeMore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "r")
	mkTree(t, dir, "Photo.JPG", "photo.jpg", "Docs/Readme.TXT", "keep.txt",
		"build/.nobackup", "build/out.o", "src/main.go",
		"cache/CACHEDIR.TAG", "cache/blob", "fakecache/CACHEDIR.TAG", "fakecache/blob")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "cache", "CACHEDIR.TAG"),
		[]byte("Signature: 8a477f597d28d172789f06886806bc55\n# a cache\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "fakecache", "CACHEDIR.TAG"), []byte("not a signature\n"), 0o644))
	require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "src", "CACHEDIR.TAG"), 0o644)) // never blocks the walk
	all := paths(walkAll(t, []string{dir}, Options{}))
	without := func(drop ...string) []string {
		var out []string
	next:
		for _, p := range all {
			for _, d := range drop {
				if p == d || strings.HasPrefix(p, d+"/") {
					continue next
				}
			}
			out = append(out, p)
		}
		return out
	}
	for _, tt := range []struct {
		name string
		opts Options
		want []string
	}{
		{"exclude is case-sensitive", Options{Excludes: []string{"*.jpg"}}, without("r/photo.jpg")},
		{"iexclude ignores case", Options{IExcludes: []string{"*.jpg"}}, without("r/photo.jpg", "r/Photo.JPG")},
		{"iexclude pattern case too", Options{IExcludes: []string{"/R/DOCS/*.txt"}}, without("r/Docs/Readme.TXT")},
		// as restic: the directory and its tag file stay, nothing else in it
		{"if present", Options{ExcludeIfPresent: []string{".nobackup"}}, without("r/build/out.o")},
		{"caches with the signature only", Options{ExcludeCaches: true}, without("r/cache/blob")},
		{"both", Options{ExcludeCaches: true, ExcludeIfPresent: []string{".nobackup"}, IExcludes: []string{"PHOTO.*"}},
			without("r/cache/blob", "r/build/out.o", "r/Photo.JPG", "r/photo.jpg")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, paths(walkAll(t, []string{dir}, tt.opts)))
		})
	}
	assert.ErrorContains(t, CheckExcludes(nil, []string{"[x"}), `"[x"`)
}
