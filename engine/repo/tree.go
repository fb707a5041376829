package repo

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/lifeboat-backup/lifeboat/engine/repo/chunker"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

// The metadata stream of a snapshot is its Nodes as JSON lines, in
// targets.ComparePaths order, cut by the content-defined chunker into tree
// blobs. Unchanged stretches of the stream give the same blobs, so an
// unchanged tree costs nothing to store again (borg's item stream idea).

// treeChunks are the chunk bounds of metadata streams: smaller than data
// chunks, so a change to a few entries stores little new metadata. They
// affect only deduplication, not the format: readers just concatenate.
var treeChunks = chunker.Params{Min: 64 << 10, Avg: 256 << 10, Max: 2 << 20}

// TreeWriter writes a metadata stream into tree blobs.
type TreeWriter struct {
	pw   *io.PipeWriter
	bw   *bufio.Writer
	enc  *json.Encoder
	done chan struct{}
	ids  []snapshot.ID
	err  error
}

// NewTreeWriter starts a metadata stream. Call Close to get its blob IDs.
func (r *Repository) NewTreeWriter(ctx context.Context) *TreeWriter {
	pr, pw := io.Pipe()
	tw := &TreeWriter{pw: pw, bw: bufio.NewWriterSize(pw, 256<<10), done: make(chan struct{})}
	tw.enc = json.NewEncoder(tw.bw)
	tw.enc.SetEscapeHTML(false)
	go func() {
		defer close(tw.done)
		c := chunker.New(pr, r.gear, treeChunks)
		for {
			data, err := c.Next()
			if err == io.EOF {
				return
			}
			if err == nil {
				id := r.BlobID(data)
				_, err = r.SaveBlob(ctx, TreeBlob, id, data)
				tw.ids = append(tw.ids, id)
			}
			if err != nil {
				tw.err = err
				pr.CloseWithError(err)
				return
			}
		}
	}()
	return tw
}

// Add appends a node; nodes must come in targets.ComparePaths order.
func (tw *TreeWriter) Add(n *snapshot.Node) error {
	if err := tw.enc.Encode(nodeToJSON(n)); err != nil {
		return fmt.Errorf("metadata stream: %w", err)
	}
	return nil
}

// Close ends the stream and returns the tree blob IDs.
func (tw *TreeWriter) Close() ([]snapshot.ID, error) {
	err := tw.bw.Flush()
	tw.pw.CloseWithError(err)
	<-tw.done
	if tw.err != nil {
		return nil, tw.err
	}
	if err != nil {
		return nil, err
	}
	return tw.ids, nil
}

// Abort stops the stream after a failure elsewhere.
func (tw *TreeWriter) Abort(err error) {
	tw.pw.CloseWithError(err)
	<-tw.done
}

// TreeReader iterates over the Nodes of a snapshot, loading one tree blob at
// a time.
type TreeReader struct {
	rd   *bufio.Reader
	line int
	sn   *snapshot.Snapshot
}

// NewTreeReader reads the metadata stream of sn.
func (r *Repository) NewTreeReader(ctx context.Context, sn *snapshot.Snapshot) *TreeReader {
	return &TreeReader{rd: bufio.NewReaderSize(r.NewBlobReader(ctx, sn.Tree), 256<<10), sn: sn}
}

// Next returns the next node, or io.EOF at the end.
func (t *TreeReader) Next() (*snapshot.Node, error) {
	line, err := t.rd.ReadBytes('\n')
	if err != nil {
		if errors.Is(err, io.EOF) && len(line) == 0 {
			return nil, io.EOF
		}
		if errors.Is(err, io.EOF) {
			err = errors.New("last line is incomplete")
		}
		return nil, fmt.Errorf("snapshot %s metadata: %w", t.sn.ID.Short(), err)
	}
	t.line++
	var j nodeJSON
	if err := json.Unmarshal(line, &j); err != nil {
		return nil, fmt.Errorf("snapshot %s metadata line %d: %w", t.sn.ID.Short(), t.line, err)
	}
	return j.node(), nil
}

// EachNode calls fn for every node of sn's metadata stream, in order, and
// stops at the first error (fn's, or the stream's).
func (r *Repository) EachNode(ctx context.Context, sn *snapshot.Snapshot, fn func(*snapshot.Node) error) error {
	tr := r.NewTreeReader(ctx, sn)
	for {
		n, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(n); err != nil {
			return err
		}
	}
}
