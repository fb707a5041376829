package binlog

// grouper follows MariaDB's event groups (transactions): a GTID event
// starts one; an XID or a COMMIT/ROLLBACK query ends it, or, for a
// standalone group (DDL), its one query.
type grouper struct {
	in, standalone bool
}

// step takes the next event; end tells that a group ends with it, or
// that it is outside any group (a boundary follows it either way).
func (g *grouper) step(ev Event) (start, end bool) {
	switch {
	case ev.Type == TypeGTID:
		g.in, g.standalone = true, ev.Standalone
		return true, false
	case !g.in:
		return false, true
	case ev.Commit, g.standalone && ev.Type == TypeQuery:
		g.in = false
		return false, true
	}
	return false, false
}
