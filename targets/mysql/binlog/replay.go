package binlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"
)

// Point is where a point-in-time restore stops. Exactly one of Time,
// Latest, GTID and Pos is set.
type Point struct {
	// Time: every transaction up to and including this second (the
	// binary log's timestamps are whole seconds); replay stops at the
	// first transaction after it, as mariadb-binlog --stop-datetime does.
	Time   time.Time
	Latest bool  // every complete transaction archived
	GTID   *GTID // up to and including this transaction
	Pos    *Pos  // every transaction that ends at or before this position
}

func (p Point) String() string {
	switch {
	case p.Latest:
		return "latest"
	case p.GTID != nil:
		return "GTID " + p.GTID.String()
	case p.Pos != nil:
		return "position " + p.Pos.String()
	}
	return p.Time.Format(time.RFC3339)
}

// RefusedError says why no replay can reach a point: the archive does
// not hold the events, or has a gap on the way.
type RefusedError struct{ Reason string }

func (e *RefusedError) Error() string { return e.Reason }

// Chain returns the segments that hold the events from from on up to p,
// in order and without gaps, or a *RefusedError.
func Chain(segs []Segment, from Pos, p Point) ([]Segment, error) {
	if len(segs) == 0 {
		return nil, &RefusedError{"no binlog segments are archived for this target (is `lifeboat binlog archive` running?)"}
	}
	i := -1
	for k, s := range segs {
		if s.Start.Compare(from) <= 0 && from.Compare(s.End) < 0 {
			i = k
			break
		}
		if s.Start.Compare(from) > 0 {
			break
		}
	}
	if i < 0 {
		lastEnd := segs[len(segs)-1].End
		switch {
		case from.Compare(segs[0].Start) < 0:
			return nil, &RefusedError{fmt.Sprintf("the archive starts at %s (%s), after the base snapshot's position %s", segs[0].Start, segs[0].FirstTime.Format(time.RFC3339), from)}
		case from == lastEnd || from.Compare(lastEnd) > 0 && segs[len(segs)-1].Closed != "" && from.Offset == 4:
			i = len(segs) // nothing archived after the snapshot yet
		default:
			for k := 1; k < len(segs); k++ {
				if from.Compare(segs[k-1].End) >= 0 && from.Compare(segs[k].Start) < 0 {
					return nil, &RefusedError{fmt.Sprintf("the base snapshot's position %s lies in a %s", from, Break{segs[k-1], segs[k]})}
				}
			}
			return nil, &RefusedError{fmt.Sprintf("the archive ends at %s (%s), before the base snapshot's position %s", lastEnd, segs[len(segs)-1].LastTime.Format(time.RFC3339), from)}
		}
	}
	var out []Segment
	for k := i; k < len(segs); k++ {
		s := segs[k]
		if k > i && !Follows(segs[k-1], s) {
			if !p.Latest && reached(out, from, p) {
				return out, nil
			}
			return nil, &RefusedError{fmt.Sprintf("%s is not restorable from this base: %s", p, Break{segs[k-1], s})}
		}
		out = append(out, s)
		if p.Latest {
			continue
		}
		if !p.Time.IsZero() && s.LastTime.After(p.Time) ||
			p.Pos != nil && s.End.Compare(*p.Pos) >= 0 ||
			p.GTID != nil && gtidReached(s.GTID, *p.GTID) {
			return out, nil
		}
	}
	if reached(out, from, p) {
		return out, nil
	}
	end := from
	last := "the base snapshot"
	if len(out) > 0 {
		end = out[len(out)-1].End
		last = out[len(out)-1].LastTime.Format(time.RFC3339)
	}
	return nil, &RefusedError{fmt.Sprintf("%s is after the end of the archive (%s, last event %s): use --until latest or an earlier point", p, end, last)}
}

// reached tells whether the chain covers p without needing more.
func reached(chain []Segment, from Pos, p Point) bool {
	if p.Latest {
		return true
	}
	if len(chain) == 0 {
		return false
	}
	last := chain[len(chain)-1]
	switch {
	case !p.Time.IsZero():
		return !last.LastTime.Before(p.Time)
	case p.Pos != nil:
		return last.End.Compare(*p.Pos) >= 0
	case p.GTID != nil:
		return gtidReached(last.GTID, *p.GTID)
	}
	return false
}

func gtidReached(have string, want GTID) bool {
	g, err := ParseGTID(have)
	return err == nil && g.Domain == want.Domain && g.Seq >= want.Seq
}

// Replay says what a replay applied.
type Replay struct {
	Segments     int       `json:"segments"`
	Transactions int       `json:"transactions"`
	Events       int       `json:"events"`
	Bytes        int64     `json:"bytes"` // of events applied
	LastGTID     string    `json:"last_gtid,omitempty"`
	LastTime     time.Time `json:"last_time,omitzero"`
	LastEnd      Pos       `json:"-"`
	// Incomplete: a transaction whose end is not archived (yet) was left
	// out at the end.
	Incomplete bool `json:"incomplete,omitempty"`
}

// Stream writes to w one binlog stream (magic, then per file its format
// description and the events) of the transactions in chain from from up
// to p, for mariadb-binlog. A transaction is written only whole.
func Stream(ctx context.Context, w io.Writer, f Fetcher, chain []Segment, from Pos, p Point) (Replay, error) {
	var r Replay
	if _, err := w.Write(Magic); err != nil {
		return r, err
	}
	var (
		file    string
		group   []byte
		gEvents int
		gTime   time.Time
		gGTID   *GTID
		g       grouper
		fdDone  bool
	)
	for _, s := range chain {
		if err := ctx.Err(); err != nil {
			return r, err
		}
		data, err := f.Fetch(ctx, s)
		if err != nil {
			return r, fmt.Errorf("binlog segment %s: %w", s.Name, err)
		}
		r.Segments++
		if len(data) < 4 || !bytes.Equal(data[:4], Magic) {
			return r, fmt.Errorf("binlog segment %s: not a binlog file", s.Name)
		}
		h, err := ParseHeader(data[4:])
		if err != nil || len(data) < 4+int(h.Size) {
			return r, fmt.Errorf("binlog segment %s: no format description event", s.Name)
		}
		fd := data[4 : 4+h.Size]
		format, err := ParseFormat(fd)
		if err != nil {
			return r, fmt.Errorf("binlog segment %s: %w", s.Name, err)
		}
		if s.Start.File != file {
			file, fdDone = s.Start.File, false
			if len(group) > 0 {
				group, g = nil, grouper{} // a transaction never spans files
			}
		}
		for b := data[4+h.Size:]; len(b) > 0; {
			ev, n, err := Decode(b, format)
			if err != nil {
				return r, fmt.Errorf("binlog segment %s: %w", s.Name, err)
			}
			raw := b[:n]
			b = b[n:]
			if file == from.File && uint64(ev.Start()) < from.Offset {
				continue
			}
			start, end := g.step(ev)
			if start {
				group, gEvents, gTime, gGTID = append(group[:0], raw...), 1, ev.Time(), ev.GTID
				continue
			}
			if len(group) == 0 {
				// Outside a transaction: format, rotate, stop, GTID list,
				// checkpoint events are not replayed.
				switch ev.Type {
				case TypeRotate, TypeStop, TypeGTIDList, TypeBinlogCheckpoint, TypeHeartbeat, TypeXID:
					continue
				case TypeQuery:
					if ev.Commit {
						continue
					}
				}
				return r, fmt.Errorf("binlog segment %s: event of type %d at %s:%d outside a transaction (only MariaDB binary logs with GTIDs can be replayed)", s.Name, ev.Type, file, ev.Start())
			}
			group = append(group, raw...)
			gEvents++
			if ev.Time().After(gTime) {
				gTime = ev.Time()
			}
			if !end {
				continue
			}
			in, last := includes(p, gTime, gGTID, Pos{File: file, Offset: uint64(ev.LogPos)})
			if !in {
				return r, nil
			}
			if !fdDone {
				if _, err := w.Write(fd); err != nil {
					return r, err
				}
				fdDone = true
			}
			if _, err := w.Write(group); err != nil {
				return r, err
			}
			r.Transactions++
			r.Events += gEvents
			r.Bytes += int64(len(group))
			if gGTID != nil {
				r.LastGTID = gGTID.String()
			}
			r.LastTime, r.LastEnd = gTime, Pos{File: file, Offset: uint64(ev.LogPos)}
			group = group[:0]
			if last {
				return r, nil
			}
		}
	}
	r.Incomplete = len(group) > 0
	if p.GTID != nil {
		return r, &RefusedError{fmt.Sprintf("GTID %s is not in the archive after the base snapshot", p.GTID)}
	}
	return r, nil
}

// includes tells whether a transaction (its time, GTID and end) is
// replayed for p, and whether it is the last one.
func includes(p Point, t time.Time, g *GTID, end Pos) (in, last bool) {
	switch {
	case p.Latest:
		return true, false
	case p.GTID != nil:
		if g != nil && *g == *p.GTID {
			return true, true
		}
		return true, false
	case p.Pos != nil:
		return end.Compare(*p.Pos) <= 0, false
	}
	return !t.After(p.Time), false
}

// ApplyOptions configure Apply.
type ApplyOptions struct {
	DSN, Password string
	// NoBinlog: the destination does not write the replayed transactions
	// to its own binary log (mariadb-binlog --disable-log-bin).
	NoBinlog bool
}

// Apply pipes the stream write produces through mariadb-binlog into the
// mariadb client connected to the destination server.
func Apply(ctx context.Context, o ApplyOptions, write func(io.Writer) (Replay, error)) (Replay, error) {
	conn, err := parseDest(o.DSN, o.Password)
	if err != nil {
		return Replay{}, err
	}
	binlogBin, err := clientBinary("mariadb-binlog", "mysqlbinlog")
	if err != nil {
		return Replay{}, err
	}
	client, err := clientBinary("mariadb", "mysql")
	if err != nil {
		return Replay{}, err
	}
	dir, err := os.MkdirTemp("", "lifeboat-replay-")
	if err != nil {
		return Replay{}, err
	}
	defer os.RemoveAll(dir)
	defaults, err := writeDefaults(dir, conn)
	if err != nil {
		return Replay{}, err
	}
	args := []string{"--no-defaults"}
	if o.NoBinlog {
		args = append(args, "--disable-log-bin")
	}
	dec := exec.CommandContext(ctx, binlogBin, append(args, "-")...)
	apply := exec.CommandContext(ctx, client, "--defaults-extra-file="+defaults, "--binary-mode", "--batch")
	var decErr, applyErr bytes.Buffer
	dec.Stderr, apply.Stderr = &decErr, &applyErr
	in, err := dec.StdinPipe()
	if err != nil {
		return Replay{}, err
	}
	if apply.Stdin, err = dec.StdoutPipe(); err != nil {
		return Replay{}, err
	}
	if err := dec.Start(); err != nil {
		return Replay{}, fmt.Errorf("start %s: %w", binlogBin, err)
	}
	if err := apply.Start(); err != nil {
		in.Close()
		_ = dec.Wait()
		return Replay{}, fmt.Errorf("start %s: %w", client, err)
	}
	r, werr := write(in)
	in.Close()
	derr := dec.Wait()
	aerr := apply.Wait()
	switch {
	case aerr != nil:
		return r, fmt.Errorf("replay into %s: mariadb: %v: %s", redactDest(conn), aerr, tail(applyErr.Bytes()))
	case derr != nil:
		return r, fmt.Errorf("replay: mariadb-binlog: %v: %s", derr, tail(decErr.Bytes()))
	case werr != nil:
		var refused *RefusedError
		if errors.As(werr, &refused) {
			return r, werr
		}
		return r, fmt.Errorf("replay: %w", werr)
	}
	return r, nil
}
