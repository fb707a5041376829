// Package sanitize makes developer copies of production databases without
// personal data: it reads a mysql or postgres snapshot from the repository
// (never the production server), applies the policy's rules per column
// (null, hash, mask, fixed values, deterministic keyed fakes) and per table
// (row filters, truncate, skip), and writes an SQL dump that loads with the
// plain client, into a file (optionally age-encrypted) or straight into a
// developer's server. Lint finds columns that look personal but have no
// rule; Run gates an export on it and returns the journal record. See
// docs/sanitize.md.
package sanitize
