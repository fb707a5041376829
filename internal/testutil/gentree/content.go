package gentree

import (
	"encoding/binary"
	"io"
	"math/rand/v2"
	"strconv"
)

const bufSize = 1 << 20

// fillRandom fills b with incompressible pseudo-random bytes.
func fillRandom(src *rand.PCG, b []byte) {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], src.Uint64())
	}
	if i < len(b) {
		var t [8]byte
		binary.LittleEndian.PutUint64(t[:], src.Uint64())
		copy(b[i:], t[:])
	}
}

// writeRandom writes n random bytes to w using buf as scratch space.
func writeRandom(w io.Writer, src *rand.PCG, n int64, buf []byte) error {
	for n > 0 {
		b := buf
		if int64(len(b)) > n {
			b = b[:n]
		}
		fillRandom(src, b)
		if _, err := w.Write(b); err != nil {
			return err
		}
		n -= int64(len(b))
	}
	return nil
}

var (
	firstNames = []string{"Anna", "Ben", "Clara", "David", "Elif", "Finn", "Greta", "Hannes", "Ines", "Jonas",
		"Katarzyna", "Luca", "Mia", "Noah", "Olga", "Paul", "Quentin", "Rosa", "Søren", "Tomás", "Ursula",
		"Viktor", "Wen", "Xaver", "Yuki", "Zoë", "François", "José", "Łukasz", "Ömer"}
	lastNames = []string{"Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
		"Hoffmann", "Schulz", "Koch", "Richter", "Klein", "Wolf", "Neumann", "Schwarz", "Zimmermann",
		"O'Brien", "García", "Rossi", "Nowak", "Yılmaz", "Dubois", "Jansen", "Nakamura", "Kowalski"}
	emailNames = []string{"anna", "ben", "clara", "david", "elif", "finn", "greta", "hannes", "ines", "jonas",
		"kasia", "luca", "mia", "noah", "olga", "paul", "q", "rosa", "soren", "tomas", "uschi", "viktor",
		"wen", "xaver", "yuki", "zoe"}
	domains = []string{"example.com", "example.org", "mail.example.net", "shop.example", "post.example.de"}
	streets = []string{"Hauptstraße", "Bahnhofstraße", "Gartenweg", "Schillerstraße", "Goethestraße",
		"Lindenallee", "Am Markt", "Rue de la Paix", "Via Roma", "High Street", "Kirchgasse", "Ringstraße"}
	cities = []string{"Berlin", "Hamburg", "München", "Köln", "Frankfurt am Main", "Stuttgart", "Düsseldorf",
		"Leipzig", "Zürich", "Wien", "Paris", "Milano", "Kraków", "İstanbul", "東京", "Amsterdam"}
	products = []string{"T-Shirt \"Basic\"", "Kaffeebecher", "Wanderschuh", "Regenjacke", "USB-C Kabel 2m",
		"Notizbuch A5", "Rucksack 30l", "Thermoskanne", "Sonnenbrille", "Laufsocken (3er Pack)"}
	words = []string{"alpha", "bravo", "cache", "delta", "export", "foto", "grafik", "import", "katalog",
		"media", "produkt", "rechnung", "static", "thumb", "upload", "var", "wysiwyg", "xml", "zubehör"}
)

func pick(r *rand.Rand, s []string) string { return s[r.IntN(len(s))] }

// sqlGen produces SQL-dump-like text (compressible, with PII-like values).
type sqlGen struct {
	r    *rand.Rand
	id   int64
	line []byte
}

func (g *sqlGen) appendRow(b []byte) []byte {
	r := g.r
	g.id++
	switch g.id % 3 {
	case 0:
		b = append(b, "INSERT INTO `sales_order` (`entity_id`,`customer_email`,`grand_total`,`created_at`,`status`) VALUES ("...)
		b = strconv.AppendInt(b, g.id, 10)
		b = append(b, ",'"...)
		b = append(b, pick(r, emailNames)...)
		b = append(b, '.')
		b = append(b, pick(r, emailNames)...)
		b = strconv.AppendInt(b, int64(r.IntN(1000)), 10)
		b = append(b, '@')
		b = append(b, pick(r, domains)...)
		b = append(b, "',"...)
		b = strconv.AppendInt(b, int64(r.IntN(100000)), 10)
		b = append(b, '.')
		b = strconv.AppendInt(b, int64(10+r.IntN(90)), 10)
		b = append(b, ",'"...)
		b = appendDate(b, r)
		b = append(b, "','"...)
		b = append(b, [...]string{"pending", "processing", "complete", "canceled"}[r.IntN(4)]...)
		b = append(b, "');\n"...)
	case 1:
		b = append(b, "INSERT INTO `sales_order_item` (`item_id`,`order_id`,`name`,`qty`,`price`) VALUES ("...)
		b = strconv.AppendInt(b, g.id, 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, g.id-1, 10)
		b = append(b, ",'"...)
		for _, c := range []byte(pick(r, products)) {
			if c == '"' || c == '\'' {
				b = append(b, '\\')
			}
			b = append(b, c)
		}
		b = append(b, "',"...)
		b = strconv.AppendInt(b, int64(1+r.IntN(5)), 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, int64(r.IntN(500)), 10)
		b = append(b, ".99);\n"...)
	default:
		b = append(b, "INSERT INTO `customer_entity` (`entity_id`,`firstname`,`lastname`,`email`,`street`,`postcode`,`city`,`telephone`,`created_at`) VALUES ("...)
		b = strconv.AppendInt(b, g.id, 10)
		b = append(b, ",'"...)
		b = append(b, pick(r, firstNames)...)
		b = append(b, "','"...)
		for _, c := range []byte(pick(r, lastNames)) {
			if c == '\'' {
				b = append(b, '\\')
			}
			b = append(b, c)
		}
		b = append(b, "','"...)
		b = append(b, pick(r, emailNames)...)
		b = strconv.AppendInt(b, int64(r.IntN(10000)), 10)
		b = append(b, '@')
		b = append(b, pick(r, domains)...)
		b = append(b, "','"...)
		b = append(b, pick(r, streets)...)
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(1+r.IntN(200)), 10)
		b = append(b, "','"...)
		b = strconv.AppendInt(b, int64(10000+r.IntN(89999)), 10)
		b = append(b, "','"...)
		b = append(b, pick(r, cities)...)
		b = append(b, "','+49 "...)
		b = strconv.AppendInt(b, int64(100+r.IntN(900)), 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(1000000+r.IntN(8999999)), 10)
		b = append(b, "','"...)
		b = appendDate(b, r)
		b = append(b, "');\n"...)
	}
	return b
}

func appendDate(b []byte, r *rand.Rand) []byte {
	b = strconv.AppendInt(b, int64(2015+r.IntN(10)), 10)
	b = append(b, '-')
	b = append2(b, 1+r.IntN(12))
	b = append(b, '-')
	b = append2(b, 1+r.IntN(28))
	b = append(b, ' ')
	b = append2(b, r.IntN(24))
	b = append(b, ':')
	b = append2(b, r.IntN(60))
	b = append(b, ':')
	b = append2(b, r.IntN(60))
	return b
}

func append2(b []byte, n int) []byte {
	return append(b, byte('0'+n/10), byte('0'+n%10))
}

const sqlHeader = "-- lifeboat gentree SQL dump\nSET NAMES utf8mb4;\nSET FOREIGN_KEY_CHECKS=0;\n"

// writeSQL writes exactly n bytes of SQL-like text to w (the last
// statement may be cut off) using buf as scratch space.
func writeSQL(w io.Writer, r *rand.Rand, n int64, buf []byte) error {
	g := &sqlGen{r: r, id: int64(r.IntN(1000)) * 1000}
	b := append(buf[:0], sqlHeader...)
	for n > 0 {
		for len(b) < cap(buf)-1024 && int64(len(b)) < n {
			b = g.appendRow(b)
		}
		if int64(len(b)) > n {
			b = b[:n]
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
		n -= int64(len(b))
		b = buf[:0]
	}
	return nil
}
