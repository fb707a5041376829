// Package files is the file-tree target: Walk turns directory trees into
// targets.Entry values in snapshot order, and Restorer turns them back into
// files, directories, links and special files under a restore root.
package files
