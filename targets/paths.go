package targets

import "slices"

// DatabasePaths is what a database source lists as its paths: the
// server as base (without its password), then one path per selected
// database in name order; the server alone when all are selected.
func DatabasePaths(base string, databases []string) []string {
	if len(databases) == 0 {
		return []string{base}
	}
	dbs := slices.Clone(databases)
	slices.Sort(dbs)
	out := make([]string, len(dbs))
	for i, d := range dbs {
		out[i] = base + d
	}
	return out
}
