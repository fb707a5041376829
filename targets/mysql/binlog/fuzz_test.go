package binlog

import (
	"encoding/binary"
	"hash/crc32"
	"strings"
	"testing"
	"time"
)

// event builds an event of type typ with body (and a CRC32 when crc).
func event(typ byte, logPos uint32, body []byte, crc bool) []byte {
	size := HeaderSize + len(body)
	if crc {
		size += 4
	}
	b := make([]byte, HeaderSize, size)
	binary.LittleEndian.PutUint32(b, 1765100000)
	b[4] = typ
	binary.LittleEndian.PutUint32(b[5:], 1)
	binary.LittleEndian.PutUint32(b[9:], uint32(size))
	binary.LittleEndian.PutUint32(b[13:], logPos)
	b = append(b, body...)
	if crc {
		b = binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
	}
	return b
}

func gtidBody(seq uint64, domain uint32, flags byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, seq)
	b = binary.LittleEndian.AppendUint32(b, domain)
	return append(b, flags, 0, 0, 0, 0, 0, 0)
}

func queryBody(q string) []byte {
	b := make([]byte, 13)
	b[8] = 4 // db_len
	return append(append(b, "shop\x00"...), q...)
}

// FuzzDecode: no input makes the parser panic, loop or accept an event
// whose size disagrees with the bytes it consumed.
func FuzzDecode(f *testing.F) {
	f.Add(event(TypeGTID, 500, gtidBody(7, 0, 0), true), true)
	f.Add(event(TypeRotate, 600, append(binary.LittleEndian.AppendUint64(nil, 4), "binlog.000002"...), true), true)
	f.Add(event(TypeQuery, 700, queryBody("COMMIT"), false), false)
	f.Add(event(TypeXID, 800, make([]byte, 8), true), true)
	f.Add([]byte{1, 2, 3}, false)
	f.Fuzz(func(t *testing.T, b []byte, crc bool) {
		_, _ = ParseHeader(b)
		_, _ = ParseFormat(b)
		ev, n, err := Decode(b, Format{Checksum: crc})
		if err != nil {
			return
		}
		if n != int(ev.Size) || n > len(b) || n < HeaderSize {
			t.Fatalf("consumed %d bytes of %d for an event of size %d", n, len(b), ev.Size)
		}
		if ev.Type == TypeGTID && ev.GTID == nil {
			t.Fatal("GTID event without a GTID")
		}
	})
}

func TestDecodeEvents(t *testing.T) {
	ev, _, err := Decode(event(TypeGTID, 500, gtidBody(7, 3, gtidStandalone), true), Format{Checksum: true})
	if err != nil || ev.GTID.String() != "3-1-7" || !ev.Standalone {
		t.Fatalf("GTID: %+v %v", ev, err)
	}
	bad := event(TypeGTID, 500, gtidBody(7, 3, 0), true)
	bad[20] ^= 1
	if _, _, err := Decode(bad, Format{Checksum: true}); err == nil {
		t.Fatal("a damaged event passed its checksum")
	}
	ev, _, err = Decode(event(TypeQuery, 700, queryBody(" commit "), false), Format{})
	if err != nil || !ev.Commit {
		t.Fatalf("COMMIT query: %+v %v", ev, err)
	}
	ev, _, err = Decode(event(TypeQuery, 700, queryBody("INSERT INTO t VALUES (1)"), false), Format{})
	if err != nil || ev.Commit {
		t.Fatalf("INSERT query: %+v %v", ev, err)
	}
	if _, _, err := Decode(event(TypeRotate, 600, append(binary.LittleEndian.AppendUint64(nil, 4), "../x"...), false), Format{}); err == nil {
		t.Fatal("a rotate to ../x was accepted")
	}
	if _, _, err := Decode(event(TypeXID, 10, make([]byte, 8), false), Format{}); err == nil {
		t.Fatal("an event ending before it starts was accepted")
	}
	if _, _, err := Decode(event(TypeXID, 800, make([]byte, 8), false)[:20], Format{}); err != ErrShort {
		t.Fatalf("a cut event: %v", err)
	}
}

func TestChainAndFollows(t *testing.T) {
	p := func(s string) Pos {
		q, err := ParsePos(s)
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	t0 := mustTime(t, "2026-12-07T10:00:00Z")
	seg := func(start, end string, first, last int, closed string) Segment {
		return Segment{Name: SegmentName(p(start)), Start: p(start), End: p(end), Closed: closed,
			FirstTime: t0.Add(secs(first)), LastTime: t0.Add(secs(last))}
	}
	segs := []Segment{
		seg("b.000001:4", "b.000001:1000", 0, 10, ""),
		seg("b.000001:1000", "b.000001:2000", 10, 20, "server stopped"),
		seg("b.000002:4", "b.000002:500", 30, 40, ""),
		seg("b.000004:4", "b.000004:900", 60, 70, ""), // b.000003 never archived
	}
	segs[3].Gap = "the server purged b.000003 before it was archived"
	if bs := Breaks(segs); len(bs) != 1 || bs[0].Before.Name != segs[3].Name {
		t.Fatalf("breaks: %v", bs)
	}
	chain, err := Chain(segs, p("b.000001:1500"), Point{Time: t0.Add(secs(35))})
	if err != nil || len(chain) != 2 || chain[0].Name != segs[1].Name {
		t.Fatalf("chain to 35s: %v %v", chain, err)
	}
	if _, err := Chain(segs, p("b.000001:1500"), Point{Time: t0.Add(secs(50))}); err == nil {
		t.Fatal("a point inside the gap was not refused")
	} else if !contains(err.Error(), "purged b.000003") {
		t.Fatalf("refusal without the reason: %v", err)
	}
	if _, err := Chain(segs, p("b.000001:1500"), Point{Latest: true}); err == nil {
		t.Fatal("latest across the gap was not refused")
	}
	if chain, err := Chain(segs, p("b.000004:4"), Point{Latest: true}); err != nil || len(chain) != 1 {
		t.Fatalf("after the gap: %v %v", chain, err)
	}
	if _, err := Chain(segs, p("b.000004:4"), Point{Time: t0.Add(secs(80))}); err == nil {
		t.Fatal("a point after the archive's end was not refused")
	}
	if _, err := Chain(segs, p("b.000000:4"), Point{Latest: true}); err == nil {
		t.Fatal("a base before the archive's start was not refused")
	}
}

func secs(n int) time.Duration { return time.Duration(n) * time.Second }

func mustTime(t *testing.T, s string) time.Time {
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
