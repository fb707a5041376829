package binlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
	"time"
)

// Magic starts every binlog file.
var Magic = []byte{0xfe, 'b', 'i', 'n'}

// HeaderSize is the size of a v4 event header.
const HeaderSize = 19

// MaxEventSize bounds one event (the server's max_allowed_packet is at
// most 1 GiB).
const MaxEventSize = 1 << 30

// Event types this package looks at.
const (
	TypeQuery             = 2
	TypeStop              = 3
	TypeRotate            = 4
	TypeFormatDescription = 15
	TypeXID               = 16
	TypeHeartbeat         = 27
	TypeAnnotateRows      = 160
	TypeBinlogCheckpoint  = 161
	TypeGTID              = 162
	TypeGTIDList          = 163
)

// gtidStandalone is the MariaDB GTID event flag of a group that is one
// statement (DDL) without BEGIN/COMMIT.
const gtidStandalone = 1

// Header is a v4 binlog event header.
type Header struct {
	Timestamp uint32 // seconds since the epoch
	Type      byte
	ServerID  uint32
	Size      uint32 // whole event, header and checksum included
	LogPos    uint32 // position of the next event in the original file; 0: artificial
	Flags     uint16
}

// Time is the event's timestamp.
func (h Header) Time() time.Time { return time.Unix(int64(h.Timestamp), 0).UTC() }

// Start is the event's position in its original file.
func (h Header) Start() uint32 { return h.LogPos - h.Size }

// Artificial tells an event the server made up for the stream (the
// format description replayed at a start position, a fake rotate): it is
// not in the file at LogPos.
func (h Header) Artificial() bool { return h.LogPos == 0 }

// ErrShort is returned by ParseHeader and Decode when b holds less than
// one whole event: more bytes are needed.
var ErrShort = errors.New("binlog: incomplete event")

// ParseHeader parses the header at the start of b and checks its size.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, ErrShort
	}
	h := Header{
		Timestamp: binary.LittleEndian.Uint32(b),
		Type:      b[4],
		ServerID:  binary.LittleEndian.Uint32(b[5:]),
		Size:      binary.LittleEndian.Uint32(b[9:]),
		LogPos:    binary.LittleEndian.Uint32(b[13:]),
		Flags:     binary.LittleEndian.Uint16(b[17:]),
	}
	if h.Size < HeaderSize || h.Size > MaxEventSize {
		return h, fmt.Errorf("binlog: event of type %d has an impossible size %d", h.Type, h.Size)
	}
	if h.LogPos != 0 && h.LogPos < h.Size+4 {
		return h, fmt.Errorf("binlog: event of type %d (%d bytes) ends at %d, before it could start", h.Type, h.Size, h.LogPos)
	}
	return h, nil
}

// Format is what a format description event says about the events after
// it.
type Format struct {
	Checksum bool   // events end with a CRC32
	Version  string // server version
}

// ParseFormat reads a format description event (whole, header included).
func ParseFormat(ev []byte) (Format, error) {
	h, err := ParseHeader(ev)
	if err != nil {
		return Format{}, err
	}
	if h.Type != TypeFormatDescription || int(h.Size) != len(ev) {
		return Format{}, fmt.Errorf("binlog: not a format description event (type %d)", h.Type)
	}
	// binlog_version(2) server_version(50) create_time(4) header_len(1)
	// post-header lengths ... checksum_alg(1) crc(4)
	body := ev[HeaderSize:]
	if len(body) < 2+50+4+1+5 {
		return Format{}, errors.New("binlog: format description event too short")
	}
	if v := binary.LittleEndian.Uint16(body); v != 4 {
		return Format{}, fmt.Errorf("binlog: binlog format version %d (only 4 is read)", v)
	}
	if body[56] != HeaderSize {
		return Format{}, fmt.Errorf("binlog: event header length %d (only %d is read)", body[56], HeaderSize)
	}
	f := Format{Version: string(bytes.TrimRight(body[2:52], "\x00"))}
	alg := body[len(body)-5]
	switch alg {
	case 0:
	case 1:
		f.Checksum = true
		if crc32.ChecksumIEEE(ev[:len(ev)-4]) != binary.LittleEndian.Uint32(ev[len(ev)-4:]) {
			return f, errors.New("binlog: format description event fails its checksum")
		}
	default:
		return f, fmt.Errorf("binlog: checksum algorithm %d unknown", alg)
	}
	return f, nil
}

// GTID is a MariaDB global transaction ID, domain-server-sequence.
type GTID struct {
	Domain, Server uint32
	Seq            uint64
}

func (g GTID) String() string { return fmt.Sprintf("%d-%d-%d", g.Domain, g.Server, g.Seq) }

// ParseGTID parses "domain-server-seq".
func ParseGTID(s string) (GTID, error) {
	var g GTID
	parts := strings.Split(strings.TrimSpace(s), "-")
	if len(parts) != 3 {
		return g, fmt.Errorf("GTID %q: want domain-server-sequence", s)
	}
	var err error
	var d, sv uint64
	if d, err = parseUint(parts[0], 32); err == nil {
		if sv, err = parseUint(parts[1], 32); err == nil {
			g.Seq, err = parseUint(parts[2], 64)
		}
	}
	if err != nil {
		return g, fmt.Errorf("GTID %q: %w", s, err)
	}
	g.Domain, g.Server = uint32(d), uint32(sv)
	return g, nil
}

func parseUint(s string, bits int) (uint64, error) {
	if s == "" || s[0] == '+' || s[0] == '-' {
		return 0, fmt.Errorf("bad number %q", s)
	}
	return strconv.ParseUint(s, 10, bits)
}

// Event is one decoded event.
type Event struct {
	Header
	GTID       *GTID  // TypeGTID
	Standalone bool   // TypeGTID: a one-statement group
	NextFile   string // TypeRotate
	NextPos    uint64 // TypeRotate
	Commit     bool   // ends a transaction: XID, or a COMMIT/ROLLBACK query
}

// Decode decodes the whole event at the start of b, verifying its
// checksum when f says events carry one. It returns the event and its
// length; ErrShort when b holds less than the whole event.
func Decode(b []byte, f Format) (Event, int, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return Event{}, 0, err
	}
	if len(b) < int(h.Size) {
		return Event{}, 0, ErrShort
	}
	ev := Event{Header: h}
	raw := b[:h.Size]
	body := raw[HeaderSize:]
	if f.Checksum && h.Type != TypeFormatDescription {
		if len(body) < 4 {
			return ev, 0, fmt.Errorf("binlog: event of type %d at %d too short for its checksum", h.Type, h.Start())
		}
		if crc32.ChecksumIEEE(raw[:len(raw)-4]) != binary.LittleEndian.Uint32(raw[len(raw)-4:]) {
			return ev, 0, fmt.Errorf("binlog: event of type %d ending at %d fails its checksum", h.Type, h.LogPos)
		}
		body = body[:len(body)-4]
	}
	switch h.Type {
	case TypeGTID:
		if len(body) < 13 {
			return ev, 0, fmt.Errorf("binlog: GTID event ending at %d too short", h.LogPos)
		}
		ev.GTID = &GTID{Seq: binary.LittleEndian.Uint64(body), Domain: binary.LittleEndian.Uint32(body[8:]), Server: h.ServerID}
		ev.Standalone = body[12]&gtidStandalone != 0
	case TypeRotate:
		if len(body) < 8 {
			return ev, 0, fmt.Errorf("binlog: rotate event ending at %d too short", h.LogPos)
		}
		ev.NextPos = binary.LittleEndian.Uint64(body)
		ev.NextFile = string(body[8:])
		if ev.NextFile == "" || strings.ContainsAny(ev.NextFile, "/\\\x00") {
			return ev, 0, fmt.Errorf("binlog: rotate event ending at %d names an invalid file %q", h.LogPos, ev.NextFile)
		}
	case TypeXID:
		ev.Commit = true
	case TypeQuery:
		q, err := queryText(body)
		if err != nil {
			return ev, 0, fmt.Errorf("binlog: query event ending at %d: %w", h.LogPos, err)
		}
		ev.Commit = isCommit(q)
	}
	return ev, int(h.Size), nil
}

// queryText returns the statement of a query event's body.
func queryText(body []byte) ([]byte, error) {
	// thread_id(4) exec_time(4) db_len(1) error_code(2) status_vars_len(2)
	if len(body) < 13 {
		return nil, errors.New("too short")
	}
	dbLen := int(body[8])
	varsLen := int(binary.LittleEndian.Uint16(body[11:]))
	at := 13 + varsLen + dbLen + 1
	if at > len(body) {
		return nil, errors.New("status variables or database name past its end")
	}
	return body[at:], nil
}

func isCommit(q []byte) bool {
	q = bytes.TrimSpace(q)
	return bytes.EqualFold(q, []byte("COMMIT")) || bytes.EqualFold(q, []byte("ROLLBACK"))
}
