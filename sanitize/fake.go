package sanitize

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"math/big"
	"strings"
	"unicode/utf8"
)

// Built-in word lists for fakes: small, ASCII only (they fit any column
// character set) and fictional.
var (
	firstNames = []string{"Alva", "Brody", "Cyra", "Dorian", "Elska", "Fenwick", "Galen", "Halsey", "Ione", "Jarek",
		"Kestrel", "Linnea", "Mabry", "Nolan", "Orla", "Perrin", "Quill", "Rowan", "Sable", "Tamsin", "Ulric",
		"Vesna", "Wren", "Xenia", "Yara", "Zev", "Arlo", "Bryn", "Caspian", "Delphine", "Emrys", "Freya"}
	lastNames = []string{"Ashdown", "Birchall", "Cobbett", "Dunmore", "Ellery", "Fairweather", "Greaves", "Hollins",
		"Ingleby", "Jessop", "Kirkby", "Lockwood", "Marlow", "Northcott", "Oakes", "Pennock", "Quarrie", "Redfern",
		"Stainer", "Thursby", "Underhill", "Vickery", "Whitlock", "Yardley", "Abbotsley", "Brackwell", "Coldridge", "Dewhirst"}
	streetNames = []string{"Elm Row", "Harbour Lane", "Kiln Road", "Mill Close", "Orchard Way", "Quarry Hill",
		"Rope Walk", "Saltmarsh Drive", "Tanner Street", "Weaver Court", "Larch Avenue", "Foundry Yard"}
	cityNames = []string{"Northvale", "Eastmere", "Westbrook", "Southcombe", "Ashby Fen", "Brightwater", "Coldharbour",
		"Dunwich Vale", "Elmsford", "Farleigh", "Greyhaven", "Hollowmere"}
	regionNames  = []string{"Northshire", "Eastland", "Westmark", "Southdown", "Midvale", "Highmoor"}
	countryCodes = []string{"DE", "FR", "NL", "AT", "BE", "DK", "SE", "IE"}
	companyEnds  = []string{"Ltd", "GmbH", "& Co", "Partners", "Holdings", "Trading", "Works", "Group"}
	loremWords   = []string{"lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit", "sed", "do", "eiusmod", "tempor"}
	emailDomains = []string{"example.com", "example.net", "example.org"}
	lowerBase32  = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)
)

// faker derives fakes from a keyed HMAC-SHA256 of the original value.
// Not safe for concurrent use (one per export).
type faker struct {
	key   []byte
	mac   hash.Hash
	cache map[string]string // kind 0x00 value 0x00 max -> fake
	ckey  []byte
}

// sum is HMAC-SHA256(key, kind 0x00 value): the same original gives the
// same fake of a kind in every table and export with the same key.
func (f *faker) sum(kind string, v []byte) [32]byte {
	if f.mac == nil {
		f.mac = hmac.New(sha256.New, f.key)
	}
	m := f.mac
	m.Reset()
	m.Write([]byte(kind))
	m.Write([]byte{0})
	m.Write(v)
	var out [32]byte
	m.Sum(out[:0])
	return out
}

// cachedFake is fake with a bounded cache: names, cities and the same
// customer's email repeat across rows and tables.
func (f *faker) cachedFake(kind string, v []byte, max int) string {
	if len(v) > 256 {
		return f.fake(kind, v, max)
	}
	f.ckey = append(append(append(append(f.ckey[:0], kind...), 0), v...), byte(max), byte(max>>8), byte(max>>16))
	if s, ok := f.cache[string(f.ckey)]; ok {
		return s
	}
	s := f.fake(kind, v, max)
	if f.cache == nil {
		f.cache = make(map[string]string, 1<<16)
	} else if len(f.cache) >= 1<<16 {
		clear(f.cache)
	}
	f.cache[string(f.ckey)] = s
	return s
}

func pickWord(h [32]byte, i int, list []string) string {
	return list[binary.BigEndian.Uint32(h[i*4:])%uint32(len(list))]
}

func digits(h [32]byte, off, n int) string {
	var b [24]byte
	x := binary.BigEndian.Uint64(h[off%24:])
	for i := range n {
		if i == 18 {
			x = binary.BigEndian.Uint64(h[(off+8)%24:])
		}
		b[i] = byte('0' + x%10)
		x /= 10
	}
	return string(b[:n])
}

// hashHex is the hash rule's value: hex of the keyed hash.
func (f *faker) hashHex(v []byte) string {
	h := f.sum("hash", v)
	return hex.EncodeToString(h[:])
}

// fake returns the fake of kind for v fitted to max characters (0: no
// limit). Kinds that must stay unique (email, username, url, iban) carry
// enough hash bits (60) that distinct originals practically never meet.
func (f *faker) fake(kind string, v []byte, max int) string {
	h := f.sum(kind, v)
	first, last := pickWord(h, 0, firstNames), pickWord(h, 1, lastNames)
	tag := lowerBase32.EncodeToString(h[8:16])[:12] // 60 bits
	var s string
	switch kind {
	case "email":
		local := strings.ToLower(first + "." + last + "." + tag)
		domain := pickWord(h, 4, emailDomains)
		s = local + "@" + domain
		if max > 0 && len(s) > max {
			s = tag + "@" + domain
			if len(s) > max {
				s = tag + "@x.io"
			}
		}
	case "first_name":
		s = first
	case "last_name":
		s = last
	case "name", "full_name":
		s = first + " " + last
	case "username":
		s = strings.ToLower(first) + "_" + tag
	case "company":
		s = last + " " + pickWord(h, 2, companyEnds)
	case "phone":
		s = "+1 555 " + digits(h, 16, 3) + " " + digits(h, 20, 4)
	case "street":
		s = fmt.Sprintf("%s %d", pickWord(h, 2, streetNames), 1+h[12]%150)
	case "address":
		s = fmt.Sprintf("%s %d, %s %s", pickWord(h, 2, streetNames), 1+h[12]%150, digits(h, 16, 5), pickWord(h, 3, cityNames))
	case "city":
		s = pickWord(h, 3, cityNames)
	case "postcode":
		s = digits(h, 16, 5)
	case "region":
		s = pickWord(h, 3, regionNames)
	case "country":
		s = pickWord(h, 3, countryCodes)
	case "ip", "ipv4":
		s = fmt.Sprintf("10.%d.%d.%d", h[16], h[17], 1+h[18]%254)
	case "ipv6":
		s = fmt.Sprintf("fd00:%x:%x:%x::%x", binary.BigEndian.Uint16(h[16:]), binary.BigEndian.Uint16(h[18:]),
			binary.BigEndian.Uint16(h[20:]), 1+binary.BigEndian.Uint16(h[22:])%0xfffe)
	case "url":
		s = "https://" + pickWord(h, 4, emailDomains) + "/" + tag
	case "iban":
		s = iban(digits(h, 12, 18))
	case "vat":
		s = pickWord(h, 3, countryCodes) + digits(h, 16, 9)
	case "date":
		days := int(binary.BigEndian.Uint32(h[16:]) % (55 * 365))
		s = dateFromDays(days)
	case "text":
		n := 3 + int(h[20]%6)
		words := make([]string, n)
		for i := range words {
			words[i] = loremWords[int(h[i])%len(loremWords)]
		}
		s = strings.Join(words, " ")
	default:
		s = tag
	}
	return fit(s, max)
}

// iban makes a German-format IBAN with valid check digits from 18 digits.
func iban(bban string) string {
	n, _ := new(big.Int).SetString(bban+"131400", 10) // D=13 E=14, 00
	check := 98 - new(big.Int).Mod(n, big.NewInt(97)).Int64()
	return fmt.Sprintf("DE%02d%s", check, bban)
}

func dateFromDays(days int) string {
	y, d := 1950+days/365, days%365
	month, day := d/28%12+1, d%28+1
	return fmt.Sprintf("%04d-%02d-%02d", y, month, day)
}

// fit truncates s to max characters (0: no limit) on a character boundary.
func fit(s string, max int) string {
	if max <= 0 || utf8.RuneCountInString(s) <= max {
		return s
	}
	n := 0
	for i := range s {
		if n == max {
			return s[:i]
		}
		n++
	}
	return s
}
