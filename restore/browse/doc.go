// Package browse looks inside snapshots without restoring them: diff two
// snapshots, find entries across snapshots, dump a file or a directory
// (as tar), count sizes (stats) and hold a snapshot's tree as directories
// for mount and the web console. Metadata needs only the host key;
// contents need the owner key (Repo.CanReadData).
package browse
