package sanitize

import (
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/maphash"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/lifeboat-backup/lifeboat/policies"
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
	firstLower   = lowerAll(firstNames)
	lastLower    = lowerAll(lastNames)
)

func lowerAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToLower(s)
	}
	return out
}

// faker derives fakes from a keyed HMAC-SHA256 of the original value.
// Not safe for concurrent use (one per export worker).
type faker struct {
	key     []byte
	mac     *keyedMAC // HMAC-SHA256 with key
	in      []byte    // HMAC input: kind 0x00 value
	cache   *fakeCache
	kinds   []kindStats // by fake kind (fakeKind)
	ckey    []byte
	scratch []byte // an uncached fake, valid until the next call
}

// sum is HMAC-SHA256(key, kind 0x00 value): the same original gives the
// same fake of a kind in every table and export with the same key.
func (f *faker) sum(kind string, v []byte) [32]byte {
	if f.mac == nil {
		f.mac = newKeyedMAC(f.key)
	}
	f.in = append(append(append(f.in[:0], kind...), 0), v...)
	return f.mac.sum(f.in)
}

// fakeKind is the index of a fake kind in policies.FakeKinds (-1: none).
func fakeKind(kind string) int { return slices.Index(policies.FakeKinds, kind) }

// cachedFake is fake of kind policies.FakeKinds[kid] with a small cache:
// names, cities and the same customer's email repeat across rows and
// tables. A kind whose values rarely repeat (phones, postcodes) stops
// using the cache after a trial: a miss costs a lookup and an insert on
// top of the fake. The result is valid until the next call; callers
// must not modify it.
func (f *faker) cachedFake(kid int, v []byte, max int) []byte {
	kind := policies.FakeKinds[kid]
	if f.kinds == nil {
		f.kinds = make([]kindStats, len(policies.FakeKinds))
	}
	ks := &f.kinds[kid]
	if len(v) > 256 || ks.off {
		f.scratch = f.appendFake(f.scratch[:0], kind, v, max)
		return f.scratch
	}
	f.ckey = append(append(f.ckey[:0], byte(kid), byte(max), byte(max>>8), byte(max>>16)), v...)
	ks.lookups++
	if f.cache == nil {
		f.cache = newFakeCache()
	}
	e := f.cache.slot(f.ckey)
	if string(e.key) == string(f.ckey) {
		ks.hits++
		return e.val
	}
	if ks.lookups == cacheTrial && ks.hits < cacheTrial/4 {
		ks.off = true
	}
	e.key = append(e.key[:0], f.ckey...)
	e.val = f.appendFake(e.val[:0], kind, v, max)
	return e.val
}

// kindStats decide whether a fake kind is worth caching.
type kindStats struct {
	lookups, hits int
	off           bool
}

// cacheTrial is the number of lookups after which a kind with fewer than
// a quarter hits stops using the cache.
const cacheTrial = 2048

// cacheSize bounds the fake cache: small enough to stay in the CPU
// caches (a miss costs about as much as making the fake).
const cacheSize = 1 << 12

// fakeCache is a direct-mapped cache of fakes: a key (kind, max, value)
// has one slot, and a miss overwrites it, reusing its buffers (no
// allocation once warm). Only speed depends on the seed.
type fakeCache struct {
	seed  maphash.Seed
	slots [cacheSize]cacheSlot
}

type cacheSlot struct{ key, val []byte }

func newFakeCache() *fakeCache { return &fakeCache{seed: maphash.MakeSeed()} }

func (c *fakeCache) slot(key []byte) *cacheSlot {
	return &c.slots[maphash.Bytes(c.seed, key)&(cacheSize-1)]
}

func pickWord(h [32]byte, i int, list []string) string {
	return list[binary.BigEndian.Uint32(h[i*4:])%uint32(len(list))]
}

func appendDigits(dst []byte, h [32]byte, off, n int) []byte {
	x := binary.BigEndian.Uint64(h[off%24:])
	for i := range n {
		if i == 18 {
			x = binary.BigEndian.Uint64(h[(off+8)%24:])
		}
		dst = append(dst, byte('0'+x%10))
		x /= 10
	}
	return dst
}

func digits(h [32]byte, off, n int) string { return string(appendDigits(nil, h, off, n)) }

// tagLen is the length of a fake's tag: 60 bits in base32.
const tagLen = 12

// hashHex is the hash rule's value: hex of the keyed hash.
func (f *faker) hashHex(v []byte) string { return string(f.appendHashHex(nil, v, 0)) }

// appendHashHex appends hashHex(v) cut to max characters (0: no limit).
func (f *faker) appendHashHex(dst, v []byte, max int) []byte {
	h := f.sum("hash", v)
	start := len(dst)
	dst = hex.AppendEncode(dst, h[:])
	if max > 0 && len(dst)-start > max {
		dst = dst[:start+max]
	}
	return dst
}

// fake returns the fake of kind for v fitted to max characters (0: no
// limit).
func (f *faker) fake(kind string, v []byte, max int) string {
	return string(f.appendFake(nil, kind, v, max))
}

// appendFake appends the fake of kind for v fitted to max characters (0:
// no limit; fakes are ASCII). Kinds that must stay unique (email,
// username, url, iban) carry enough hash bits (60) that distinct
// originals practically never meet.
func (f *faker) appendFake(dst []byte, kind string, v []byte, max int) []byte {
	h := f.sum(kind, v)
	n := binary.BigEndian.Uint32(h[0:]) % uint32(len(firstNames))
	m := binary.BigEndian.Uint32(h[4:]) % uint32(len(lastNames))
	first, last := firstNames[n], lastNames[m]
	// tag (60 bits of base32) only for the kinds that use it.
	var tagBuf [13]byte
	tag := func() []byte {
		lowerBase32.Encode(tagBuf[:], h[8:16])
		return tagBuf[:tagLen]
	}
	start := len(dst)
	switch kind {
	case "email":
		domain := pickWord(h, 4, emailDomains)
		local := len(first) + len(last) + tagLen + 2
		switch {
		case max <= 0 || local+1+len(domain) <= max:
			dst = append(dst, firstLower[n]...)
			dst = append(dst, '.')
			dst = append(dst, lastLower[m]...)
			dst = append(dst, '.')
			dst = append(append(append(dst, tag()...), '@'), domain...)
		case tagLen+1+len(domain) <= max:
			dst = append(append(append(dst, tag()...), '@'), domain...)
		default:
			dst = append(append(dst, tag()...), "@x.io"...)
		}
	case "first_name":
		dst = append(dst, first...)
	case "last_name":
		dst = append(dst, last...)
	case "name", "full_name":
		dst = append(append(append(dst, first...), ' '), last...)
	case "username":
		dst = append(append(append(dst, firstLower[n]...), '_'), tag()...)
	case "company":
		dst = append(append(append(dst, last...), ' '), pickWord(h, 2, companyEnds)...)
	case "phone":
		dst = appendDigits(append(appendDigits(append(dst, "+1 555 "...), h, 16, 3), ' '), h, 20, 4)
	case "street":
		dst = strconv.AppendInt(append(append(dst, pickWord(h, 2, streetNames)...), ' '), 1+int64(h[12])%150, 10)
	case "address":
		dst = strconv.AppendInt(append(append(dst, pickWord(h, 2, streetNames)...), ' '), 1+int64(h[12])%150, 10)
		dst = append(append(appendDigits(append(dst, ", "...), h, 16, 5), ' '), pickWord(h, 3, cityNames)...)
	case "city":
		dst = append(dst, pickWord(h, 3, cityNames)...)
	case "postcode":
		dst = appendDigits(dst, h, 16, 5)
	case "region":
		dst = append(dst, pickWord(h, 3, regionNames)...)
	case "country":
		dst = append(dst, pickWord(h, 3, countryCodes)...)
	case "ip", "ipv4":
		dst = strconv.AppendInt(append(dst, "10."...), int64(h[16]), 10)
		dst = strconv.AppendInt(append(dst, '.'), int64(h[17]), 10)
		dst = strconv.AppendInt(append(dst, '.'), 1+int64(h[18])%254, 10)
	case "ipv6":
		dst = fmt.Appendf(dst, "fd00:%x:%x:%x::%x", binary.BigEndian.Uint16(h[16:]), binary.BigEndian.Uint16(h[18:]),
			binary.BigEndian.Uint16(h[20:]), 1+binary.BigEndian.Uint16(h[22:])%0xfffe)
	case "url":
		dst = append(append(append(dst, "https://"...), pickWord(h, 4, emailDomains)...), '/')
		dst = append(dst, tag()...)
	case "iban":
		dst = append(dst, iban(digits(h, 12, 18))...)
	case "vat":
		dst = appendDigits(append(dst, pickWord(h, 3, countryCodes)...), h, 16, 9)
	case "date":
		dst = append(dst, dateFromDays(int(binary.BigEndian.Uint32(h[16:])%(55*365)))...)
	case "text":
		n := 3 + int(h[20]%6)
		for i := range n {
			if i > 0 {
				dst = append(dst, ' ')
			}
			dst = append(dst, loremWords[int(h[i])%len(loremWords)]...)
		}
	default:
		dst = append(dst, tag()...)
	}
	if max > 0 && len(dst)-start > max {
		dst = dst[:start+max]
	}
	return dst
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
