// Package restore turns snapshots back into files (and, later, databases):
// whole snapshots or sub-paths, reading only the byte ranges needed.
package restore
