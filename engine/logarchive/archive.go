package logarchive

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
	"golang.org/x/sync/errgroup"

	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/engine/storage"
)

// Prefix is where segments live in a repository.
const Prefix = "archive/"

// magic starts every segment object; the header length follows as a
// big-endian uint32, then the sealed header, then the sealed content.
const magic = "LBSEG1\n"

// maxHeader bounds a header (a GTID set can be long, not megabytes).
const maxHeader = 4 << 20

// headRead is how much of an object List reads to get its header.
const headRead = 64 << 10

// Errors callers branch on.
var (
	// ErrNotFound: no segment under that name (wal fetch maps it to its
	// "not found" exit code).
	ErrNotFound = errors.New("segment not found")
	// ErrConflict: a segment of that name is archived with other content.
	ErrConflict = errors.New("segment archived with different content")
)

// Segment is a segment's header: what List returns without the owner key.
type Segment struct {
	Target string `json:"target"`
	Stream string `json:"stream"` // e.g. "wal", or a binlog source
	Name   string `json:"name"`   // sorts in log order within the stream

	Size int64       `json:"size"` // content bytes
	Hash snapshot.ID `json:"hash"` // keyed like blob IDs (repo.BlobID)

	FirstTime time.Time         `json:"first_time,omitzero"` // first event in the segment
	LastTime  time.Time         `json:"last_time,omitzero"`  // last event
	Start     string            `json:"start,omitempty"`     // position where it starts (LSN, file:pos)
	End       string            `json:"end,omitempty"`       // position where it ends (the next one starts here)
	GTID      string            `json:"gtid,omitempty"`      // GTID set after the last event
	Timeline  uint32            `json:"timeline,omitempty"`  // PostgreSQL timeline
	Details   map[string]string `json:"details,omitempty"`

	// Archived is when Put stored it (the writer's clock).
	Archived time.Time `json:"archived"`

	// Stored is the object's size in the storage; set by List and Fetch,
	// not part of the header.
	Stored int64 `json:"-"`
}

// Key returns the object key of the segment.
func (s Segment) Key() string { return Key(s.Target, s.Stream, s.Name) }

// Ref names the segment in messages: target/stream/name.
func (s Segment) Ref() string { return s.Target + "/" + s.Stream + "/" + s.Name }

// Key returns the object key of a segment.
func Key(target, stream, name string) string {
	return Prefix + target + "/" + stream + "/" + name
}

// Archive is a repository's segment store. Put works with the host key;
// Fetch needs the owner key.
type Archive struct {
	r *repo.Repository
	b *blob.Bucket
}

// New returns the archive of an open repository (no lock needed: segments
// are write-once objects outside packs and index, which prune never touches).
func New(r *repo.Repository) *Archive { return &Archive{r: r, b: r.Bucket()} }

// validName refuses names that would not map to exactly one object key.
func validName(what, s string) error {
	if s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\\\x00") || strings.HasPrefix(s, ".") {
		return fmt.Errorf("invalid segment %s %q", what, s)
	}
	for _, c := range s {
		if c < 0x20 || c == 0x7f {
			return fmt.Errorf("invalid segment %s %q", what, s)
		}
	}
	return nil
}

func validRef(target, stream, name string) error {
	return errors.Join(validName("target", target), validName("stream", stream), validName("name", name))
}

// Put stores data as segment seg (Target, Stream, Name and the optional
// times and positions; Size, Hash and Archived are set here). It is
// idempotent: a segment already archived with the same content succeeds
// (existed is true), one with other content fails with ErrConflict naming
// it. The object appears whole or not at all. Any doubt is an error.
func (a *Archive) Put(ctx context.Context, seg Segment, data []byte) (existed bool, err error) {
	if err := validRef(seg.Target, seg.Stream, seg.Name); err != nil {
		return false, err
	}
	seg.Size = int64(len(data))
	seg.Hash = a.r.BlobID(data)
	if seg.Archived.IsZero() {
		seg.Archived = time.Now().UTC()
	}
	key := seg.Key()
	if old, err := a.Head(ctx, seg.Target, seg.Stream, seg.Name); err == nil {
		return true, same(old, seg)
	} else if !errors.Is(err, ErrNotFound) {
		return false, err
	}
	obj, err := a.encode(seg, data)
	if err != nil {
		return false, fmt.Errorf("segment %s: %w", seg.Ref(), err)
	}
	if err := storage.WriteNew(ctx, a.b, key, obj); err != nil {
		if !errors.Is(err, storage.ErrExist) {
			return false, fmt.Errorf("store segment %s: %w", seg.Ref(), err)
		}
		// Another writer got there first: the same content is fine.
		old, herr := a.Head(ctx, seg.Target, seg.Stream, seg.Name)
		if herr != nil {
			return false, herr
		}
		return true, same(old, seg)
	}
	return false, nil
}

// same compares an archived segment with one about to be stored.
func same(old, seg Segment) error {
	if old.Size == seg.Size && old.Hash == seg.Hash {
		return nil
	}
	return fmt.Errorf("%w: %s is archived with %d bytes (hash %s), this one has %d bytes (hash %s)",
		ErrConflict, seg.Ref(), old.Size, old.Hash.Short(), seg.Size, seg.Hash.Short())
}

func (a *Archive) encode(seg Segment, data []byte) ([]byte, error) {
	hdr, err := json.Marshal(seg)
	if err != nil {
		return nil, err
	}
	shdr, err := a.r.SealMeta(hdr)
	if err != nil {
		return nil, err
	}
	body, err := a.r.SealData(data)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(magic)+4+len(shdr)+len(body))
	out = append(out, magic...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(shdr)))
	out = append(out, shdr...)
	return append(out, body...), nil
}

// parseHeader decodes the header at the start of obj (which may be only
// the object's beginning) and returns it with the offset of the content;
// need > 0 asks for that many bytes from the start.
func (a *Archive) parseHeader(key string, obj []byte) (seg Segment, bodyAt int, need int, err error) {
	if len(obj) < len(magic)+4 || string(obj[:len(magic)]) != magic {
		return seg, 0, 0, &repo.CorruptError{Object: key, Err: errors.New("not a segment object")}
	}
	n := int(binary.BigEndian.Uint32(obj[len(magic):]))
	if n == 0 || n > maxHeader {
		return seg, 0, 0, &repo.CorruptError{Object: key, Err: fmt.Errorf("header length %d", n)}
	}
	end := len(magic) + 4 + n
	if len(obj) < end {
		return seg, 0, end, nil
	}
	plain, err := a.r.OpenMeta(key, obj[len(magic)+4:end])
	if err != nil {
		return seg, 0, 0, err
	}
	if err := json.Unmarshal(plain, &seg); err != nil {
		return seg, 0, 0, &repo.CorruptError{Object: key, Err: err}
	}
	if seg.Key() != key {
		return seg, 0, 0, &repo.CorruptError{Object: key, Err: fmt.Errorf("header names segment %s", seg.Ref())}
	}
	return seg, end, 0, nil
}

// readRange reads up to n bytes from the start of key.
func (a *Archive) readRange(ctx context.Context, key string, n int64) ([]byte, error) {
	rd, err := a.b.NewRangeReader(ctx, key, 0, n, nil)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	return io.ReadAll(rd)
}

func notFound(err error) bool { return gcerrors.Code(err) == gcerrors.NotFound }

// Head reads a segment's header (host key suffices).
func (a *Archive) Head(ctx context.Context, target, stream, name string) (Segment, error) {
	key := Key(target, stream, name)
	return a.head(ctx, key)
}

func (a *Archive) head(ctx context.Context, key string) (Segment, error) {
	buf, err := a.readRange(ctx, key, headRead)
	if err != nil {
		if notFound(err) {
			return Segment{}, fmt.Errorf("%s: %w", strings.TrimPrefix(key, Prefix), ErrNotFound)
		}
		return Segment{}, fmt.Errorf("read %s: %w", key, storage.Wrap(err))
	}
	seg, _, need, err := a.parseHeader(key, buf)
	if err == nil && need > 0 {
		if buf, err = a.readRange(ctx, key, int64(need)); err != nil {
			return Segment{}, fmt.Errorf("read %s: %w", key, storage.Wrap(err))
		}
		seg, _, _, err = a.parseHeader(key, buf)
	}
	return seg, err
}

// Fetch reads and decrypts a segment (owner key; repo.ErrNoDataKey with
// the host key) and verifies its size and hash. A missing segment is
// ErrNotFound; a damaged one a *repo.CorruptError naming its object.
func (a *Archive) Fetch(ctx context.Context, target, stream, name string) ([]byte, Segment, error) {
	if err := validRef(target, stream, name); err != nil {
		return nil, Segment{}, err
	}
	key := Key(target, stream, name)
	obj, err := a.b.ReadAll(ctx, key)
	if err != nil {
		if notFound(err) {
			return nil, Segment{}, fmt.Errorf("%s/%s/%s: %w", target, stream, name, ErrNotFound)
		}
		return nil, Segment{}, fmt.Errorf("read %s: %w", key, storage.Wrap(err))
	}
	seg, at, _, err := a.parseHeader(key, obj)
	if err != nil {
		return nil, seg, err
	}
	seg.Stored = int64(len(obj))
	data, err := a.r.OpenData(key, obj[at:])
	if err != nil {
		return nil, seg, err
	}
	if int64(len(data)) != seg.Size || a.r.BlobID(data) != seg.Hash {
		return nil, seg, &repo.CorruptError{Object: key, Err: fmt.Errorf("content does not match its header (%d bytes, want %d)", len(data), seg.Size)}
	}
	return data, seg, nil
}

// Delete removes a segment (retention). A segment already gone is fine.
func (a *Archive) Delete(ctx context.Context, seg Segment) error {
	if err := validRef(seg.Target, seg.Stream, seg.Name); err != nil {
		return err
	}
	if err := a.b.Delete(ctx, seg.Key()); err != nil && !notFound(err) {
		return fmt.Errorf("delete %s: %w", seg.Key(), storage.Wrap(err))
	}
	return nil
}

// names lists the next path level under prefix.
func (a *Archive) names(ctx context.Context, prefix string, dirs bool) ([]string, error) {
	var out []string
	it := a.b.List(&blob.ListOptions{Prefix: prefix, Delimiter: "/"})
	for {
		o, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", prefix, storage.Wrap(err))
		}
		if o.IsDir != dirs || storage.IsTempKey(o.Key) {
			continue
		}
		out = append(out, strings.TrimSuffix(strings.TrimPrefix(o.Key, prefix), "/"))
	}
	slices.Sort(out)
	return out, nil
}

// Targets lists the targets that have segments.
func (a *Archive) Targets(ctx context.Context) ([]string, error) {
	return a.names(ctx, Prefix, true)
}

// Streams lists a target's streams.
func (a *Archive) Streams(ctx context.Context, target string) ([]string, error) {
	if err := validName("target", target); err != nil {
		return nil, err
	}
	return a.names(ctx, Prefix+target+"/", true)
}

// List returns the headers of a stream's segments ordered by name (host
// key suffices). Objects whose header does not decode are skipped and
// returned in damaged, each naming its object.
func (a *Archive) List(ctx context.Context, target, stream string) (segs []Segment, damaged []error, err error) {
	if err := errors.Join(validName("target", target), validName("stream", stream)); err != nil {
		return nil, nil, err
	}
	prefix := Prefix + target + "/" + stream + "/"
	var objs []*blob.ListObject
	it := a.b.List(&blob.ListOptions{Prefix: prefix, Delimiter: "/"})
	for {
		o, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("list %s: %w", prefix, storage.Wrap(err))
		}
		if o.IsDir || storage.IsTempKey(o.Key) {
			continue
		}
		objs = append(objs, o)
	}
	res := make([]Segment, len(objs))
	errs := make([]error, len(objs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i, o := range objs {
		g.Go(func() error {
			seg, err := a.head(gctx, o.Key)
			switch {
			case errors.Is(err, ErrNotFound): // deleted under the listing
				errs[i] = err
			case err != nil && (errors.As(err, new(*repo.CorruptError))):
				errs[i] = err
			case err != nil:
				return err
			default:
				seg.Stored = o.Size
				res[i] = seg
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	for i := range objs {
		switch {
		case errs[i] == nil:
			segs = append(segs, res[i])
		case !errors.Is(errs[i], ErrNotFound):
			damaged = append(damaged, errs[i])
		}
	}
	slices.SortFunc(segs, func(x, y Segment) int { return strings.Compare(x.Name, y.Name) })
	return segs, damaged, nil
}

// Gap is a break in a stream's chain: After ends where Before does not
// start.
type Gap struct {
	After, Before Segment
}

func (g Gap) String() string {
	return fmt.Sprintf("gap in %s/%s between %s (ends %s) and %s (starts %s)",
		g.After.Target, g.After.Stream, g.After.Name, g.After.End, g.Before.Name, g.Before.Start)
}

// Contiguous is the default chain rule: the next segment starts where the
// previous one ended (segments without positions are taken as contiguous).
func Contiguous(prev, next Segment) bool {
	return prev.End == "" || next.Start == "" || prev.End == next.Start
}

// Gaps returns the breaks in segs (ordered as List returns them) by the
// rule follows (Contiguous when nil).
func Gaps(segs []Segment, follows func(prev, next Segment) bool) []Gap {
	if follows == nil {
		follows = Contiguous
	}
	var gaps []Gap
	for i := 1; i < len(segs); i++ {
		if !follows(segs[i-1], segs[i]) {
			gaps = append(gaps, Gap{After: segs[i-1], Before: segs[i]})
		}
	}
	return gaps
}

// EndTime is when a segment's last event happened: LastTime, else when it
// was archived (no event can be later than that).
func (s Segment) EndTime() time.Time {
	if !s.LastTime.IsZero() {
		return s.LastTime
	}
	return s.Archived
}

// Expired returns the segments of segs that end before cutoff (retention:
// the cutoff is the recovery point of the oldest kept base of the target,
// less a margin). The newest segment is never expired, so a stream always
// shows where it ends.
func Expired(segs []Segment, cutoff time.Time) []Segment {
	var out []Segment
	for i, s := range segs {
		if i == len(segs)-1 {
			break
		}
		if s.EndTime().Before(cutoff) {
			out = append(out, s)
		}
	}
	return out
}

// Check verifies every segment of the repository: headers decode and
// match their keys; with readData (owner key) every content decrypts and
// matches its header. It returns the segments checked and one error per
// damaged object; a listing failure is err. Chains are the caller's
// (their rules are per database).
func (a *Archive) Check(ctx context.Context, readData bool) (checked int, problems []error, err error) {
	targets, err := a.Targets(ctx)
	if err != nil {
		return 0, nil, err
	}
	for _, t := range targets {
		streams, err := a.Streams(ctx, t)
		if err != nil {
			return checked, problems, err
		}
		for _, s := range streams {
			segs, damaged, err := a.List(ctx, t, s)
			if err != nil {
				return checked, problems, err
			}
			problems = append(problems, damaged...)
			checked += len(segs) + len(damaged)
			if !readData {
				continue
			}
			for _, seg := range segs {
				if _, _, err := a.Fetch(ctx, t, s, seg.Name); err != nil && !errors.Is(err, ErrNotFound) {
					problems = append(problems, err)
				}
			}
		}
	}
	return checked, problems, nil
}
