package sanitize

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"strings"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/targets/mysql"
)

// Finding is a column that looks personal but has no rule.
type Finding struct {
	Database string `json:"database"`
	Table    string `json:"table"`
	Column   string `json:"column"`
	Kind     string `json:"kind"`   // email, phone, name, address, ip, card, birth date, secret, tax id
	Reason   string `json:"reason"` // "column name" or "content: 40 of 50 sampled values"
	Suggest  string `json:"suggest"`
}

func (f Finding) String() string {
	return fmt.Sprintf("%s.%s.%s: looks like %s (%s); add a rule, e.g. %s: {%s: %s}",
		f.Database, f.Table, f.Column, f.Kind, f.Reason, f.Table, f.Column, f.Suggest)
}

// LintOptions configure Lint.
type LintOptions struct {
	SampleRows int    // rows read per table (default 300)
	PGBinDir   string // holds pg_restore for postgres snapshots (default: PATH)
}

var nameRules = []struct {
	re      *regexp.Regexp
	kind    string
	suggest string
}{
	{regexp.MustCompile(`(?i)e_?mail`), "email", "fake:email"},
	{regexp.MustCompile(`(?i)phone|mobile|(^|_)fax($|_)|(^|_)tel($|_)`), "phone", "fake:phone"},
	{regexp.MustCompile(`(?i)(first|last|middle|full|sur|given|maiden|nick|display)_?name|^(customer|subscriber|contact|billing|shipping|account|holder|owner|person)_?name$|username|^login$`), "name", "fake:name"},
	{regexp.MustCompile(`(?i)street|address_?line|^addr(ess)?\d?$|postcode|post_code|postal|zip_?code|^zip$|(^|_)city$`), "address", "fake:street"},
	{regexp.MustCompile(`(?i)(^|_)ip($|_)|ip_?addr|remote_addr|forwarded_for`), "ip", "fake:ip"},
	{regexp.MustCompile(`(?i)^dob$|birth`), "birth date", `"null"`},
	{regexp.MustCompile(`(?i)cc_?num|card_?num|(^|_)pan($|_)|iban|(^|_)cvv|(^|_)cvc|cc_owner|cc_last`), "card", `"null"`},
	{regexp.MustCompile(`(?i)password|passwd|(^|_)secret|rp_token|api_?key`), "secret", `"fixed:"`},
	{regexp.MustCompile(`(?i)taxvat|vat_?id|tax_?id|ssn|national_id`), "tax id", "fake:vat"},
}

var (
	reEmail = regexp.MustCompile(`^[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$`)
	rePhone = regexp.MustCompile(`^(\+|00)[0-9][0-9 ()./-]{6,18}[0-9]$|^\(?[0-9]{2,5}\)?[ /-][0-9 /-]{5,14}[0-9]$`)
	reDate  = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}`)
	reCard  = regexp.MustCompile(`^[0-9][0-9 -]{11,21}[0-9]$`)
)

// contentKind guesses what a value is: email, phone, ip, card or "".
func contentKind(v []byte) string {
	s := strings.TrimSpace(string(v))
	if len(s) < 6 || len(s) > 254 {
		return ""
	}
	switch {
	case reEmail.MatchString(s):
		return "email"
	case reCard.MatchString(s) && luhn(s):
		return "card"
	case rePhone.MatchString(s) && !reDate.MatchString(s):
		return "phone"
	}
	if a, err := netip.ParseAddr(s); err == nil && (a.Is4() || strings.Count(s, ":") >= 2) {
		return "ip"
	}
	return ""
}

// luhn checks the card-number checksum of the digits of s (13 to 19).
func luhn(s string) bool {
	var ds []int
	for _, c := range s {
		if c >= '0' && c <= '9' {
			ds = append(ds, int(c-'0'))
		}
	}
	if len(ds) < 13 || len(ds) > 19 {
		return false
	}
	sum := 0
	for i := range ds {
		d := ds[len(ds)-1-i]
		if i%2 == 1 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}

// Lint reports columns of the snapshot's tables whose name or sampled
// content looks personal but that no rule (preset or policy) covers.
// Truncated and skipped tables are not looked at; a keep rule marks a
// column as reviewed.
func Lint(ctx context.Context, s snapshot.Reader, c *Config, o LintOptions) ([]Finding, error) {
	if o.SampleRows <= 0 {
		o.SampleRows = 300
	}
	if s.Info().Kind == "postgres" {
		return lintPostgres(ctx, s, c, o)
	}
	dbs, err := readTree(ctx, s)
	if err != nil {
		return nil, err
	}
	if err := c.checkTables(dbs); err != nil {
		return nil, err
	}
	var out []Finding
	for _, d := range dbs {
		for _, t := range d.Tables {
			_, cols, err := tableSchema(ctx, s, d.Schema[t])
			if err != nil {
				return nil, err
			}
			p, err := c.plan(d.Name, t, cols)
			if err != nil {
				return nil, err
			}
			if p.action != "" {
				continue
			}
			tr := p.rule
			ruled := func(col string) bool { _, ok := tr.Columns[col]; return ok }
			fs, flagged := nameFindings(d.Name, t, cols, tr)
			out = append(out, fs...)
			if d.Data[t] == nil {
				continue
			}
			fs, err = sampleTable(ctx, s, d, t, o.SampleRows, func(col string) bool {
				c := p.byName[col]
				return ruled(col) || flagged[col] || c != nil && !c.textLike()
			})
			if err != nil {
				return nil, err
			}
			out = append(out, fs...)
		}
	}
	return out, nil
}

// nameFindings are the columns without a rule whose name looks personal.
func nameFindings(db, t string, cols []*column, tr TableRule) ([]Finding, map[string]bool) {
	var out []Finding
	flagged := map[string]bool{}
	for _, col := range cols {
		if _, ok := tr.Columns[col.name]; ok || col.typ == "pg:boolean" || col.isNumeric() && !strings.Contains(strings.ToLower(col.name), "ip") {
			continue
		}
		for _, nr := range nameRules {
			if nr.re.MatchString(col.name) {
				out = append(out, Finding{db, t, col.name, nr.kind, "column name", nr.suggest})
				flagged[col.name] = true
				break
			}
		}
	}
	return out, flagged
}

// sampler counts what sampled values of each column look like.
type sampler struct {
	header   []string
	counts   []map[string]int
	nonEmpty []int
}

func newSampler(header []string) *sampler {
	s := &sampler{header: header, counts: make([]map[string]int, len(header)), nonEmpty: make([]int, len(header))}
	for i := range s.counts {
		s.counts[i] = map[string]int{}
	}
	return s
}

func (s *sampler) add(row [][]byte) {
	for i, v := range row {
		if i >= len(s.header) || len(v) == 0 {
			continue
		}
		s.nonEmpty[i]++
		if k := contentKind(v); k != "" {
			s.counts[i][k]++
		}
	}
}

// findings: columns (but skipped ones) where a fifth of the sampled
// values (at least 2) are of one personal kind.
func (s *sampler) findings(db, t string, skip func(string) bool) []Finding {
	var out []Finding
	for i, h := range s.header {
		if skip(h) {
			continue
		}
		for _, k := range []string{"email", "card", "phone", "ip"} {
			if c := s.counts[i][k]; c >= 2 && c*5 >= s.nonEmpty[i] {
				out = append(out, Finding{db, t, h, k, fmt.Sprintf("content: %d of %d sampled values", c, s.nonEmpty[i]), suggestFor[k]})
				break
			}
		}
	}
	return out
}

var suggestFor = map[string]string{"email": "fake:email", "phone": "fake:phone", "ip": "fake:ip", "card": `"null"`}

// sampleTable reads the first n rows of table t: the reader is closed
// before the rest is read.
func sampleTable(ctx context.Context, s snapshot.Reader, d *mysql.DB, t string, n int, skip func(string) bool) ([]Finding, error) {
	rc := s.Open(ctx, d.Data[t])
	defer rc.Close()
	br := bufio.NewReaderSize(rc, 64<<10)
	header, err := mysql.ReadHeader(br)
	if err != nil {
		return nil, fmt.Errorf("%s/%s: %w", d.Name, t, err)
	}
	sm := newSampler(header)
	for range n {
		line, err := br.ReadBytes('\n')
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("%s/%s: %w", d.Name, t, err)
		}
		if len(line) == 0 && err != nil {
			break
		}
		if line[len(line)-1] == '\n' {
			line = line[:len(line)-1]
		}
		sm.add(mysql.SplitRow(line))
		if err != nil {
			break
		}
	}
	return sm.findings(d.Name, t, skip), nil
}
