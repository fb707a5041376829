package repo

import "fmt"

// Sealing for objects kept beside the packs (engine/logarchive): the same
// compression and encryption as the repository's own objects, without
// packs or an index.

// SealMeta compresses and encrypts plain like a metadata object (snapshot
// manifest, index): readable with the owner and with the host key.
func (r *Repository) SealMeta(plain []byte) ([]byte, error) { return r.seal(plain, r.metaRecips) }

// SealData compresses and encrypts plain like pack contents: readable with
// the owner key only; a host key can write it but never read it back.
func (r *Repository) SealData(plain []byte) ([]byte, error) { return r.seal(plain, r.packRecips) }

// OpenMeta decrypts what SealMeta made; object names it in errors
// (a *CorruptError when it does not decrypt or decode).
func (r *Repository) OpenMeta(object string, data []byte) ([]byte, error) {
	return r.unseal(object, data)
}

// OpenData decrypts what SealData made. Without the owner key it returns
// ErrNoDataKey (wrapped with object) before trying.
func (r *Repository) OpenData(object string, data []byte) ([]byte, error) {
	if !r.readData {
		return nil, fmt.Errorf("%s: %w", object, ErrNoDataKey)
	}
	return r.unseal(object, data)
}
