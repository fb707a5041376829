package snapshot

import (
	"fmt"
	"sync/atomic"
)

// OwnerMode says whether a Restorer restores owners.
type OwnerMode int

const (
	// OwnerAuto restores owners when the process runs as root (euid 0).
	OwnerAuto OwnerMode = iota
	// OwnerOn always restores owners; lchown failures are errors.
	OwnerOn
	// OwnerOff never restores owners: restored objects belong to the
	// restoring user.
	OwnerOff
)

// XattrMode says which extended attributes a Restorer restores.
type XattrMode int

const (
	// XattrsUser restores the user.* namespace only (the default, like
	// GNU tar): trusted.* and security.* (file capabilities, SELinux
	// labels) and system.* (ACLs) can grant privileges.
	XattrsUser XattrMode = iota
	// XattrsAll restores every namespace.
	XattrsAll
	// XattrsNone restores none.
	XattrsNone
)

// EntryOptions configure how a restore recreates entries. The zero value is the usual and
// safe choice: owners restored when running as root, mapped by user/group
// name where the name exists on this host (like tar), user.* xattrs
// restored, setuid/setgid bits of non-directories cleared, device nodes
// not created. What a snapshot says is a claim of whoever wrote it (a
// backup host): privileges come only with the explicit options.
type EntryOptions struct {
	Owner OwnerMode
	// NumericOwner restores the stored UID/GID as they are, ignoring the
	// User/Group names.
	NumericOwner bool
	// Xattrs selects the extended attributes to restore; a file system
	// that does not support them (ENOTSUP) is not an error.
	Xattrs XattrMode
	// KeepSetuid restores the setuid and setgid bits of files. Without
	// it they are cleared (the setgid bit of directories, which only
	// makes new files inherit the group, is kept).
	KeepSetuid bool
	// Devices creates block and character device nodes; without it Other
	// returns ErrDeviceSkipped for them.
	Devices bool
}

// RestoreOptions configure a files restore, on any engine (an engine that
// restores through another tool rejects what it cannot honour).
type RestoreOptions struct {
	// Include restricts the restore to these paths (as stored, e.g.
	// "media/catalog") and everything below them; their parent
	// directories are created. Empty: everything.
	Include  []string
	Workers  int
	Entries  EntryOptions
	Progress *Progress
	// OnFailure, if set, is called for each entry that could not be
	// restored, as it happens (one call at a time); the restore goes on.
	OnFailure func(Failure)
}

// Progress counts a running restore.
type Progress struct {
	Files atomic.Int64
	Bytes atomic.Int64
	// Entry, if set, is called for each file and other non-directory entry
	// restored (restore -v), possibly from several goroutines at once.
	Entry func(path string, size int64)
}

// Restored counts one entry restored and reports it to Entry.
func (p *Progress) Restored(path string, size int64) {
	p.Files.Add(1)
	if p.Entry != nil {
		p.Entry(path, size)
	}
}

// Failure is an entry that could not be restored, and why.
type Failure struct {
	Path string
	Err  error
}

// IncompleteError is returned by Files (with the Stats) when the restore
// went through the whole snapshot but some entries could not be restored:
// everything else is in place.
type IncompleteError struct {
	Failures []Failure
}

func (e *IncompleteError) Error() string {
	f := e.Failures[0]
	return fmt.Sprintf("restore finished, but %d entries could not be restored (first: %s: %v)", len(e.Failures), f.Path, f.Err)
}

// Unwrap gives the failures' errors, so errors.Is and errors.As see why
// (repo.CorruptError for a damaged pack, files.ErrUnsafePath, ...).
func (e *IncompleteError) Unwrap() []error {
	errs := make([]error, len(e.Failures))
	for i, f := range e.Failures {
		errs[i] = f.Err
	}
	return errs
}
