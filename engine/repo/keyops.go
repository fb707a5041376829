package repo

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"filippo.io/age"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

// Warnings returns what Open skipped or could not authenticate: undecodable
// or unexpected objects under keys/, an unsigned (format 1) repository, a
// missing pin. Commands print them; check reports them.
func (r *Repository) Warnings() []string { return r.warnings }

// withWarnings adds Open's warnings to its error: they often say why no key
// file opened.
func withWarnings(err error, warns []string) error {
	if len(warns) == 0 {
		return err
	}
	return fmt.Errorf("%w; %s", err, strings.Join(warns, "; "))
}

// newRecipient generates an identity (see newIdentity) and returns its
// secret, its public string and its recipient.
func newRecipient(hybrid bool) (secret, pub string, _ age.Recipient, _ error) {
	_, secret, pub, err := newIdentity(hybrid)
	if err != nil {
		return "", "", nil, err
	}
	rcs, err := ParseRecipients([]string{pub})
	if err != nil {
		return "", "", nil, err
	}
	return secret, pub, rcs[0], nil
}

// sealKeyFile encrypts a key file's secrets (never the recipient lists of
// format 2: those live in the signed config) to recips.
func sealKeyFile(k *keyFile, recips ...age.Recipient) ([]byte, error) {
	plain, err := json.Marshal(k)
	if err != nil {
		return nil, err
	}
	var enc bytes.Buffer
	w, err := age.Encrypt(&enc, recips...)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(plain); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return enc.Bytes(), nil
}

// writeKeyFile stores a sealed key file under a new random name and
// returns the config's reference to it.
func writeKeyFile(ctx context.Context, b *blob.Bucket, role, recipient string, data []byte) (KeyRef, error) {
	ref := KeyRef{Object: "keys/" + snapshot.NewRandomID().String(), SHA256: sha256Hex(data), Role: role,
		Recipient: recipient, Created: time.Now().UTC()}
	return ref, writeNew(ctx, b, ref.Object, data)
}

// KeyInfo describes an object under keys/ as `key list` and check show it.
type KeyInfo struct {
	Object    string    `json:"object"`
	Role      string    `json:"role,omitempty"`
	Recipient string    `json:"recipient,omitempty"`
	Created   time.Time `json:"created,omitzero"`
	// Status: current (listed by the signed config and intact), missing,
	// altered (not the bytes the owner signed), unexpected (not listed:
	// planted, or left over from a key change), unsigned (format 1).
	Status string `json:"status"`
	// Opened: the key file this process opened the repository with.
	Opened bool `json:"opened,omitempty"`
}

// Key file statuses.
const (
	KeyCurrent    = "current"
	KeyMissing    = "missing"
	KeyAltered    = "altered"
	KeyUnexpected = "unexpected"
	KeyUnsigned   = "unsigned"
)

// KeyFiles lists the key files of the config and every other object under
// keys/, with their status.
func (r *Repository) KeyFiles(ctx context.Context) ([]KeyInfo, error) {
	objects, err := listKeyObjects(ctx, r.b)
	if err != nil {
		return nil, err
	}
	var out []KeyInfo
	listed := map[string]bool{}
	for _, ref := range r.cfg.Keys {
		listed[ref.Object] = true
		ki := KeyInfo{Object: ref.Object, Role: ref.Role, Recipient: ref.Recipient, Created: ref.Created,
			Status: KeyCurrent, Opened: ref.Object == r.key.object}
		data, err := r.b.ReadAll(ctx, ref.Object)
		switch {
		case gcerrors.Code(err) == gcerrors.NotFound:
			ki.Status = KeyMissing
		case err != nil:
			return nil, fmt.Errorf("read %s: %w", ref.Object, err)
		case sha256Hex(data) != ref.SHA256:
			ki.Status = KeyAltered
		}
		out = append(out, ki)
	}
	for _, obj := range objects {
		if listed[obj] {
			continue
		}
		st := KeyUnexpected
		if !r.cfg.Signed() {
			st = KeyUnsigned
		}
		out = append(out, KeyInfo{Object: obj, Status: st, Opened: obj == r.key.object})
	}
	return out, nil
}

// checkKeys lists the key files into res: one the owner-signed config does
// not list, one that is missing or not the bytes the owner signed is an
// error (planted, or left by a key change whose credentials could not
// delete it); an unsigned repository is a warning.
func (r *Repository) checkKeys(ctx context.Context, res *CheckResult) error {
	keys, err := r.KeyFiles(ctx)
	if err != nil {
		return err
	}
	res.Keys = keys
	if !r.cfg.Signed() {
		res.Warnings = append(res.Warnings, fmt.Sprintf("repository format %d: config and key files are not signed by the owner (`lifeboat key migrate`)", r.cfg.Version))
		return nil
	}
	for _, k := range keys {
		switch k.Status {
		case KeyUnexpected:
			res.Errors = append(res.Errors, fmt.Sprintf("%s: unexpected key file: the owner-signed config (generation %d) does not list it; planted, or left over from a key change that could not delete it: see `lifeboat key list`, delete it with the owner's storage credentials", k.Object, r.cfg.Generation))
		case KeyMissing:
			res.Errors = append(res.Errors, fmt.Sprintf("%s: %s key file of the config is missing", k.Object, k.Role))
		case KeyAltered:
			res.Errors = append(res.Errors, fmt.Sprintf("%s: %s key file is not what the owner signed (SHA-256 differs)", k.Object, k.Role))
		}
	}
	return nil
}

// ErrOwnerKeyRequired: key changes and migration need the owner key (or
// the passphrase): only it holds the repository signing key.
var ErrOwnerKeyRequired = fmt.Errorf("%w: key changes need the owner key (or the passphrase); a host key cannot change them", ErrWrongKey)

// signer returns the repository signing key of an owner-opened format 2
// repository.
func (r *Repository) signer() (ed25519.PrivateKey, error) {
	if !r.cfg.Signed() {
		return nil, errors.New("this repository is format 1 (unsigned): run `lifeboat key migrate` with the owner key first")
	}
	sk := r.key.signingKey()
	if sk == nil {
		return nil, ErrOwnerKeyRequired
	}
	if signerString(sk.Public().(ed25519.PublicKey)) != r.cfg.Signer {
		return nil, fmt.Errorf("%s: %w: the key file's signing key is not the config's signer", r.key.object, ErrNotOwnerSigned)
	}
	return sk, nil
}

// ownerSecrets is what an owner key file holds.
func (r *Repository) ownerSecrets(sk ed25519.PrivateKey) *keyFile {
	return &keyFile{Version: FormatVersion, Created: time.Now().UTC(), RepoID: r.cfg.ID, MACKey: r.key.MACKey,
		GearKey: r.key.GearKey, Identity: r.key.Identity, SigningKey: sk.Seed(), HostIdentities: r.key.HostIdentities}
}

// commitKeys signs and stores cfg as the new config (one generation on;
// format 1 has generation 0, so a migrated config starts at 1)
// and deletes the key files in drop. The config is replaced in place (an
// atomic PUT on object stores, a rename on file://); it is the one object
// that is ever overwritten, and only by the owner. Key files that cannot
// be deleted (storage credentials without delete rights) are left and
// returned as warnings: the config no longer lists them, so they open
// nothing.
func (r *Repository) commitKeys(ctx context.Context, sk ed25519.PrivateKey, cfg Config, drop []string) ([]string, error) {
	cfg.Generation = r.cfg.Generation + 1
	data, err := encodeConfig(cfg, sk)
	if err != nil {
		return nil, err
	}
	if err := r.b.WriteAll(ctx, configKey, data, nil); err != nil {
		return nil, fmt.Errorf("write config: %w", err)
	}
	r.cfg = cfg
	var warns []string
	for _, obj := range drop {
		if err := r.b.Delete(ctx, obj); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
			warns = append(warns, fmt.Sprintf("%s: no longer a key file of the repository, but not deleted (%v): delete it with the owner's storage credentials", obj, err))
		}
	}
	return warns, nil
}

// Pin returns the repository's pin at its current generation (format 2).
func (r *Repository) Pin() (Pin, bool) {
	if !r.cfg.Signed() {
		return Pin{}, false
	}
	return Pin{Repo: r.cfg.ID, Signer: mustSigner(r.cfg.Signer), Generation: r.cfg.Generation}, true
}

// AddOwner adds an owner recipient (an escrow key kept offline, say): a new
// owner key file encrypted to it holds the data identity, so it reads
// everything the repository holds, old packs included.
func (r *Repository) AddOwner(ctx context.Context, recipient string) (KeyRef, []string, error) {
	sk, err := r.signer()
	if err != nil {
		return KeyRef{}, nil, err
	}
	rcs, err := ParseRecipients([]string{recipient})
	if err != nil {
		return KeyRef{}, nil, err
	}
	for _, ref := range r.cfg.Keys {
		if ref.Recipient == recipient {
			return KeyRef{}, nil, fmt.Errorf("%s is already a recipient of %s (%s)", recipient, ref.Object, ref.Role)
		}
	}
	if r.key.Identity == "" {
		return KeyRef{}, nil, ErrOwnerKeyRequired
	}
	data, err := sealKeyFile(r.ownerSecrets(sk), rcs[0])
	if err != nil {
		return KeyRef{}, nil, err
	}
	ref, err := writeKeyFile(ctx, r.b, RoleOwner, recipient, data)
	if err != nil {
		return KeyRef{}, nil, err
	}
	cfg := r.cfg
	cfg.Keys = append(slices.Clone(cfg.Keys), ref)
	warns, err := r.commitKeys(ctx, sk, cfg, nil)
	return ref, warns, err
}

// RemoveOwner removes the owner key file that is encrypted to which (a
// recipient) or stored as which (keys/<id>, or a unique prefix of <id>).
// It refuses to remove the last owner key file, and host key files (those
// change through RotateHost).
func (r *Repository) RemoveOwner(ctx context.Context, which string) (KeyRef, []string, error) {
	sk, err := r.signer()
	if err != nil {
		return KeyRef{}, nil, err
	}
	var match []int
	for i, ref := range r.cfg.Keys {
		if ref.Recipient == which || ref.Object == which || strings.HasPrefix(ref.Object, "keys/"+which) && which != "" {
			match = append(match, i)
		}
	}
	switch {
	case len(match) == 0:
		return KeyRef{}, nil, fmt.Errorf("no key file of the repository is %q (`lifeboat key list`)", which)
	case len(match) > 1:
		return KeyRef{}, nil, fmt.Errorf("%q names %d key files: give the whole object name", which, len(match))
	}
	ref := r.cfg.Keys[match[0]]
	if ref.Role != RoleOwner {
		return KeyRef{}, nil, fmt.Errorf("%s is the %s key file: %s", ref.Object, ref.Role,
			map[string]string{RoleHost: "replace it with `lifeboat key rotate`", RolePassphrase: "change it with `lifeboat key passwd`"}[ref.Role])
	}
	owners := 0
	for _, k := range r.cfg.Keys {
		if k.Role == RoleOwner || k.Role == RolePassphrase {
			owners++
		}
	}
	if owners <= 1 {
		return KeyRef{}, nil, fmt.Errorf("refusing to remove %s: it is the last owner key file, and without one nobody can read the repository's contents or change its keys (add another owner first: `lifeboat key add`)", ref.Object)
	}
	cfg := r.cfg
	cfg.Keys = slices.Delete(slices.Clone(cfg.Keys), match[0], match[0]+1)
	warns, err := r.commitKeys(ctx, sk, cfg, []string{ref.Object})
	return ref, warns, err
}

// RotateHost replaces the host key: a new host identity (returned as age
// identity file text) gets a new host key file, metadata written from now
// on is encrypted to it instead of the old one, and the old host key file
// leaves the config, so the old host key opens the repository no more.
// The new host key file carries the earlier host identities (the owner key
// files keep them all), so the new host reads the index and snapshots its
// predecessors wrote; the owner key files are rewritten with the new one.
func (r *Repository) RotateHost(ctx context.Context) (string, Pin, []string, error) {
	sk, err := r.signer()
	if err != nil {
		return "", Pin{}, nil, err
	}
	cfg := r.cfg
	var drop []string
	var keep []KeyRef
	var owners []KeyRef
	for _, ref := range cfg.Keys {
		switch ref.Role {
		case RoleHost:
			drop = append(drop, ref.Object)
		case RoleOwner:
			owners = append(owners, ref)
			drop = append(drop, ref.Object)
		case RolePassphrase:
			return "", Pin{}, nil, errors.New("a passphrase repository has no host key (the passphrase is both): change the passphrase with `lifeboat key passwd`")
		default:
			keep = append(keep, ref)
		}
	}
	if len(r.key.HostIdentities) == 0 {
		return "", Pin{}, nil, errors.New("the owner key file does not hold the current host identity (a repository migrated from format 1 without `--host-key-file`): a new host could not read the metadata written so far, so the host key cannot be rotated; copy the repository to a new one (`lifeboat init`) to replace the host key")
	}
	hostSecret, hostPub, hostRecip, err := newRecipient(isHybrid(cfg.PackRecipients[0]))
	if err != nil {
		return "", Pin{}, nil, err
	}
	host := &keyFile{Version: FormatVersion, Created: time.Now().UTC(), RepoID: cfg.ID, MACKey: r.key.MACKey,
		GearKey: r.key.GearKey, HostIdentities: r.key.HostIdentities}
	owner := r.ownerSecrets(sk)
	owner.HostIdentities = append(slices.Clone(r.key.HostIdentities), hostSecret)
	for _, o := range owners {
		rcs, err := ParseRecipients([]string{o.Recipient})
		if err != nil {
			return "", Pin{}, nil, fmt.Errorf("%s: %w", o.Object, err)
		}
		data, err := sealKeyFile(owner, rcs[0])
		if err != nil {
			return "", Pin{}, nil, err
		}
		ref, err := writeKeyFile(ctx, r.b, RoleOwner, o.Recipient, data)
		if err != nil {
			return "", Pin{}, nil, err
		}
		keep = append(keep, ref)
	}
	data, err := sealKeyFile(host, hostRecip)
	if err != nil {
		return "", Pin{}, nil, err
	}
	ref, err := writeKeyFile(ctx, r.b, RoleHost, hostPub, data)
	if err != nil {
		return "", Pin{}, nil, err
	}
	cfg.Keys = append(keep, ref)
	cfg.MetaRecipients = append(slices.Clone(cfg.PackRecipients), hostPub)
	warns, err := r.commitKeys(ctx, sk, cfg, drop)
	if err != nil {
		return "", Pin{}, nil, err
	}
	r.key.HostIdentities = owner.HostIdentities
	if r.metaRecips, err = ParseRecipients(cfg.MetaRecipients); err != nil {
		return "", Pin{}, nil, err
	}
	pin, _ := r.Pin()
	return hostSecret, pin, warns, nil
}

// ChangePassphrase re-encrypts the key file of a passphrase repository to
// a new passphrase and removes the old one.
func (r *Repository) ChangePassphrase(ctx context.Context, passphrase string) ([]string, error) {
	sk, err := r.signer()
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(r.cfg.Keys, func(k KeyRef) bool { return k.Role == RolePassphrase })
	if i < 0 {
		return nil, errors.New("this repository has owner and host keys, no passphrase (`lifeboat key add`/`rotate`)")
	}
	sr, err := scryptRecipient(passphrase)
	if err != nil {
		return nil, err
	}
	data, err := sealKeyFile(r.ownerSecrets(sk), sr)
	if err != nil {
		return nil, err
	}
	ref, err := writeKeyFile(ctx, r.b, RolePassphrase, "", data)
	if err != nil {
		return nil, err
	}
	cfg := r.cfg
	old := cfg.Keys[i].Object
	cfg.Keys = slices.Clone(cfg.Keys)
	cfg.Keys[i] = ref
	return r.commitKeys(ctx, sk, cfg, []string{old})
}

// Migrate upgrades a format 1 repository, opened with its owner key (or
// passphrase), to format 2: a new repository signing key signs a config
// that carries the recipients and lists new key files. Passphrase
// repositories keep their identity as the data identity. Owner-key
// repositories get a new data identity for what is written from now on;
// packs written before stay encrypted to the format 1 owner recipients, so
// an owner added later reads only new packs. Existing host identities keep
// working (their new key files are encrypted to them), without a pin until
// one is added to their identity files. hostIdentities (age identity
// strings of the format 1 host keys, optional) go into the owner key files,
// so that the host key can be rotated later. The format 1 key file is
// deleted (a warning where the credentials cannot delete).
func (r *Repository) Migrate(ctx context.Context, passphrase string, hostIdentities []string) (Pin, []string, error) {
	if r.cfg.Signed() {
		return Pin{}, nil, fmt.Errorf("repository %s is already format %d (signed)", r.cfg.ID.Short(), r.cfg.Version)
	}
	if !r.readData {
		return Pin{}, nil, ErrOwnerKeyRequired
	}
	pub, sk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return Pin{}, nil, err
	}
	cfg := r.cfg
	cfg.Version, cfg.Generation, cfg.Signer = FormatVersion, 1, signerString(pub)
	owner := r.ownerSecrets(sk)
	type sealed struct {
		role, recipient string
		recip           age.Recipient
	}
	var files []sealed
	if r.key.Identity != "" { // passphrase mode
		if passphrase == "" {
			return Pin{}, nil, errors.New("migrating a passphrase repository needs its passphrase")
		}
		sr, err := scryptRecipient(passphrase)
		if err != nil {
			return Pin{}, nil, err
		}
		cfg.PackRecipients, cfg.MetaRecipients = r.key.PackRecipients, r.key.MetaRecipients
		files = append(files, sealed{RolePassphrase, "", sr})
	} else {
		owners := r.key.PackRecipients
		var hosts []string
		for _, m := range r.key.MetaRecipients {
			if !slices.Contains(owners, m) {
				hosts = append(hosts, m)
			}
		}
		for _, h := range hostIdentities {
			ids, err := age.ParseIdentities(strings.NewReader(h))
			if err != nil {
				return Pin{}, nil, fmt.Errorf("host identity: %w", err)
			}
			if len(ids) != 1 || !slices.Contains(hosts, recipientOf(ids[0])) {
				return Pin{}, nil, errors.New("the host identity given is not a host key of this repository")
			}
		}
		_, dataSecret, dataPub, err := newIdentity(isHybrid(owners[0]))
		if err != nil {
			return Pin{}, nil, err
		}
		owner.Identity, owner.HostIdentities = dataSecret, hostIdentities
		cfg.PackRecipients = []string{dataPub}
		cfg.MetaRecipients = append([]string{dataPub}, hosts...)
		for _, set := range []struct {
			role  string
			names []string
		}{{RoleOwner, owners}, {RoleHost, hosts}} {
			rcs, err := ParseRecipients(set.names)
			if err != nil {
				return Pin{}, nil, err
			}
			for i, rc := range rcs {
				files = append(files, sealed{set.role, set.names[i], rc})
			}
		}
	}
	hostSecrets := &keyFile{Version: FormatVersion, Created: owner.Created, RepoID: cfg.ID, MACKey: r.key.MACKey, GearKey: r.key.GearKey}
	for _, f := range files {
		k := owner
		if f.role == RoleHost {
			k = hostSecrets
		}
		data, err := sealKeyFile(k, f.recip)
		if err != nil {
			return Pin{}, nil, err
		}
		ref, err := writeKeyFile(ctx, r.b, f.role, f.recipient, data)
		if err != nil {
			return Pin{}, nil, err
		}
		cfg.Keys = append(cfg.Keys, ref)
	}
	warns, err := r.commitKeys(ctx, sk, cfg, []string{r.key.object})
	if err != nil {
		return Pin{}, nil, err
	}
	r.key.Identity, r.key.SigningKey, r.key.HostIdentities = owner.Identity, owner.SigningKey, owner.HostIdentities
	r.key.PackRecipients, r.key.MetaRecipients = cfg.PackRecipients, cfg.MetaRecipients
	if r.ids, err = r.key.withIdentity(r.ids); err != nil {
		return Pin{}, nil, err
	}
	if r.packRecips, err = ParseRecipients(cfg.PackRecipients); err != nil {
		return Pin{}, nil, err
	}
	if r.metaRecips, err = ParseRecipients(cfg.MetaRecipients); err != nil {
		return Pin{}, nil, err
	}
	pin, _ := r.Pin()
	return pin, warns, nil
}
