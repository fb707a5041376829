package main

import (
	"context"
	"fmt"

	"github.com/lifeboat-backup/lifeboat/engine/restic"
)

// openRestic drives the restic repository named by --repo or the policy,
// with the password of --passphrase-file or the policy's password_file.
// restic is $LIFEBOAT_RESTIC, else restic on PATH.
func (a *app) openRestic(ctx context.Context) (*restic.Engine, error) {
	url, err := a.repoURL()
	if err != nil {
		return nil, err
	}
	pw, err := a.passphrase()
	if err != nil {
		return nil, err
	}
	if pw == "" {
		return nil, usagef("a restic repository needs its password: --passphrase-file FILE or the policy's password_file")
	}
	r, err := restic.New(ctx, restic.Options{URL: url, Password: []byte(pw)})
	if err != nil {
		return nil, err
	}
	return &restic.Engine{R: r}, nil
}

// onRestic runs a maintenance command's fn when the repository's engine
// is restic, and prints its one-line result; handled is false for the
// native engine.
func (a *app) onRestic(ctx context.Context, what string, fn func(context.Context, *restic.Engine) error) (handled bool, err error) {
	name, err := a.engineName()
	if err != nil || name != "restic" {
		return err != nil, err
	}
	e, err := a.openRestic(ctx)
	if err != nil {
		return true, err
	}
	if err := fn(ctx, e); err != nil {
		return true, err
	}
	return true, a.resticDone(what)
}

// resticDone prints a maintenance command's one-line result.
func (a *app) resticDone(what string) error {
	if a.json {
		return a.emit(map[string]any{"message_type": "summary", "engine": "restic", "ok": true, "done": what})
	}
	fmt.Fprintf(a.stdout, "restic %s: done\n", what)
	return nil
}
