package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/restic"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/engine/storage"
)

type initOptions struct {
	recipients     []string
	recipientsFile string
	ownerKeyOut    string
	hostKeyOut     string
	compression    string
}

func (a *app) initCmd() *cobra.Command {
	var o initOptions
	cmd := &cobra.Command{
		Use:   "init --repo URL [--recipient R]... [--owner-key-out F] --host-key-out F",
		Short: "Create a repository",
		Long: `Create a repository and its keys.

Key model: packs (file and table contents) are encrypted to the OWNER only; metadata
(index, snapshots) to owner and HOST. Backup hosts hold the host key: they can back up
and deduplicate, not read old content. Restores and drills use the owner key.

  --recipient age1...      owner public key(s); the owner key never touches this host
                           (hybrid post-quantum age1pq1... recipients accepted)
  --owner-key-out F        otherwise: generate the owner identity into F (keep it offline)
  --host-key-out F         the host identity is always generated, into F
  --passphrase-file F      instead: single-host passphrase mode, no key files`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runInit(cmd, o) },
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.recipients, "recipient", nil, "owner recipient (age1... or age1pq1...), repeatable")
	f.StringVar(&o.recipientsFile, "recipients-file", "", "file with owner recipients, one per line")
	f.StringVar(&o.ownerKeyOut, "owner-key-out", "", "write the generated owner identity here (mode 0600)")
	f.StringVar(&o.hostKeyOut, "host-key-out", "", "write the generated host identity here (mode 0600)")
	f.StringVar(&o.compression, "compression", "fastest", "zstd level: fastest, default, better, off")
	return cmd
}

func (a *app) runInit(cmd *cobra.Command, o initOptions) error {
	ctx := cmd.Context()
	if ok, err := a.onRestic(ctx, "init", func(ctx context.Context, e *restic.Engine) error {
		if len(o.recipients) > 0 || o.recipientsFile != "" || o.ownerKeyOut != "" || o.hostKeyOut != "" {
			return usagef("a restic repository has a password, not age keys: give --passphrase-file only")
		}
		return e.Init(ctx)
	}); ok {
		return err
	}
	url, err := a.repoURL()
	if err != nil {
		return err
	}
	pass, err := a.passphrase()
	if err != nil {
		return err
	}
	recips := o.recipients
	if o.recipientsFile != "" {
		more, err := readRecipientsFile(o.recipientsFile)
		if err != nil {
			return err
		}
		recips = append(recips, more...)
	}
	opts := repo.InitOptions{OwnerRecipients: recips, Passphrase: pass, Compression: o.compression}
	switch {
	case pass != "":
		if len(recips) > 0 || o.ownerKeyOut != "" || o.hostKeyOut != "" {
			return usagef("--passphrase-file excludes --recipient, --owner-key-out and --host-key-out")
		}
	case len(recips) > 0:
		if o.ownerKeyOut != "" {
			return usagef("--owner-key-out: the owner key is yours (--recipient), nothing to generate")
		}
		if o.hostKeyOut == "" {
			return usagef("give --host-key-out FILE for the generated host identity")
		}
	default:
		if o.ownerKeyOut == "" || o.hostKeyOut == "" {
			return usagef("give --owner-key-out FILE and --host-key-out FILE (or --recipient age1... for an owner key you keep elsewhere, or --passphrase-file)")
		}
	}
	// The key files' places are claimed before the repository is touched: a
	// bad path must not leave a repository whose owner key is lost.
	var outs []*keyOut
	defer func() {
		for _, ko := range outs {
			ko.abandon()
		}
	}()
	for _, ko := range []struct{ path, role string }{{o.ownerKeyOut, "owner"}, {o.hostKeyOut, "host"}} {
		if ko.path == "" {
			continue
		}
		out, err := claimKeyFile(ko.path, ko.role)
		if err != nil {
			return err
		}
		outs = append(outs, out)
	}
	b, err := storage.OpenWith(ctx, url, storage.OpenOptions{Create: true, Ping: true})
	if err != nil {
		return err
	}
	defer b.Close()
	res, err := repo.Init(ctx, b, opts)
	if err != nil {
		return fmt.Errorf("init %s: %w", storage.Redact(url), err)
	}
	claimed := outs
	outs = nil // the repository exists now: a key file half written stays, never removed
	for _, out := range claimed {
		secret := res.HostIdentity
		if out.role == "owner" {
			secret = res.OwnerIdentity
		}
		if err := out.write(res.RepoID, res.Pin, secret); err != nil {
			return err
		}
	}
	if a.json {
		return a.emit(map[string]any{"message_type": "summary", "repository_id": res.RepoID.String(),
			"repository": storage.Redact(url), "owner_key_file": o.ownerKeyOut, "host_key_file": o.hostKeyOut,
			"passphrase_mode": pass != "", "pin": res.Pin.String()})
	}
	fmt.Fprintf(a.stdout, "created repository %s at %s\n", res.RepoID.Short(), storage.Redact(url))
	if o.ownerKeyOut != "" {
		fmt.Fprintf(a.stdout, "owner key: %s  (decrypts everything: keep it offline, on restore/drill hosts only)\n", o.ownerKeyOut)
	}
	if o.hostKeyOut != "" {
		fmt.Fprintf(a.stdout, "host key:  %s  (for backup hosts: backs up and deduplicates, cannot read content)\n", o.hostKeyOut)
	}
	if o.ownerKeyOut == "" {
		fmt.Fprintf(a.stdout, "pin: add this line to the owner's identity file (or give --pin / LIFEBOAT_PIN), so that a config or key file a backup host planted is refused:\n%s\n", res.Pin.Comment())
	} else {
		fmt.Fprintf(a.stdout, "pin: %s  (in the key files: clients refuse configs and key files it did not sign)\n", res.Pin.String())
	}
	return nil
}

// keyOut is a key file claimed (created empty, mode 0600) before init.
type keyOut struct {
	path, role string
	f          *os.File
}

func claimKeyFile(path, role string) (*keyOut, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, usagef("%s exists; lifeboat does not overwrite key files", path)
		}
		return nil, fmt.Errorf("%s key file: %w (nothing was created)", role, err)
	}
	return &keyOut{path: path, role: role, f: f}, nil
}

// abandon removes a claimed key file that init did not fill.
func (k *keyOut) abandon() {
	_ = k.f.Close()
	_ = os.Remove(k.path)
}

func (k *keyOut) write(repoID snapshot.ID, pin repo.Pin, secret string) error {
	_, err := fmt.Fprintf(k.f, "# lifeboat %s identity for repository %s\n%s\n%s\n", k.role, repoID, pin.Comment(), secret)
	if err == nil {
		err = k.f.Sync()
	}
	if cerr := k.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s key %s: %w", k.role, k.path, err)
	}
	return nil
}

func readRecipientsFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("recipients file: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	return out, sc.Err()
}
