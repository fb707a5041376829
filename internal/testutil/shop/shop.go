// Package shop generates a deterministic Magento-like shop database of any
// size into a MySQL or MariaDB server, for tests, demos and benchmarks:
// customers, addresses, products, quotes, orders with items, addresses and
// payments, newsletter subscribers (a latin1 table) and an event log,
// plus a table of hard cases (binary, NULL vs 'NULL', emoji, zero dates,
// DECIMAL(65,30), BIT, JSON, spatial, generated columns, a name with a
// space and a backtick), a view, a function, a procedure, a trigger and
// an event. The same Seed and Rows give the same rows, whatever the
// server and the number of jobs.
package shop

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
)

// Options configure Generate.
type Options struct {
	Database string // created; must not exist unless Replace
	Replace  bool   // drop the database first
	Rows     int    // customers and orders; other tables scale with it (default 1000)
	Seed     uint64 // default 1
	Jobs     int    // tables loaded in parallel (default 4)
	Batch    int    // rows per INSERT (default 500)
}

// Stats are the row counts written, per table.
type Stats struct {
	Tables map[string]int64
	Rows   int64
}

// OddTable is the name of the hard-cases table.
const OddTable = "odd table `name"

// base is the moment all generated times are relative to.
var base = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// tableSpec is one generated table: its DDL and a row generator.
type tableSpec struct {
	name  string
	ddl   string
	cols  string
	rows  func(n int) int
	value func(r *rand.Rand, i int, n int, b *strings.Builder)
}

// Tables returns the names of the generated base tables.
func Tables() []string {
	var out []string
	for _, t := range specs() {
		out = append(out, t.name)
	}
	return out
}

// RowCounts returns the number of rows Generate writes per table for rows.
func RowCounts(rows int) map[string]int64 {
	if rows <= 0 {
		rows = 1000
	}
	m := map[string]int64{}
	for _, t := range specs() {
		m[t.name] = int64(t.rows(rows))
	}
	return m
}

// Generate creates the database and fills it through db (which must allow
// several connections when Jobs > 1).
func Generate(ctx context.Context, db *sql.DB, o Options) (*Stats, error) {
	if o.Database == "" {
		o.Database = "shop"
	}
	if o.Rows <= 0 {
		o.Rows = 1000
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Jobs <= 0 {
		o.Jobs = 4
	}
	if o.Batch <= 0 {
		o.Batch = 500
	}
	q := quoteName(o.Database)
	if o.Replace {
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+q); err != nil {
			return nil, err
		}
	}
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+q+" CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"); err != nil {
		return nil, fmt.Errorf("create database %s: %w", q, err)
	}
	// Connections run USE: they are dropped, not returned to the
	// caller's pool (see discard).
	setup := func(ctx context.Context) (*sql.Conn, error) {
		c, err := db.Conn(ctx)
		if err != nil {
			return nil, err
		}
		for _, s := range []string{"USE " + q, "SET NAMES utf8mb4", "SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'",
			"SET SESSION foreign_key_checks = 0", "SET SESSION unique_checks = 0", "SET SESSION time_zone = '+00:00'"} {
			if _, err := c.ExecContext(ctx, s); err != nil {
				discard(c)
				return nil, fmt.Errorf("%s: %w", s, err)
			}
		}
		return c, nil
	}
	c, err := setup(ctx)
	if err != nil {
		return nil, err
	}
	for _, t := range specs() {
		if _, err := c.ExecContext(ctx, t.ddl); err != nil {
			discard(c)
			return nil, fmt.Errorf("create table %s: %w", t.name, err)
		}
	}
	discard(c)
	st := &Stats{Tables: map[string]int64{}}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.Jobs)
	counts := make([]int64, len(specs()))
	for ti, t := range specs() {
		g.Go(func() error {
			c, err := setup(gctx)
			if err != nil {
				return err
			}
			defer discard(c)
			n := t.rows(o.Rows)
			r := rand.New(rand.NewPCG(o.Seed, hashName(t.name)))
			var b strings.Builder
			head := "INSERT INTO " + quoteName(t.name) + " (" + t.cols + ") VALUES "
			for i := 0; i < n; {
				b.Reset()
				b.WriteString(head)
				for k := 0; k < o.Batch && i < n; k, i = k+1, i+1 {
					if k > 0 {
						b.WriteByte(',')
					}
					b.WriteByte('(')
					t.value(r, i, o.Rows, &b)
					b.WriteByte(')')
				}
				if _, err := c.ExecContext(gctx, b.String()); err != nil {
					return fmt.Errorf("insert into %s: %w", t.name, err)
				}
			}
			counts[ti] = int64(n)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for i, t := range specs() {
		st.Tables[t.name] = counts[i]
		st.Rows += counts[i]
	}
	c, err = setup(ctx)
	if err != nil {
		return nil, err
	}
	defer discard(c)
	for _, s := range objects {
		if _, err := c.ExecContext(ctx, s); err != nil {
			return nil, fmt.Errorf("%.60s: %w", s, err)
		}
	}
	return st, nil
}

// discard closes c without returning it to the pool, so that its session
// state (current database, sql_mode) does not leak to the caller.
func discard(c *sql.Conn) {
	_ = c.Raw(func(any) error { return driver.ErrBadConn })
	c.Close()
}

func hashName(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * 1099511628211
	}
	return h
}

func quoteName(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// str appends a string literal; the connection runs SET NAMES utf8mb4 and
// sql_mode without NO_BACKSLASH_ESCAPES.
func str(b *strings.Builder, s string) {
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\'':
			b.WriteString("''")
		case '\\':
			b.WriteString(`\\`)
		case 0:
			b.WriteString(`\0`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
}

func hexLit(b *strings.Builder, p []byte) {
	if len(p) == 0 {
		b.WriteString("''")
		return
	}
	b.WriteString("0x")
	const digits = "0123456789abcdef"
	for _, c := range p {
		b.WriteByte(digits[c>>4])
		b.WriteByte(digits[c&15])
	}
}

func num(b *strings.Builder, n int64) { b.WriteString(strconv.FormatInt(n, 10)) }

func sep(b *strings.Builder) { b.WriteByte(',') }

func null(b *strings.Builder) { b.WriteString("NULL") }

func ts(b *strings.Builder, t time.Time) { str(b, t.UTC().Format("2006-01-02 15:04:05")) }

// money appends a decimal with 4 places from cents*100.
func money(b *strings.Builder, v int64) {
	b.WriteString(strconv.FormatInt(v/10000, 10))
	b.WriteByte('.')
	s := strconv.FormatInt(v%10000, 10)
	b.WriteString(strings.Repeat("0", 4-len(s)) + s)
}

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

var (
	firstNames = []string{"Anna", "Bernd", "Chloé", "Dmitri", "Élodie", "Fatima", "Günther", "Hiroshi", "Ingrid", "José",
		"Kwame", "Łukasz", "María", "Nguyễn", "Olaf", "Priya", "Quentin", "Rūta", "Søren", "Zoë", "李", "Émile 🎉", "Ольга"}
	lastNames = []string{"Müller", "Schmidt", "O'Brien", "García", "Dubois", "Kowalski", "Nakamura", "Smith", "Ivanov",
		"de la Cruz", "Ødegaard", "Papadopoulos", "Van der Berg", "Đorđević", "王", "Back\\slash", "Tab\there"}
	cities    = []string{"Berlin", "München", "Paris", "Zürich", "Kraków", "Lisboa", "København", "Αθήνα", "東京", "New York"}
	countries = []string{"DE", "FR", "CH", "PL", "PT", "DK", "GR", "JP", "US", "AT"}
	streets   = []string{"Hauptstraße", "Rue de la Paix", "Bahnhofstr.", "ul. Długa", "Main St", "Øster Allé"}
	notes     = []string{"", "NULL", "null", `\N`, "N", "line1\nline2", "tab\tseparated", `back\slash`, "quote ' and \"",
		"emoji 😀🛒", "carriage\r\nreturn", "nul\x00byte", "trailing space ", " leading"}
	states   = []string{"new", "processing", "complete", "closed", "canceled", "holded"}
	methods  = []string{"checkmo", "banktransfer", "paypal_express", "stripe_payments", "free"}
	latinFN  = []string{"René", "Françoise", "Jürgen", "Søren", "Ana", "Ñoño", "Zoë", "plain"}
	products = []string{"T-Shirt", "Hoodie", "Mug", "Poster", "Sticker", "Cap", "Socks", "Bag"}
)

func specs() []tableSpec {
	return []tableSpec{
		{
			name: "catalog_product_entity",
			ddl: "CREATE TABLE catalog_product_entity (entity_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, " +
				"attribute_set_id SMALLINT UNSIGNED NOT NULL DEFAULT 0, type_id VARCHAR(32) NOT NULL DEFAULT 'simple', " +
				"sku VARCHAR(64) NOT NULL, name VARCHAR(255) NOT NULL, price DECIMAL(20,6) NOT NULL DEFAULT 0, " +
				"weight DECIMAL(12,4) NULL, attrs JSON NULL, flags BIT(8) NOT NULL DEFAULT b'0', image MEDIUMBLOB NULL, " +
				"created_at DATETIME NOT NULL, updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP, " +
				"UNIQUE KEY sku (sku)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
			cols: "entity_id, attribute_set_id, type_id, sku, name, price, weight, attrs, flags, image, created_at, updated_at",
			rows: func(n int) int { return max(n/10, 10) },
			value: func(r *rand.Rand, i, n int, b *strings.Builder) {
				num(b, int64(i+1))
				sep(b)
				num(b, int64(4+r.IntN(6)))
				sep(b)
				str(b, pick(r, []string{"simple", "configurable", "virtual", "bundle"}))
				sep(b)
				str(b, fmt.Sprintf("SKU-%06d", i+1))
				sep(b)
				str(b, pick(r, products)+" "+pick(r, firstNames))
				sep(b)
				b.WriteString(fmt.Sprintf("%d.%06d", r.IntN(500), r.IntN(1000000)))
				sep(b)
				if r.IntN(5) == 0 {
					null(b)
				} else {
					b.WriteString(fmt.Sprintf("%d.%04d", r.IntN(20), r.IntN(10000)))
				}
				sep(b)
				str(b, fmt.Sprintf(`{"color": %q, "size": [%d, %d], "tags": ["a\tb", "ü"], "n": null}`, pick(r, []string{"red", "grün", "青"}), r.IntN(50), r.IntN(50)))
				sep(b)
				num(b, int64(r.IntN(256)))
				sep(b)
				if r.IntN(3) == 0 {
					null(b)
				} else {
					img := make([]byte, 16+r.IntN(200))
					for k := range img {
						img[k] = byte(r.IntN(256))
					}
					hexLit(b, img)
				}
				sep(b)
				ts(b, base.Add(time.Duration(i)*time.Minute))
				sep(b)
				ts(b, base.Add(time.Duration(i)*time.Hour))
			},
		},
		{
			name: "customer_entity",
			ddl: "CREATE TABLE customer_entity (entity_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, " +
				"website_id SMALLINT UNSIGNED NULL, email VARCHAR(255) NULL, group_id SMALLINT UNSIGNED NOT NULL DEFAULT 0, " +
				"firstname VARCHAR(255) NULL, middlename VARCHAR(255) NULL, lastname VARCHAR(255) NULL, dob DATE NULL, " +
				"password_hash VARCHAR(128) NULL, created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, " +
				"updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP, is_active SMALLINT UNSIGNED NOT NULL DEFAULT 1, " +
				"gender INT UNSIGNED NULL, note TEXT NULL, UNIQUE KEY email_website (email, website_id)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
			cols: "entity_id, website_id, email, group_id, firstname, middlename, lastname, dob, password_hash, created_at, updated_at, is_active, gender, note",
			rows: func(n int) int { return n },
			value: func(r *rand.Rand, i, n int, b *strings.Builder) {
				num(b, int64(i+1))
				sep(b)
				num(b, 1)
				sep(b)
				str(b, fmt.Sprintf("customer%d@example.com", i+1))
				sep(b)
				num(b, int64(r.IntN(4)))
				sep(b)
				str(b, pick(r, firstNames))
				sep(b)
				if r.IntN(4) == 0 {
					str(b, "NULL")
				} else {
					null(b)
				}
				sep(b)
				str(b, pick(r, lastNames))
				sep(b)
				if r.IntN(3) == 0 {
					null(b)
				} else {
					str(b, base.AddDate(-18-r.IntN(60), 0, -r.IntN(365)).Format("2006-01-02"))
				}
				sep(b)
				str(b, fmt.Sprintf("%064x:3_32_2_67108864", r.Uint64()))
				sep(b)
				ts(b, base.Add(time.Duration(i)*time.Minute))
				sep(b)
				ts(b, base.Add(time.Duration(i)*time.Minute+time.Duration(r.IntN(86400))*time.Second))
				sep(b)
				num(b, int64(r.IntN(10)/9^1))
				sep(b)
				if r.IntN(2) == 0 {
					null(b)
				} else {
					num(b, int64(r.IntN(3)))
				}
				sep(b)
				if r.IntN(3) == 0 {
					null(b)
				} else {
					str(b, pick(r, notes))
				}
			},
		},
		{
			name: "customer_address_entity",
			ddl: "CREATE TABLE customer_address_entity (entity_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, " +
				"parent_id INT UNSIGNED NULL, city VARCHAR(255) NOT NULL, company VARCHAR(255) NULL, country_id VARCHAR(255) NOT NULL, " +
				"firstname VARCHAR(255) NOT NULL, lastname VARCHAR(255) NOT NULL, postcode VARCHAR(255) NULL, region VARCHAR(255) NULL, " +
				"street TEXT NOT NULL, telephone VARCHAR(255) NOT NULL, KEY parent_id (parent_id), " +
				"CONSTRAINT fk_address_customer FOREIGN KEY (parent_id) REFERENCES customer_entity (entity_id) ON DELETE CASCADE) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
			cols: "entity_id, parent_id, city, company, country_id, firstname, lastname, postcode, region, street, telephone",
			rows: func(n int) int { return n * 3 / 2 },
			value: func(r *rand.Rand, i, n int, b *strings.Builder) {
				num(b, int64(i+1))
				sep(b)
				num(b, int64(i%n+1))
				sep(b)
				str(b, pick(r, cities))
				sep(b)
				if r.IntN(3) == 0 {
					str(b, "")
				} else {
					null(b)
				}
				sep(b)
				str(b, pick(r, countries))
				sep(b)
				str(b, pick(r, firstNames))
				sep(b)
				str(b, pick(r, lastNames))
				sep(b)
				str(b, fmt.Sprintf("%05d", r.IntN(100000)))
				sep(b)
				null(b)
				sep(b)
				str(b, fmt.Sprintf("%s %d\nc/o %s", pick(r, streets), 1+r.IntN(200), pick(r, lastNames)))
				sep(b)
				str(b, fmt.Sprintf("+49 %d", 100000000+r.IntN(900000000)))
			},
		},
		{
			name: "newsletter_subscriber",
			ddl: "CREATE TABLE newsletter_subscriber (subscriber_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, " +
				"store_id SMALLINT UNSIGNED DEFAULT 0, change_status_at TIMESTAMP NULL DEFAULT NULL, customer_id INT UNSIGNED NOT NULL DEFAULT 0, " +
				"subscriber_email VARCHAR(150) NULL, subscriber_name VARCHAR(100) NULL, subscriber_status INT NOT NULL DEFAULT 0, " +
				"subscriber_confirm_code VARCHAR(32) DEFAULT 'NULL') ENGINE=InnoDB DEFAULT CHARSET=latin1",
			cols: "subscriber_id, store_id, change_status_at, customer_id, subscriber_email, subscriber_name, subscriber_status, subscriber_confirm_code",
			rows: func(n int) int { return max(n/3, 1) },
			value: func(r *rand.Rand, i, n int, b *strings.Builder) {
				num(b, int64(i+1))
				sep(b)
				num(b, 1)
				sep(b)
				if r.IntN(2) == 0 {
					null(b)
				} else {
					ts(b, base.Add(time.Duration(r.IntN(1e6))*time.Second))
				}
				sep(b)
				num(b, int64(r.IntN(n)))
				sep(b)
				str(b, fmt.Sprintf("news%d@example.org", i))
				sep(b)
				str(b, pick(r, latinFN))
				sep(b)
				num(b, int64(1+r.IntN(4)))
				sep(b)
				switch r.IntN(3) {
				case 0:
					null(b)
				case 1:
					str(b, "NULL")
				default:
					str(b, fmt.Sprintf("%016x", r.Uint64()))
				}
			},
		},
		{
			name: "quote",
			ddl: "CREATE TABLE quote (entity_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, store_id SMALLINT UNSIGNED NOT NULL DEFAULT 0, " +
				"created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, updated_at TIMESTAMP NOT NULL DEFAULT '0000-00-00 00:00:00', " +
				"is_active SMALLINT UNSIGNED DEFAULT 1, items_count INT UNSIGNED DEFAULT 0, grand_total DECIMAL(20,4) DEFAULT 0.0000, " +
				"customer_id INT UNSIGNED NULL, customer_email VARCHAR(255) NULL, reserved_order_id VARCHAR(64) NULL, " +
				"remote_ip VARCHAR(45) NULL, KEY customer (customer_id, store_id, is_active)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
			cols: "entity_id, store_id, created_at, updated_at, is_active, items_count, grand_total, customer_id, customer_email, reserved_order_id, remote_ip",
			rows: func(n int) int { return max(n/2, 1) },
			value: func(r *rand.Rand, i, n int, b *strings.Builder) {
				num(b, int64(i+1))
				sep(b)
				num(b, 1)
				sep(b)
				ts(b, base.Add(time.Duration(i)*time.Minute))
				sep(b)
				if r.IntN(4) == 0 {
					str(b, "0000-00-00 00:00:00")
				} else {
					ts(b, base.Add(time.Duration(i)*time.Minute+time.Hour))
				}
				sep(b)
				num(b, int64(r.IntN(2)))
				sep(b)
				num(b, int64(r.IntN(8)))
				sep(b)
				money(b, r.Int64N(1e8))
				sep(b)
				if r.IntN(3) == 0 {
					null(b)
				} else {
					num(b, int64(1+r.IntN(n)))
				}
				sep(b)
				str(b, fmt.Sprintf("q%d@example.com", i))
				sep(b)
				null(b)
				sep(b)
				str(b, fmt.Sprintf("192.0.2.%d", r.IntN(256)))
			},
		},
		{
			name: "report_event",
			ddl: "CREATE TABLE report_event (event_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, " +
				"logged_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, event_type_id SMALLINT UNSIGNED NOT NULL DEFAULT 0, " +
				"object_id INT UNSIGNED NOT NULL DEFAULT 0, subject_id INT UNSIGNED NOT NULL DEFAULT 0, subtype SMALLINT UNSIGNED NOT NULL DEFAULT 0, " +
				"store_id SMALLINT UNSIGNED NOT NULL, user_agent VARCHAR(255) NULL, KEY event_type_id (event_type_id)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
			cols: "event_id, logged_at, event_type_id, object_id, subject_id, subtype, store_id, user_agent",
			rows: func(n int) int { return n * 2 },
			value: func(r *rand.Rand, i, n int, b *strings.Builder) {
				num(b, int64(i+1))
				sep(b)
				ts(b, base.Add(time.Duration(i)*7*time.Second))
				sep(b)
				num(b, int64(1+r.IntN(6)))
				sep(b)
				num(b, int64(r.IntN(n)))
				sep(b)
				num(b, int64(r.IntN(n)))
				sep(b)
				num(b, int64(r.IntN(2)))
				sep(b)
				num(b, 1)
				sep(b)
				str(b, pick(r, []string{"Mozilla/5.0 (X11; Linux x86_64)", "curl/8.5.0", "Googlebot/2.1", ""}))
			},
		},
		{
			name: "sales_order",
			ddl: "CREATE TABLE sales_order (entity_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, state VARCHAR(32) NULL, status VARCHAR(32) NULL, " +
				"protect_code VARCHAR(255) NULL, customer_id INT UNSIGNED NULL, increment_id VARCHAR(32) NULL, base_grand_total DECIMAL(20,4) NULL, " +
				"grand_total DECIMAL(20,4) NULL, subtotal DECIMAL(20,4) NULL, tax_amount DECIMAL(65,30) NULL, total_qty_ordered DECIMAL(12,4) NULL, " +
				"customer_email VARCHAR(128) NULL, customer_firstname VARCHAR(128) NULL, customer_lastname VARCHAR(128) NULL, " +
				"order_currency_code VARCHAR(3) NULL, remote_ip VARCHAR(45) NULL, customer_note TEXT NULL, " +
				"created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP, " +
				"UNIQUE KEY increment_id (increment_id), KEY customer_id (customer_id), KEY created_at (created_at)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
			cols: "entity_id, state, status, protect_code, customer_id, increment_id, base_grand_total, grand_total, subtotal, tax_amount, " +
				"total_qty_ordered, customer_email, customer_firstname, customer_lastname, order_currency_code, remote_ip, customer_note, created_at, updated_at",
			rows: func(n int) int { return n },
			value: func(r *rand.Rand, i, n int, b *strings.Builder) {
				num(b, int64(i+1))
				sep(b)
				st := pick(r, states)
				str(b, st)
				sep(b)
				str(b, st)
				sep(b)
				str(b, fmt.Sprintf("%x", r.Uint32()))
				sep(b)
				if r.IntN(4) == 0 {
					null(b) // guest
				} else {
					num(b, int64(1+r.IntN(n)))
				}
				sep(b)
				str(b, fmt.Sprintf("%09d", 100000000+i))
				sep(b)
				sub := r.Int64N(5e7)
				money(b, sub+sub/5)
				sep(b)
				money(b, sub+sub/5)
				sep(b)
				money(b, sub)
				sep(b)
				b.WriteString(fmt.Sprintf("%d.%030d", sub/50000, r.Int64N(1e18)))
				sep(b)
				money(b, int64(1+r.IntN(10))*10000)
				sep(b)
				str(b, fmt.Sprintf("customer%d@example.com", 1+r.IntN(n)))
				sep(b)
				str(b, pick(r, firstNames))
				sep(b)
				str(b, pick(r, lastNames))
				sep(b)
				str(b, pick(r, []string{"EUR", "USD", "CHF"}))
				sep(b)
				str(b, fmt.Sprintf("198.51.100.%d", r.IntN(256)))
				sep(b)
				if r.IntN(2) == 0 {
					null(b)
				} else {
					str(b, pick(r, notes))
				}
				sep(b)
				ts(b, base.Add(time.Duration(i)*time.Minute))
				sep(b)
				ts(b, base.Add(time.Duration(i)*time.Minute+time.Duration(r.IntN(1e5))*time.Second))
			},
		},
		{
			name: "sales_order_address",
			ddl: "CREATE TABLE sales_order_address (entity_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, parent_id INT UNSIGNED NULL, " +
				"region VARCHAR(255) NULL, postcode VARCHAR(255) NULL, lastname VARCHAR(255) NULL, street VARCHAR(255) NULL, city VARCHAR(255) NULL, " +
				"email VARCHAR(255) NULL, telephone VARCHAR(255) NULL, country_id VARCHAR(2) NULL, firstname VARCHAR(255) NULL, " +
				"address_type VARCHAR(255) NULL, vat_id TEXT NULL, KEY parent_id (parent_id), " +
				"CONSTRAINT fk_order_address FOREIGN KEY (parent_id) REFERENCES sales_order (entity_id) ON DELETE CASCADE) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
			cols: "entity_id, parent_id, region, postcode, lastname, street, city, email, telephone, country_id, firstname, address_type, vat_id",
			rows: func(n int) int { return 2 * n },
			value: func(r *rand.Rand, i, n int, b *strings.Builder) {
				num(b, int64(i+1))
				sep(b)
				num(b, int64(i/2+1))
				sep(b)
				null(b)
				sep(b)
				str(b, fmt.Sprintf("%05d", r.IntN(100000)))
				sep(b)
				str(b, pick(r, lastNames))
				sep(b)
				str(b, fmt.Sprintf("%s %d", pick(r, streets), 1+r.IntN(300)))
				sep(b)
				str(b, pick(r, cities))
				sep(b)
				str(b, fmt.Sprintf("o%d@example.com", i/2))
				sep(b)
				str(b, fmt.Sprintf("+33 %d", r.IntN(1e9)))
				sep(b)
				str(b, pick(r, countries))
				sep(b)
				str(b, pick(r, firstNames))
				sep(b)
				str(b, []string{"billing", "shipping"}[i%2])
				sep(b)
				if r.IntN(5) == 0 {
					str(b, "")
				} else {
					null(b)
				}
			},
		},
		{
			name: "sales_order_item",
			ddl: "CREATE TABLE sales_order_item (item_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, order_id INT UNSIGNED NOT NULL DEFAULT 0, " +
				"product_id INT UNSIGNED NULL, product_type VARCHAR(255) NULL, product_options LONGTEXT NULL, sku VARCHAR(255) NULL, name VARCHAR(255) NULL, " +
				"qty_ordered DECIMAL(12,4) DEFAULT 0.0000, price DECIMAL(20,4) NOT NULL DEFAULT 0.0000, row_total DECIMAL(20,4) NOT NULL DEFAULT 0.0000, " +
				"created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, KEY order_id (order_id), " +
				"CONSTRAINT fk_item_order FOREIGN KEY (order_id) REFERENCES sales_order (entity_id) ON DELETE CASCADE) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
			cols: "item_id, order_id, product_id, product_type, product_options, sku, name, qty_ordered, price, row_total, created_at",
			rows: func(n int) int { return 3 * n },
			value: func(r *rand.Rand, i, n int, b *strings.Builder) {
				num(b, int64(i+1))
				sep(b)
				num(b, int64(i/3+1))
				sep(b)
				pid := 1 + r.IntN(max(n/10, 10))
				num(b, int64(pid))
				sep(b)
				str(b, "simple")
				sep(b)
				str(b, fmt.Sprintf(`{"info_buyRequest":{"qty":%d,"product":"%d","options":{"note":"h\u00e9 \"x\""}}}`, 1+r.IntN(5), pid))
				sep(b)
				str(b, fmt.Sprintf("SKU-%06d", pid))
				sep(b)
				str(b, pick(r, products))
				sep(b)
				q := int64(1 + r.IntN(5))
				money(b, q*10000)
				sep(b)
				p := r.Int64N(1e7)
				money(b, p)
				sep(b)
				money(b, p*q)
				sep(b)
				ts(b, base.Add(time.Duration(i/3)*time.Minute))
			},
		},
		{
			name: "sales_order_payment",
			ddl: "CREATE TABLE sales_order_payment (entity_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, parent_id INT UNSIGNED NOT NULL, " +
				"amount_paid DECIMAL(20,4) NULL, amount_ordered DECIMAL(20,4) NULL, method VARCHAR(128) NULL, cc_last_4 VARCHAR(100) NULL, " +
				"cc_exp_month VARCHAR(12) NULL, additional_information TEXT NULL, last_trans_id VARCHAR(255) NULL, KEY parent_id (parent_id)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
			cols: "entity_id, parent_id, amount_paid, amount_ordered, method, cc_last_4, cc_exp_month, additional_information, last_trans_id",
			rows: func(n int) int { return n },
			value: func(r *rand.Rand, i, n int, b *strings.Builder) {
				num(b, int64(i+1))
				sep(b)
				num(b, int64(i+1))
				sep(b)
				a := r.Int64N(1e8)
				if r.IntN(4) == 0 {
					null(b)
				} else {
					money(b, a)
				}
				sep(b)
				money(b, a)
				sep(b)
				m := pick(r, methods)
				str(b, m)
				sep(b)
				if m == "stripe_payments" {
					str(b, fmt.Sprintf("%04d", r.IntN(10000)))
				} else {
					null(b)
				}
				sep(b)
				str(b, strconv.Itoa(1+r.IntN(12)))
				sep(b)
				str(b, fmt.Sprintf(`{"method_title":"%s","raw":"a\\tb\\n"}`, m))
				sep(b)
				if r.IntN(2) == 0 {
					null(b)
				} else {
					str(b, fmt.Sprintf("txn_%x", r.Uint64()))
				}
			},
		},
		{
			name: OddTable,
			ddl: "CREATE TABLE `odd table ``name` (id INT NOT NULL PRIMARY KEY, b BLOB NULL, s VARCHAR(64) CHARACTER SET utf8mb4 NULL, " +
				"l VARCHAR(64) CHARACTER SET latin1 NULL, bin BINARY(4) NULL, d DATE NULL, dt DATETIME(6) NULL, t TIME NULL, y YEAR NULL, " +
				"dec65 DECIMAL(65,30) NULL, f FLOAT NULL, dbl DOUBLE NULL, bit1 BIT(1) NULL, bit64 BIT(64) NULL, j JSON NULL, " +
				"e ENUM('a','b','c d') NULL, st SET('x','y','z') NULL, g GEOMETRY NULL, " +
				"v_len INT AS (LENGTH(b)) VIRTUAL, s_upper VARCHAR(64) AS (UPPER(s)) STORED, " +
				"`col with space` INT NULL, `ëxtra` VARCHAR(8) NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
			cols: "id, b, s, l, bin, d, dt, t, y, dec65, f, dbl, bit1, bit64, j, e, st, g, `col with space`, `ëxtra`",
			rows: func(n int) int { return 64 },
			value: func(r *rand.Rand, i, n int, b *strings.Builder) {
				num(b, int64(i+1))
				sep(b)
				switch i {
				case 0:
					all := make([]byte, 256)
					for k := range all {
						all[k] = byte(k)
					}
					hexLit(b, all)
				case 1:
					null(b)
				case 2:
					str(b, "")
				case 3:
					str(b, "NULL")
				case 4:
					str(b, `\N`)
				default:
					p := make([]byte, r.IntN(40))
					for k := range p {
						p[k] = byte(r.IntN(256))
					}
					hexLit(b, p)
				}
				sep(b)
				switch i % 6 {
				case 0:
					null(b)
				case 1:
					str(b, "NULL")
				case 2:
					str(b, "")
				default:
					str(b, pick(r, notes)+" "+pick(r, firstNames))
				}
				sep(b)
				str(b, pick(r, latinFN))
				sep(b)
				if i%2 == 0 {
					hexLit(b, []byte{byte(i), 0, 0, 0})
				} else {
					null(b)
				}
				sep(b)
				switch i % 4 {
				case 0:
					str(b, "0000-00-00")
				case 1:
					str(b, "2024-02-00")
				case 2:
					null(b)
				default:
					str(b, "9999-12-31")
				}
				sep(b)
				if i%3 == 0 {
					str(b, "0000-00-00 00:00:00")
				} else {
					str(b, fmt.Sprintf("2024-03-01 12:34:56.%06d", r.IntN(1e6)))
				}
				sep(b)
				str(b, pick(r, []string{"-838:59:59", "00:00:00", "25:00:01", "838:59:59"}))
				sep(b)
				num(b, int64(1901+r.IntN(255)))
				sep(b)
				b.WriteString(pick(r, []string{"-99999999999999999999999999999999999.999999999999999999999999999999",
					"0.000000000000000000000000000001", "12345.678900000000000000000000000000", "0"}))
				sep(b)
				b.WriteString(pick(r, []string{"3.4e38", "-1.17549e-38", "0.1", "1e-10"}))
				sep(b)
				b.WriteString(pick(r, []string{"1.7976931348623157e308", "2.2250738585072014e-308", "0.1", "-0"}))
				sep(b)
				b.WriteString(pick(r, []string{"b'0'", "b'1'", "NULL"}))
				sep(b)
				b.WriteString(fmt.Sprintf("%d", r.Uint64()>>1))
				sep(b)
				str(b, pick(r, []string{`{"a": 1, "b": [true, false, null], "c": "ü😀"}`, `[]`, `"string"`, `{"nested": {"x": 1.5e300}}`, `null`}))
				sep(b)
				str(b, pick(r, []string{"a", "b", "c d", ""}))
				sep(b)
				str(b, pick(r, []string{"x", "x,z", "", "x,y,z"}))
				sep(b)
				if i%5 == 0 {
					null(b)
				} else {
					b.WriteString(fmt.Sprintf("ST_GeomFromText('POINT(%d %d)')", r.IntN(100), r.IntN(100)))
				}
				sep(b)
				num(b, int64(r.IntN(1000)))
				sep(b)
				str(b, pick(r, []string{"😀", "é", "", "x"}))
			},
		},
	}
}

// objects are created after the data: a function, a view using it, a
// procedure, a trigger and a (disabled) event.
var objects = []string{
	"CREATE FUNCTION order_total_with_tax(total DECIMAL(20,4)) RETURNS DECIMAL(20,4) DETERMINISTIC RETURN total * 1.19",
	"CREATE VIEW customer_orders AS SELECT c.entity_id AS customer_id, c.email, COUNT(o.entity_id) AS orders, " +
		"order_total_with_tax(COALESCE(SUM(o.grand_total), 0)) AS total_with_tax FROM customer_entity c " +
		"LEFT JOIN sales_order o ON o.customer_id = c.entity_id GROUP BY c.entity_id, c.email",
	"CREATE VIEW `view on view` AS SELECT customer_id, orders FROM customer_orders WHERE orders > 1",
	"CREATE PROCEDURE customer_count(OUT n INT) READS SQL DATA BEGIN SELECT COUNT(*) INTO n FROM customer_entity; END",
	"CREATE TRIGGER quote_touch BEFORE UPDATE ON quote FOR EACH ROW SET NEW.updated_at = CURRENT_TIMESTAMP",
	"CREATE EVENT purge_report_event ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' DISABLE " +
		"DO DELETE FROM report_event WHERE logged_at < NOW() - INTERVAL 90 DAY",
}
