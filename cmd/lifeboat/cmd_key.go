package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/lifeboat-backup/lifeboat/engine/repo"
)

func (a *app) keyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key",
		Short: "List and change the repository's keys (owner key required to change)",
		Long: `List and change the repository's key files.

The owner-signed config lists the genuine key files and says whom packs and metadata are
encrypted to; only the owner key (or the passphrase) can change it. docs/security.md.

  key list                      key files, their roles and status (unexpected: planted or left over)
  key add age1...               add an owner recipient (an escrow key kept offline): reads everything
  key remove RECIPIENT|KEYID    remove an owner key file (never the last one)
  key rotate --host-key-out F   new host key; the old one can no longer back up or read new metadata
  key passwd --new-passphrase-file F   passphrase mode: change the passphrase
  key migrate                   upgrade a format 1 (unsigned) repository to format 2

Exit codes: 0 ok, 1 failure, 2 bad usage, 10 no repository, 11 locked, 12 wrong key
(a change with a host key, or a key that opens no current key file).`,
	}
	cmd.AddCommand(a.keyListCmd(), a.keyAddCmd(), a.keyRemoveCmd(), a.keyRotateCmd(), a.keyPasswdCmd(), a.keyMigrateCmd())
	return cmd
}

func (a *app) keyListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the key files",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withRepo(cmd.Context(), noLock, "key list", func(ctx context.Context, r *repo.Repository) error {
				keys, err := r.KeyFiles(ctx)
				if err != nil {
					return err
				}
				return a.printKeys(r, keys)
			})
		},
	}
}

func (a *app) printKeys(r *repo.Repository, keys []repo.KeyInfo) error {
	cfg := r.Config()
	pin, signed := r.Pin()
	if a.json {
		m := map[string]any{"message_type": "keys", "repository_id": cfg.ID.String(), "format": cfg.Version,
			"generation": cfg.Generation, "keys": keys}
		if signed {
			m["pin"] = pin.String()
		}
		return a.emit(m)
	}
	if signed {
		fmt.Fprintf(a.stdout, "repository %s, format %d, key generation %d\npin: %s\n\n", cfg.ID.Short(), cfg.Version, cfg.Generation, pin.Comment())
	} else {
		fmt.Fprintf(a.stdout, "repository %s, format %d: key files and config are NOT owner-signed (`lifeboat key migrate`)\n\n", cfg.ID.Short(), cfg.Version)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "OBJECT\tROLE\tRECIPIENT\tCREATED\tSTATUS")
	for _, k := range keys {
		obj := k.Object
		if k.Opened {
			obj += " *"
		}
		created := ""
		if !k.Created.IsZero() {
			created = k.Created.Format("2006-01-02 15:04")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", obj, dash(k.Role), dash(shortRecipient(k.Recipient)), dash(created), k.Status)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, "(* the key file this key opened)")
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// shortRecipient keeps a hybrid recipient (over 1900 characters) readable.
func shortRecipient(r string) string {
	if len(r) > 70 {
		return r[:32] + "..." + r[len(r)-8:]
	}
	return r
}

func (a *app) keyAddCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "add RECIPIENT",
		Short: "Add an owner recipient (age1... or age1pq1...): an escrow key, a second restore site",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withRepo(cmd.Context(), exclusiveLock, "key add", func(ctx context.Context, r *repo.Repository) error {
				ref, warns, err := r.AddOwner(ctx, args[0])
				if err != nil {
					return err
				}
				return a.keyChanged(r, warns, fmt.Sprintf("added owner key file %s for %s", ref.Object, shortRecipient(ref.Recipient)))
			})
		},
	}
}

func (a *app) keyRemoveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "remove RECIPIENT|KEYID",
		Short: "Remove an owner key file (refused for the last one)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withRepo(cmd.Context(), exclusiveLock, "key remove", func(ctx context.Context, r *repo.Repository) error {
				ref, warns, err := r.RemoveOwner(ctx, args[0])
				if err != nil {
					return err
				}
				return a.keyChanged(r, warns, fmt.Sprintf("removed owner key file %s (%s); its holder, who could read the data identity, can still decrypt what it could reach before (docs/security.md)", ref.Object, shortRecipient(ref.Recipient)))
			})
		},
	}
}

func (a *app) keyRotateCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "rotate --host-key-out FILE",
		Short: "Replace the host key: the old one can no longer back up nor read metadata written from now on",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usagef("give --host-key-out FILE for the new host identity")
			}
			ko, err := claimKeyFile(out, "host")
			if err != nil {
				return err
			}
			done := false
			defer func() {
				if !done {
					ko.abandon()
				}
			}()
			return a.withRepo(cmd.Context(), exclusiveLock, "key rotate", func(ctx context.Context, r *repo.Repository) error {
				secret, pin, warns, err := r.RotateHost(ctx)
				if err != nil {
					return err
				}
				done = true
				if err := ko.write(r.Config().ID, pin, secret); err != nil {
					return err
				}
				return a.keyChanged(r, warns, fmt.Sprintf("new host key: %s (install it on the backup hosts); the old host key opens the repository no more. Rotate the backup hosts' storage credentials too: with them the old holder can still write and delete objects", out))
			})
		},
	}
	cmd.Flags().StringVar(&out, "host-key-out", "", "write the new host identity here (mode 0600)")
	return cmd
}

func (a *app) keyPasswdCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "passwd --new-passphrase-file FILE",
		Short: "Change the passphrase of a passphrase-mode repository",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usagef("give --new-passphrase-file FILE")
			}
			data, err := os.ReadFile(file)
			if err != nil {
				return fmt.Errorf("new passphrase file: %w", err)
			}
			pass := strings.TrimRight(string(data), "\r\n")
			if pass == "" {
				return usagef("new passphrase file %s is empty", file)
			}
			return a.withRepo(cmd.Context(), exclusiveLock, "key passwd", func(ctx context.Context, r *repo.Repository) error {
				warns, err := r.ChangePassphrase(ctx, pass)
				if err != nil {
					return err
				}
				return a.keyChanged(r, warns, "passphrase changed; the old passphrase opens the repository no more")
			})
		},
	}
	cmd.Flags().StringVar(&file, "new-passphrase-file", "", "file holding the new passphrase")
	return cmd
}

func (a *app) keyMigrateCmd() *cobra.Command {
	var hostKey string
	cmd := &cobra.Command{
		Use:   "migrate [--host-key-file F]",
		Short: "Upgrade a format 1 repository: owner-signed config and key files (owner key or passphrase)",
		Long: `Upgrade a format 1 repository to format 2 with the owner key (or the passphrase).
--host-key-file gives the current host key, so that it can be rotated later (without it,
the owner never held it and ` + "`key rotate`" + ` is refused).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pass, err := a.passphrase()
			if err != nil {
				return err
			}
			var hosts []string
			if hostKey != "" {
				c, err := repo.ReadKeyFile(hostKey)
				if err != nil {
					return err
				}
				for _, id := range c.Identities {
					hosts = append(hosts, repo.IdentityString(id))
				}
			}
			return a.withRepo(cmd.Context(), exclusiveLock, "key migrate", func(ctx context.Context, r *repo.Repository) error {
				pin, warns, err := r.Migrate(ctx, pass, hosts)
				if err != nil {
					return err
				}
				return a.keyChanged(r, warns, fmt.Sprintf("repository %s is now format %d. Add this line to the owner's and the hosts' identity files (or give --pin / LIFEBOAT_PIN):\n%s",
					r.Config().ID.Short(), r.Config().Version, pin.Comment()))
			})
		},
	}
	cmd.Flags().StringVar(&hostKey, "host-key-file", "", "the repository's current host key (keeps `key rotate` possible)")
	return cmd
}

// keyChanged reports a key change: the warnings, the message and the new
// generation.
func (a *app) keyChanged(r *repo.Repository, warns []string, msg string) error {
	for _, w := range warns {
		fmt.Fprintln(a.stderr, "warning: "+w)
	}
	pin, _ := r.Pin()
	if a.json {
		return a.emit(map[string]any{"message_type": "summary", "message": msg, "generation": r.Config().Generation,
			"pin": pin.String(), "warnings": warns})
	}
	fmt.Fprintf(a.stdout, "%s\nkey generation %d; pin: %s\n", msg, r.Config().Generation, pin.String())
	return nil
}
