package sanitize

import (
	"fmt"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// benchTables are two tables shaped like the bench shop's (gen-shop):
// addresses (mostly fakes, some repeating, most not) and order items
// (unruled numbers, JSON and dates).
func benchTables() map[string][]goldenCol {
	str := func(f func(i int) string) func(i int) []byte { return func(i int) []byte { return []byte(f(i)) } }
	names := []string{"Anna", "Jürgen", "Mia", "Noah", "Emma", "Paul", "Lena", "Ben", "Sophie", "Jonas", "Marie", "Elias"}
	cities := []string{"Berlin", "München", "Hamburg", "Köln", "Leipzig", "Dresden"}
	list := func(salt int, l []string) func(i int) []byte {
		return func(i int) []byte { return []byte(l[lcg(i, salt)%uint64(len(l))]) }
	}
	return map[string][]goldenCol{
		"address": {
			{name: "entity_id", typ: "int", val: str(func(i int) string { return strconv.Itoa(i + 1) })},
			{name: "parent_id", typ: "int", val: str(func(i int) string { return strconv.Itoa(i/2 + 1) })},
			{name: "city", typ: "varchar", max: 255, rule: "fake:city", val: list(1, cities)},
			{name: "company", typ: "varchar", max: 255, rule: "fake:company", val: func(i int) []byte {
				if lcg(i, 2)%3 == 0 {
					return []byte{}
				}
				return nil
			}},
			{name: "country_id", typ: "varchar", max: 255, val: list(3, []string{"DE", "AT", "CH"})},
			{name: "firstname", typ: "varchar", max: 255, rule: "fake:first_name", val: list(4, names)},
			{name: "lastname", typ: "varchar", max: 255, rule: "fake:last_name", val: list(5, names)},
			{name: "postcode", typ: "varchar", max: 255, rule: "fake:postcode", val: str(func(i int) string { return fmt.Sprintf("%05d", lcg(i, 6)%100000) })},
			{name: "email", typ: "varchar", max: 255, rule: "fake:email", val: str(func(i int) string { return fmt.Sprintf("customer%d@mail.example", i/2) })},
			{name: "street", typ: "text", rule: "fake:street", val: str(func(i int) string {
				return fmt.Sprintf("Hauptstraße %d\nc/o %s", 1+lcg(i, 7)%200, names[lcg(i, 8)%uint64(len(names))])
			})},
			{name: "telephone", typ: "varchar", max: 255, rule: "fake:phone", val: str(func(i int) string { return fmt.Sprintf("+49 %d", 100000000+lcg(i, 9)%900000000) })},
		},
		"item": {
			{name: "item_id", typ: "int", val: str(func(i int) string { return strconv.Itoa(i + 1) })},
			{name: "order_id", typ: "int", val: str(func(i int) string { return strconv.Itoa(i/3 + 1) })},
			{name: "product_id", typ: "int", val: str(func(i int) string { return strconv.Itoa(int(1 + lcg(i, 1)%2000)) })},
			{name: "product_type", typ: "varchar", max: 255, val: str(func(int) string { return "simple" })},
			{name: "product_options", typ: "longtext", val: str(func(i int) string {
				return fmt.Sprintf(`{"info_buyRequest":{"qty":%d,"product":"%d","options":{"note":"h\u00e9 \"x\""}}}`, 1+lcg(i, 2)%5, lcg(i, 1)%2000)
			})},
			{name: "sku", typ: "varchar", max: 255, val: str(func(i int) string { return fmt.Sprintf("SKU-%06d", lcg(i, 1)%2000) })},
			{name: "name", typ: "varchar", max: 255, val: list(3, []string{"Blue T-Shirt", "Coffee Mug 'Classic'", "Backpack 20L", "Wool Socks"})},
			{name: "qty_ordered", typ: "decimal", val: str(func(i int) string { return fmt.Sprintf("%d.0000", 1+lcg(i, 2)%5) })},
			{name: "price", typ: "decimal", val: str(func(i int) string { return fmt.Sprintf("%d.%04d", lcg(i, 4)%1000, lcg(i, 5)%10000) })},
			{name: "row_total", typ: "decimal", val: str(func(i int) string { return fmt.Sprintf("%d.%04d", lcg(i, 6)%5000, lcg(i, 7)%10000) })},
			{name: "created_at", typ: "timestamp", val: str(func(i int) string {
				return time.Unix(1700000000+int64(i)*20, 0).UTC().Format(time.DateTime)
			})},
		},
	}
}

// BenchmarkRender renders shop-like rows on one worker (no pipeline, no
// repository): MB/s is SQL out per core.
func BenchmarkRender(b *testing.B) {
	for _, name := range []string{"address", "item"} {
		b.Run(name, func(b *testing.B) {
			gc := benchTables()[name]
			in := goldenInput(gc, 20000)
			rd := goldenInsertRenderer(b, gc, 1<<20)
			f := &faker{key: goldenKey}
			var out []byte
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuSelf(b)
			for range b.N {
				var err error
				out, _, _, err = rd.render(f, in, 1, out[:0])
				if err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.SetBytes(int64(len(out)))
			// The machine is shared: per CPU-second tells the cost apart
			// from the load of other processes.
			cpu := (cpuSelf(b) - cpu0).Seconds() / float64(b.N)
			b.ReportMetric(float64(len(out))/1e6/cpu, "MB/cpu-s")
		})
	}
}

// cpuSelf is the CPU time of this process.
func cpuSelf(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
