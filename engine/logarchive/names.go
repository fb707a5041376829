package logarchive

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"gocloud.dev/blob"

	"github.com/lifeboat-backup/lifeboat/engine/storage"
)

// Names lists the names of a stream's segments that start with prefix,
// sorted, from the bucket listing alone (no header is read: one request
// per thousand names, so restore_command can look for a segment's
// versions without reading the whole stream).
func (a *Archive) Names(ctx context.Context, target, stream, prefix string) ([]string, error) {
	if err := validRef(target, stream, "x"+prefix); err != nil {
		return nil, err
	}
	dir := Prefix + target + "/" + stream + "/"
	var out []string
	it := a.b.List(&blob.ListOptions{Prefix: dir + prefix, Delimiter: "/"})
	for {
		o, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", dir+prefix, storage.Wrap(err))
		}
		if o.IsDir || storage.IsTempKey(o.Key) {
			continue
		}
		out = append(out, strings.TrimPrefix(o.Key, dir))
	}
	slices.Sort(out)
	return out, nil
}
