// Package targets holds what every target shares: the metadata model of a
// backed-up entry. Targets (files, mysql, ...) turn their sources into
// Entries plus byte streams, and turn Entries back into restored state; they
// know nothing about chunks, packs or encryption.
package targets
