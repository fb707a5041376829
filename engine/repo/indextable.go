package repo

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

// maxMemEntries is how many entries the index keeps in memory: a larger
// index is sorted in runs of this many entries (48 bytes each), merged into
// an unlinked temporary file (in $TMPDIR) and read from there with pread;
// only the first 8 bytes of each entry's ID stay in memory, for the binary
// search. A variable so tests can spill small indexes.
var maxMemEntries = 2 << 20

// table is the sorted, sealed part of the index: in memory (mem), or in a
// file with the ID prefixes in memory (prefix).
type table struct {
	mem    []entry
	file   *os.File
	prefix []uint64
	n      int
	// distinct blob IDs and IDs with more than one copy
	distinct, dups int
}

func idPrefix(id *snapshot.ID) uint64 { return binary.BigEndian.Uint64(id[:8]) }

// search returns the range [lo, hi) of id's copies.
func (t *table) search(id snapshot.ID) (int, int) {
	if t.file == nil {
		return searchMem(t.mem, id)
	}
	p := idPrefix(&id)
	lo := sort.Search(t.n, func(i int) bool { return t.prefix[i] >= p })
	for lo < t.n && t.prefix[lo] == p {
		e := t.at(lo)
		c := bytes.Compare(e.id[:], id[:])
		if c > 0 {
			return lo, lo
		}
		if c == 0 {
			break
		}
		lo++
	}
	hi := lo
	for hi < t.n && t.prefix[hi] == p {
		if e := t.at(hi); e.id != id {
			break
		}
		hi++
	}
	return lo, hi
}

func (t *table) count(id snapshot.ID) int {
	lo, hi := t.search(id)
	return hi - lo
}

// at returns entry i. A read error of the temporary file (a failing local
// disk) cannot be answered as "not stored", which would make a backup skip
// a blob: it panics, naming the file, before anything is committed.
func (t *table) at(i int) entry {
	if t.file == nil {
		return t.mem[i]
	}
	var b [entrySize]byte
	if _, err := t.file.ReadAt(b[:], int64(i)*entrySize); err != nil {
		panic(fmt.Sprintf("index table %s: %v", t.file.Name(), err))
	}
	return decodeEntry(b[:])
}

// scan calls fn for every entry in order.
func (t *table) scan(fn func(*entry)) {
	if t.file == nil {
		for i := range t.mem {
			fn(&t.mem[i])
		}
		return
	}
	rd := bufio.NewReaderSize(io.NewSectionReader(t.file, 0, int64(t.n)*entrySize), 1<<20)
	var b [entrySize]byte
	for range t.n {
		if _, err := io.ReadFull(rd, b[:]); err != nil {
			panic(fmt.Sprintf("index table %s: %v", t.file.Name(), err))
		}
		e := decodeEntry(b[:])
		fn(&e)
	}
}

func encodeEntry(b []byte, e *entry) {
	copy(b, e.id[:])
	binary.LittleEndian.PutUint32(b[32:], e.pk)
	binary.LittleEndian.PutUint32(b[36:], e.off)
	binary.LittleEndian.PutUint32(b[40:], e.length)
	binary.LittleEndian.PutUint32(b[44:], e.raw)
}

func decodeEntry(b []byte) entry {
	var e entry
	copy(e.id[:], b)
	e.pk = binary.LittleEndian.Uint32(b[32:])
	e.off = binary.LittleEndian.Uint32(b[36:])
	e.length = binary.LittleEndian.Uint32(b[40:])
	e.raw = binary.LittleEndian.Uint32(b[44:])
	return e
}

// builder collects entries while the index loads: up to maxMemEntries in
// memory, then sorted runs in a temporary file. When no temporary file can
// be written the entries stay in memory (more memory, same answers).
type builder struct {
	buf    []entry
	runs   []int64 // entries per run, stored one after the other in f
	f      *os.File
	w      *bufio.Writer
	inMem  bool // spilling failed: keep everything in memory
	copies int
}

func (b *builder) add(e entry) {
	b.buf = append(b.buf, e)
	b.copies++
	if len(b.buf) >= maxMemEntries && !b.inMem {
		if err := b.spill(); err != nil {
			b.inMem = true
		}
	}
}

// spill sorts the buffer and appends it to the run file.
func (b *builder) spill() error {
	if b.f == nil {
		f, err := os.CreateTemp("", "lifeboat-index-runs-*")
		if err != nil {
			return err
		}
		_ = os.Remove(f.Name()) // unlinked: gone with the process
		b.f, b.w = f, bufio.NewWriterSize(f, 1<<20)
	}
	sortEntries(b.buf)
	var rec [entrySize]byte
	for i := range b.buf {
		encodeEntry(rec[:], &b.buf[i])
		if _, err := b.w.Write(rec[:]); err != nil {
			return err
		}
	}
	if err := b.w.Flush(); err != nil {
		return err
	}
	b.runs = append(b.runs, int64(len(b.buf)))
	b.buf = b.buf[:0]
	return nil
}

// finish sorts everything into a table.
func (b *builder) finish() table {
	if len(b.runs) > 0 && !b.inMem {
		if len(b.buf) > 0 {
			if err := b.spill(); err != nil {
				b.inMem = true
			}
		}
		if !b.inMem {
			t, err := b.merge()
			if err == nil {
				return t
			}
		}
		// The runs are read back into memory.
		if err := b.unspill(); err != nil {
			panic(fmt.Sprintf("index runs %s: %v", b.f.Name(), err))
		}
	}
	es := b.buf
	if cap(es) > len(es)+len(es)/4 {
		es = append(make([]entry, 0, len(es)), es...)
	}
	sortEntries(es)
	t := table{mem: es, n: len(es)}
	for i := range es {
		if i == 0 || es[i].id != es[i-1].id {
			t.distinct++
		} else if i == 1 || es[i-2].id != es[i].id {
			t.dups++
		}
	}
	return t
}

// unspill reads the runs back into the buffer.
func (b *builder) unspill() error {
	defer b.f.Close()
	rd := bufio.NewReaderSize(io.NewSectionReader(b.f, 0, 1<<62), 1<<20)
	var rec [entrySize]byte
	for _, n := range b.runs {
		for range n {
			if _, err := io.ReadFull(rd, rec[:]); err != nil {
				return err
			}
			b.buf = append(b.buf, decodeEntry(rec[:]))
		}
	}
	b.runs = nil
	return nil
}

// merge merges the sorted runs into a new temporary file and the prefix
// array.
func (b *builder) merge() (table, error) {
	b.buf = nil
	out, err := os.CreateTemp("", "lifeboat-index-*")
	if err != nil {
		return table{}, err
	}
	_ = os.Remove(out.Name())
	type cursor struct {
		rd   *bufio.Reader
		left int64
		cur  entry
	}
	var cs []*cursor
	var off int64
	next := func(c *cursor) error {
		var rec [entrySize]byte
		if _, err := io.ReadFull(c.rd, rec[:]); err != nil {
			return err
		}
		c.cur = decodeEntry(rec[:])
		c.left--
		return nil
	}
	for _, n := range b.runs {
		c := &cursor{rd: bufio.NewReaderSize(io.NewSectionReader(b.f, off, n*entrySize), 256<<10), left: n}
		off += n * entrySize
		if err := next(c); err != nil {
			out.Close()
			return table{}, err
		}
		cs = append(cs, c)
	}
	t := table{file: out, prefix: make([]uint64, 0, b.copies)}
	w := bufio.NewWriterSize(out, 1<<20)
	var rec [entrySize]byte
	var prev snapshot.ID
	run := 0
	for len(cs) > 0 {
		m := 0
		for i := 1; i < len(cs); i++ {
			if cmpEntry(&cs[i].cur, &cs[m].cur) < 0 {
				m = i
			}
		}
		e := cs[m].cur
		encodeEntry(rec[:], &e)
		if _, err := w.Write(rec[:]); err != nil {
			out.Close()
			return table{}, err
		}
		if t.n == 0 || e.id != prev {
			t.distinct++
			run = 1
		} else if run++; run == 2 {
			t.dups++
		}
		prev = e.id
		t.prefix = append(t.prefix, idPrefix(&e.id))
		t.n++
		if cs[m].left == 0 {
			cs = append(cs[:m], cs[m+1:]...)
		} else if err := next(cs[m]); err != nil {
			out.Close()
			return table{}, err
		}
	}
	if err := w.Flush(); err != nil {
		out.Close()
		return table{}, err
	}
	b.f.Close()
	return t, nil
}
