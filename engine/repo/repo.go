package repo

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"filippo.io/age"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
	"golang.org/x/sync/errgroup"

	"github.com/lifeboat-backup/lifeboat/engine/repo/chunker"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/engine/storage"
)

// Repository is an open repository. Blob saving and loading are safe for
// concurrent use.
type Repository struct {
	b          *blob.Bucket
	cfg        Config
	key        *keyFile
	ids        []age.Identity
	packRecips []age.Recipient
	metaRecips []age.Recipient
	readData   bool
	hasher     *hasher
	gear       *chunker.Gear
	comp       *compressor
	idx        *Index

	mu          sync.Mutex
	open        map[BlobType][]*packWriter // idle open packs by type
	finishing   sync.WaitGroup             // packs being finished in the background
	finishSlots chan struct{}
	finishErr   error
	pending     []PackInfo // finished packs not yet in an index file
	stats       SaveStats

	readers readerCache

	warnings []string // what Open skipped or could not authenticate (Warnings)

	lock       *Lock   // the lock this process holds (Lock), if any
	badIndexes []error // index files LoadIndex could not decode

	badSnapshots []error       // manifests Snapshots skipped (under mu)
	maxSkew      time.Duration // SetMaxClockSkew

	untracked bool // SkipIndexTracking
}

// SaveStats counts what SaveBlob stored.
type SaveStats struct {
	Blobs       int64 // new blobs
	BlobBytes   int64 // their plaintext size
	StoredBytes int64 // their size after compression
	Packs       int64 // packs uploaded
}

// InitOptions configure a new repository.
type InitOptions struct {
	// OwnerRecipients receive pack contents. When empty (and no
	// Passphrase), Init generates an owner identity and returns it.
	OwnerRecipients []string
	// Passphrase selects passphrase mode (single host): one scrypt-encrypted
	// key holds the repository's own identity.
	Passphrase  string
	Chunker     chunker.Params
	Compression string
	PackSize    int
}

// InitResult holds the identities Init generated (age identity file text).
// They are shown once; the repository keeps only public recipients.
type InitResult struct {
	RepoID        snapshot.ID
	OwnerIdentity string // empty when owner recipients were given or in passphrase mode
	HostIdentity  string // empty in passphrase mode
	// Pin is the public half of the repository signing key: written into
	// the generated identity files (Pin.Comment), and printed for owner
	// keys that init never saw.
	Pin Pin
}

// Init creates a repository in an empty location: key files first, then
// the owner-signed config that lists them.
func Init(ctx context.Context, b *blob.Bucket, opts InitOptions) (*InitResult, error) {
	if ok, err := b.Exists(ctx, configKey); err != nil {
		return nil, fmt.Errorf("check config: %w", err)
	} else if ok {
		return nil, ErrAlreadyInitialized
	}
	if opts.Chunker == (chunker.Params{}) {
		opts.Chunker = chunker.DefaultParams()
	}
	if err := opts.Chunker.Validate(); err != nil {
		return nil, err
	}
	if _, err := compressionLevel(opts.Compression); err != nil {
		return nil, err
	}
	if opts.Compression == "" {
		opts.Compression = "fastest"
	}
	if opts.PackSize <= 0 {
		opts.PackSize = defaultPackSize
	}
	pub, signKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	cfg := Config{Version: FormatVersion, ID: snapshot.NewRandomID(), Created: now, Chunker: opts.Chunker,
		Compression: opts.Compression, PackSize: opts.PackSize, Generation: 1, Signer: signerString(pub)}
	res := &InitResult{RepoID: cfg.ID, Pin: Pin{Repo: cfg.ID, Signer: pub, Generation: 1}}
	secrets := keyFile{Version: FormatVersion, Created: now, RepoID: cfg.ID, MACKey: randBytes(32), GearKey: randBytes(32)}
	owner := secrets
	owner.SigningKey = signKey.Seed()
	type sealed struct {
		role, recipient string
		data            []byte
	}
	var files []sealed
	switch {
	case opts.Passphrase != "":
		if len(opts.OwnerRecipients) > 0 {
			return nil, errors.New("passphrase mode and owner recipients exclude each other")
		}
		_, secret, dataPub, err := newIdentity(false)
		if err != nil {
			return nil, err
		}
		owner.Identity = secret
		cfg.PackRecipients, cfg.MetaRecipients = []string{dataPub}, []string{dataPub}
		sr, err := scryptRecipient(opts.Passphrase)
		if err != nil {
			return nil, err
		}
		data, err := sealKeyFile(&owner, sr)
		if err != nil {
			return nil, err
		}
		files = append(files, sealed{RolePassphrase, "", data})
	default:
		owners := opts.OwnerRecipients
		if len(owners) == 0 {
			_, secret, ownerPub, err := newIdentity(false)
			if err != nil {
				return nil, err
			}
			res.OwnerIdentity, owners = secret, []string{ownerPub}
		}
		hybrid := isHybrid(owners[0])
		for _, o := range owners {
			if isHybrid(o) != hybrid {
				return nil, errors.New("owner recipients mix hybrid post-quantum (age1pq1...) and classic (age1...) keys; age cannot encrypt to both")
			}
		}
		ownerRecips, err := ParseRecipients(owners)
		if err != nil {
			return nil, err
		}
		_, dataSecret, dataPub, err := newIdentity(hybrid)
		if err != nil {
			return nil, err
		}
		hostSecret, hostPub, hostRecip, err := newRecipient(hybrid)
		if err != nil {
			return nil, err
		}
		res.HostIdentity = hostSecret
		owner.Identity, owner.HostIdentities = dataSecret, []string{hostSecret}
		cfg.PackRecipients, cfg.MetaRecipients = []string{dataPub}, []string{dataPub, hostPub}
		for i, rc := range ownerRecips {
			data, err := sealKeyFile(&owner, rc)
			if err != nil {
				return nil, err
			}
			files = append(files, sealed{RoleOwner, owners[i], data})
		}
		data, err := sealKeyFile(&secrets, hostRecip)
		if err != nil {
			return nil, err
		}
		files = append(files, sealed{RoleHost, hostPub, data})
	}
	for _, f := range files {
		ref, err := writeKeyFile(ctx, b, f.role, f.recipient, f.data)
		if err != nil {
			return nil, err
		}
		cfg.Keys = append(cfg.Keys, ref)
	}
	cj, err := encodeConfig(cfg, signKey)
	if err != nil {
		return nil, err
	}
	// config last: a repository without config is not a repository, so an
	// interrupted init can simply be run again.
	if err := writeNew(ctx, b, configKey, cj); err != nil {
		if errors.Is(err, storage.ErrExist) {
			return nil, ErrAlreadyInitialized
		}
		return nil, err
	}
	return res, nil
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

// writeNew stores an object that must not exist yet.
func writeNew(ctx context.Context, b *blob.Bucket, key string, data []byte) error {
	if err := storage.WriteNew(ctx, b, key, data); err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	return nil
}

// Open opens the repository in b with the given credentials and loads its
// index: for readers that take no lock. Commands that lock call
// OpenUnindexed and then Lock, which loads the index under the lock.
func Open(ctx context.Context, b *blob.Bucket, creds Credentials) (*Repository, error) {
	r, err := OpenUnindexed(ctx, b, creds)
	if err != nil {
		return nil, err
	}
	if err := r.LoadIndex(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// OpenUnindexed opens the repository without reading its index.
func OpenUnindexed(ctx context.Context, b *blob.Bucket, creds Credentials) (*Repository, error) {
	cfg, err := loadConfig(ctx, b, creds.Pins)
	if err != nil {
		return nil, err
	}
	k, ids, warns, err := loadKey(ctx, b, cfg, creds)
	if err != nil {
		return nil, withWarnings(err, warns)
	}
	r := &Repository{b: b, cfg: cfg, key: k, ids: ids, warnings: warns, open: map[BlobType][]*packWriter{}, idx: NewIndex(),
		finishSlots: make(chan struct{}, DefaultUploads)}
	if r.packRecips, err = ParseRecipients(k.PackRecipients); err != nil {
		return nil, err
	}
	if r.metaRecips, err = ParseRecipients(k.MetaRecipients); err != nil {
		return nil, err
	}
	for _, id := range ids {
		if slices.Contains(k.PackRecipients, recipientOf(id)) {
			r.readData = true
		}
	}
	lvl, _ := compressionLevel(cfg.Compression)
	r.comp = newCompressor(lvl)
	r.hasher = newHasher(k.MACKey)
	r.gear = chunker.NewGear([32]byte(k.GearKey))
	return r, nil
}

// Lock takes a shared or exclusive lock (waiting up to wait for a
// conflicting one to go away) and then loads the index: never the reverse,
// or a lock wait would leave an index that a prune made stale meanwhile.
// SaveSnapshot and Prune confirm the lock before they commit.
// The index is loaded with prune's marks (Protocol 2 in the lock object).
func (r *Repository) Lock(ctx context.Context, exclusive bool, purpose string, wait time.Duration) (*Lock, error) {
	return r.lockKind(ctx, lockKind{exclusive: exclusive, marks: true}, purpose, wait)
}

// LockForPrune takes the lock Prune runs under: shared with writers,
// exclusive among prunes.
func (r *Repository) LockForPrune(ctx context.Context, purpose string, wait time.Duration) (*Lock, error) {
	return r.lockKind(ctx, lockKind{maintenance: true, marks: true}, purpose, wait)
}

func (r *Repository) lockKind(ctx context.Context, kind lockKind, purpose string, wait time.Duration) (*Lock, error) {
	lk, err := acquireLock(ctx, r.b, kind, purpose, wait)
	if err != nil {
		return nil, err
	}
	if err := r.LoadIndex(ctx); err != nil {
		_ = lk.Unlock(context.WithoutCancel(ctx))
		return nil, err
	}
	r.lock = lk
	return lk, nil
}

// SkipIndexTracking is for generators that write many blobs they know to
// be new (lifeboat-dev gen-repo): SaveBlob stores without looking the blob
// up, and finished packs go into index files but not into the in-memory
// index, so memory stays bounded however many blobs are written. Call it
// before the first SaveBlob; blobs saved afterwards are not deduplicated.
func (r *Repository) SkipIndexTracking() { r.untracked = true }

// Config returns the repository configuration.
func (r *Repository) Config() Config { return r.cfg }

// Bucket returns the underlying storage.
func (r *Repository) Bucket() *blob.Bucket { return r.b }

// Index returns the in-memory index.
func (r *Repository) Index() *Index { return r.idx }

// CanReadData reports whether the identity can decrypt pack contents (owner).
func (r *Repository) CanReadData() bool { return r.readData }

// Gear returns the chunker gear table derived from the repository key.
func (r *Repository) Gear() *chunker.Gear { return r.gear }

// ChunkerParams returns the repository's chunk size bounds.
func (r *Repository) ChunkerParams() chunker.Params { return r.cfg.Chunker }

// BlobID computes the keyed ID of a plaintext blob.
func (r *Repository) BlobID(data []byte) snapshot.ID { return r.hasher.sum(data) }

// Stats returns what this process stored so far.
func (r *Repository) Stats() SaveStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// sealMeta compresses and encrypts a metadata object to owner and host.
func (r *Repository) sealMeta(plain []byte) ([]byte, error) {
	return r.seal(plain, r.metaRecips)
}

// seal compresses plain (when that pays) and encrypts it to recips: one
// flag byte (1: zstd) before the body, inside the age payload.
func (r *Repository) seal(plain []byte, recips []age.Recipient) ([]byte, error) {
	comp, ok := r.comp.compress(nil, plain)
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, recips...)
	if err != nil {
		return nil, err
	}
	flag := []byte{0}
	if ok {
		flag[0], plain = 1, comp
	}
	if _, err := w.Write(flag); err != nil {
		return nil, err
	}
	if _, err := w.Write(plain); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// loadMeta reads, decrypts and decompresses a metadata object.
func (r *Repository) loadMeta(ctx context.Context, key string) ([]byte, error) {
	data, err := r.b.ReadAll(ctx, key)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return nil, fmt.Errorf("%s: %w", key, ErrNotFound)
		}
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	return r.unseal(key, data)
}

// unseal decrypts and decompresses what seal made; key names the object
// in errors.
func (r *Repository) unseal(key string, data []byte) ([]byte, error) {
	rd, err := age.Decrypt(bytes.NewReader(data), r.ids...)
	if err != nil {
		return nil, corrupt(key, "%v", err)
	}
	var pb bytes.Buffer
	pb.Grow(len(data) + bytes.MinRead) // the plaintext is a little shorter than the age file
	if _, err := pb.ReadFrom(rd); err != nil {
		return nil, corrupt(key, "%v", err)
	}
	plain := pb.Bytes()
	if len(plain) == 0 {
		return nil, corrupt(key, "empty")
	}
	if plain[0] == 1 {
		out, err := decoder.DecodeAll(plain[1:], nil)
		if err != nil {
			return nil, corrupt(key, "%v", err)
		}
		return out, nil
	}
	return plain[1:], nil
}

// LoadIndex (re)reads every index file. An index file that cannot be read
// or decoded is skipped and reported by DamagedIndexes: blobs only it
// listed are then stored again by the next backup, and prune refuses to
// run until `check --repair` rebuilt the index.
//
// Packs that prune marked as deletion candidates (marks.go) are loaded
// last: readers use them only where no other copy exists, and writers
// never deduplicate against them.
func (r *Repository) LoadIndex(ctx context.Context) error {
	marks, err := r.loadMarks(ctx)
	if err != nil {
		return err
	}
	idx := NewIndex()
	idx.setCandidates(candidates(marks))
	var bad []error
	var later []PackInfo
	_, err = r.walkIndexFiles(ctx, idx.reserve, func(_ int, p PackInfo) {
		if idx.candidate(p.ID) {
			p.Blobs = slices.Clone(p.Blobs)
			later = append(later, p)
		} else {
			idx.AddPack(p)
		}
	}, func(key string, err error) {
		if !errors.Is(err, ErrNotFound) { // else merged by a prune since the listing (readers without a lock)
			bad = append(bad, err)
		}
	})
	if err != nil {
		return err
	}
	for _, p := range later {
		idx.AddPack(p)
	}
	idx.seal()
	r.idx, r.badIndexes = idx, bad
	return nil
}

// DamagedIndexes lists the index files the last LoadIndex skipped.
func (r *Repository) DamagedIndexes() []error { return r.badIndexes }

// eachIndexFile decodes every index file, a few at a time, and calls fn
// (serialized) for each, with the error that kept one from decoding (a
// corrupt or vanished file; any other read error ends the walk).
func (r *Repository) eachIndexFile(ctx context.Context, fn func(key string, packs []PackInfo, err error) error) error {
	keys, err := r.listKeys(ctx, "index/")
	if err != nil {
		return err
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0) + 2)
	for _, key := range keys {
		g.Go(func() error {
			plain, err := r.loadMeta(gctx, key)
			var packs []PackInfo
			if err == nil {
				if packs, err = decodeIndex(plain); err != nil {
					err = &CorruptError{Object: key, Err: err}
				}
			}
			var ce *CorruptError
			if err != nil && !errors.As(err, &ce) && !errors.Is(err, ErrNotFound) {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			return fn(key, packs, err)
		})
	}
	return g.Wait()
}

// walkIndexFiles is eachIndexFile for loading: each index file is decoded
// from its plaintext pack by pack (walkIndex), without a PackInfo slice
// of the whole file; pack is called (serialized, with a Blobs slice reused
// afterwards, and the file's number in the returned listing) only for
// files that decode completely, bad for the others. reserve (may be nil)
// is told first how large the files are in all.
func (r *Repository) walkIndexFiles(ctx context.Context, reserve func(bytes int64), pack func(file int, p PackInfo), bad func(key string, err error)) ([]string, error) {
	keys, total, err := r.listIndexFiles(ctx)
	if err != nil {
		return nil, err
	}
	if reserve != nil {
		reserve(total)
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0) + 2)
	for i, key := range keys {
		g.Go(func() error {
			plain, err := r.loadMeta(gctx, key)
			if err == nil {
				if err = walkIndex(plain, nil); err != nil {
					err = &CorruptError{Object: key, Err: err}
				}
			}
			var ce *CorruptError
			if err != nil && !errors.As(err, &ce) && !errors.Is(err, ErrNotFound) {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				bad(key, err)
				return nil
			}
			return walkIndexOnce(plain, func(p PackInfo) { pack(i, p) })
		})
	}
	return keys, g.Wait()
}

// listIndexFiles lists the index files and their total size.
func (r *Repository) listIndexFiles(ctx context.Context) ([]string, int64, error) {
	var keys []string
	var total int64
	err := listObjects(ctx, r.b, "index/", func(obj *blob.ListObject) {
		if !obj.IsDir && !strings.HasSuffix(obj.Key, "/") {
			keys = append(keys, obj.Key)
			total += obj.Size
		}
	})
	return keys, total, err
}

func (r *Repository) listKeys(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	err := listObjects(ctx, r.b, prefix, func(obj *blob.ListObject) {
		if !obj.IsDir && !strings.HasSuffix(obj.Key, "/") {
			keys = append(keys, obj.Key)
		}
	})
	return keys, err
}

// listObjects calls fn for every object under prefix, once the listing is
// complete. A listing that fails on an object deleted under it (fileblob
// stats what it lists) is started again, a few times.
func listObjects(ctx context.Context, b *blob.Bucket, prefix string, fn func(*blob.ListObject)) error {
	var err error
	for try := 0; try < 3; try++ {
		var objs []*blob.ListObject
		it := b.List(&blob.ListOptions{Prefix: prefix})
		for {
			var obj *blob.ListObject
			if obj, err = it.Next(ctx); err != nil {
				break
			}
			objs = append(objs, obj)
		}
		if err == io.EOF {
			for _, o := range objs {
				fn(o)
			}
			return nil
		}
		if !storage.IsVanished(err) {
			break
		}
	}
	return fmt.Errorf("list %s: %w", prefix, err)
}

// storedPack is a pack object as listed.
type storedPack struct {
	Key     string
	Size    int64
	ModTime time.Time
}

// storedPacks lists the pack objects in data/ by ID.
func (r *Repository) storedPacks(ctx context.Context) (map[snapshot.ID]storedPack, error) {
	packs := map[snapshot.ID]storedPack{}
	err := listObjects(ctx, r.b, "data/", func(obj *blob.ListObject) {
		id, err := snapshot.ParseID(obj.Key[strings.LastIndexByte(obj.Key, '/')+1:])
		if err != nil || obj.IsDir {
			return // not a pack (a staging file, say)
		}
		packs[id] = storedPack{Key: obj.Key, Size: obj.Size, ModTime: obj.ModTime}
	})
	return packs, err
}
