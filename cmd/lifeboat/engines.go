package main

import (
	"context"
	"slices"
	"sort"
	"strings"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/policies"
)

// Opening the policy's repository on its engine (native or restic), with
// the lock a command needs, and finding snapshots in it.

// engineName is the repository engine commands work on: --engine or
// LIFEBOAT_ENGINE, else the policy's repositories.primary.engine, else
// native.
func (a *app) engineName() (string, error) {
	var pol string
	if a.policy != nil {
		pol = a.policy.Repositories.Primary.Engine
	}
	name := a.option("engine", pol)
	switch name {
	case "", "native":
		return "native", nil
	case "restic":
		return "restic", nil
	}
	return "", usagef("--engine %q: want native or restic", name)
}

// withEngine runs fn on the repository's engine: the native repository
// opened and locked as withRepo does, or a restic repository (restic locks
// each of its own commands).
func (a *app) withEngine(ctx context.Context, mode lockMode, purpose string, fn func(context.Context, engine.Engine) error) error {
	name, err := a.engineName()
	if err != nil {
		return err
	}
	if name == "restic" {
		e, err := a.openRestic(ctx)
		if err != nil {
			return err
		}
		return fn(ctx, e)
	}
	return a.withRepo(ctx, mode, purpose, func(ctx context.Context, r *repo.Repository) error {
		return fn(ctx, engine.Native{R: r})
	})
}

// findSnapshot resolves a snapshot reference on either engine.
func findSnapshot(ctx context.Context, e engine.Engine, ref string, filter func(*snapshot.Snapshot) bool) (*snapshot.Snapshot, error) {
	return e.FindSnapshot(ctx, ref, filter)
}

// resolveID finds the snapshot ref names; on a native repository without
// reading its manifest, so a damaged snapshot can be forgotten.
func resolveID(ctx context.Context, e engine.Engine, ref string) (snapshot.ID, error) {
	if n, ok := e.(engine.Native); ok {
		return n.R.ResolveID(ctx, ref)
	}
	sn, err := findSnapshot(ctx, e, ref, nil)
	if err != nil {
		return snapshot.ID{}, err
	}
	return sn.ID, nil
}

// engineAt opens the primary (from "" or "primary"; --repo overrides its
// URL) or the policy's secondary named from, on the policy's engine, to
// read it; a native repository with a lock of mode for purpose (work with
// the context it gives: it ends when the lease is lost). A lock that
// cannot be written (read-only credentials, as a DR bucket may have) is a
// warning, not an error: the repository is still read. restic locks each
// of its commands itself (restic.Engine.Secondary picks a restic
// secondary's password). done releases it.
func (a *app) engineAt(ctx context.Context, from string, mode lockMode, purpose string) (_ context.Context, e engine.Engine, done func(), err error) {
	name, err := a.engineName()
	if err != nil {
		return nil, nil, nil, err
	}
	var sec policies.Secondary
	if from == "" || from == "primary" {
		if sec.URL, err = a.repoURL(); err != nil {
			return nil, nil, nil, err
		}
	} else {
		if a.policy == nil {
			return nil, nil, nil, usagef("secondary %q: give a policy", from)
		}
		s, err := a.policy.Secondary(from)
		if err != nil {
			return nil, nil, nil, usageError{err}
		}
		sec = *s
	}
	if name == "native" {
		r, err := a.openRepoAt(ctx, sec.URL)
		if err != nil {
			return nil, nil, nil, err
		}
		lctx, unlock, err := a.lock(ctx, r, mode, purpose, from)
		if err != nil {
			r.Bucket().Close()
			return nil, nil, nil, err
		}
		return lctx, engine.Native{R: r}, func() { unlock(); r.Bucket().Close() }, nil
	}
	re, err := a.openRestic(ctx)
	if err == nil && sec.Name != "" {
		re, err = re.Secondary(sec)
	}
	if err != nil {
		return nil, nil, nil, err
	}
	return ctx, re, func() {}, nil
}

// snapshotFinder is what latestOf needs: the engines and browse.Repo.
type snapshotFinder interface {
	Snapshots(ctx context.Context) ([]*snapshot.Snapshot, error)
	FindSnapshot(ctx context.Context, ref string, filter func(*snapshot.Snapshot) bool) (*snapshot.Snapshot, error)
}

// findPerTarget resolves ref as findSnapshot does, but "latest" is per
// target: among the snapshots kinds allows (none: all; a named target is
// taken whatever its kind, so the caller can say why it does not fit),
// without --target on a repository that holds several targets
// (of host, when given) it is a usage error listing them, as restic
// requires --host/--path. Before, `restore latest` restored whichever
// target was newest: a MySQL dump's raw files instead of the file tree.
func findPerTarget(ctx context.Context, r snapshotFinder, ref, target, host string, kinds ...string) (*snapshot.Snapshot, error) {
	filter := func(s *snapshot.Snapshot) bool {
		return (target == "" || s.Target == target) && (host == "" || s.Host == host) &&
			(len(kinds) == 0 || target != "" || slices.Contains(kinds, s.Kind))
	}
	if ref == "latest" && target == "" {
		sns, err := r.Snapshots(ctx)
		if err != nil {
			return nil, err
		}
		seen := map[string]bool{}
		var names []string
		for _, s := range sns {
			if s.Suspect == "" && filter(s) && !seen[s.Target] {
				seen[s.Target] = true
				names = append(names, s.Target)
			}
		}
		if len(names) > 1 {
			sort.Strings(names)
			return nil, usagef("latest is per target and the repository holds %d: give --target (one of %s)", len(names), strings.Join(names, ", "))
		}
	}
	return r.FindSnapshot(ctx, ref, filter)
}
