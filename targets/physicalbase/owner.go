package physicalbase

import (
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// Owner is who the restored data directory belongs to (the server's user).
type Owner struct{ UID, GID int }

// OwnerFor is the owner a data directory restored to dir gets: the owner
// of dir when it exists, else (as root) the system user sysUser (mysql,
// postgres), else the current user.
func OwnerFor(dir, sysUser string) (Owner, error) {
	if fi, err := os.Stat(dir); err == nil {
		st := fi.Sys().(*syscall.Stat_t)
		return Owner{int(st.Uid), int(st.Gid)}, nil
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup(sysUser)
		if err != nil {
			return Owner{}, fmt.Errorf("restore: running as root and there is no %s user to own %s: create the directory owned by the server's user", sysUser, dir)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return Owner{uid, gid}, nil
	}
	return Owner{os.Geteuid(), os.Getegid()}, nil
}

// PrepareDir makes dir an empty data directory with mode perm, owned by
// o (as root); a directory that holds anything is refused.
func PrepareDir(dir string, perm fs.FileMode, o Owner) error {
	if err := os.MkdirAll(dir, perm); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if len(ents) > 0 {
		return fmt.Errorf("restore: data directory %s is not empty (%s, ...): restore into an empty directory", dir, ents[0].Name())
	}
	if err := os.Chmod(dir, perm); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if os.Geteuid() == 0 {
		return os.Chown(dir, o.UID, o.GID)
	}
	return nil
}

// Chown gives everything under dir to o (as root; a no-op otherwise):
// the server's user must own its data directory.
func Chown(dir string, o Owner) error {
	if os.Geteuid() != 0 {
		return nil
	}
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := os.Lchown(p, o.UID, o.GID); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		return nil
	})
}
