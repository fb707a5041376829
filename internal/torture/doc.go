// Package torture runs a seeded, bounded-time random workload against one
// lifeboat repository through the real lifeboat binary and checks the
// promise that every snapshot a command reported as saved restores to the
// tree state recorded before its backup started, until it is forgotten.
package torture
