package repo

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// Index file plaintext (zstd-compressed, then age-encrypted to the metadata
// recipients, stored as index/<random id>):
//
//	"LBIDX001" uvarint(npacks)
//	per pack: id(32) sha256(32) uvarint(size) uvarint(nblobs)
//	per blob: type(1) flags(1) id(32) uvarint(offset) uvarint(length) uvarint(rawLength)
const indexMagic = "LBIDX001"

func encodeIndex(packs []PackInfo) []byte {
	n := len(indexMagic) + 10
	for _, p := range packs {
		n += 32 + 32 + 20 + len(p.Blobs)*(34+15)
	}
	buf := make([]byte, 0, n)
	buf = append(buf, indexMagic...)
	buf = binary.AppendUvarint(buf, uint64(len(packs)))
	for _, p := range packs {
		buf = append(buf, p.ID[:]...)
		buf = append(buf, p.Hash[:]...)
		buf = binary.AppendUvarint(buf, uint64(p.Size))
		buf = binary.AppendUvarint(buf, uint64(len(p.Blobs)))
		for _, b := range p.Blobs {
			var flags byte
			if b.Compressed {
				flags = flagCompressed
			}
			buf = append(buf, byte(b.Type), flags)
			buf = append(buf, b.ID[:]...)
			buf = binary.AppendUvarint(buf, uint64(b.Offset))
			buf = binary.AppendUvarint(buf, uint64(b.Length))
			buf = binary.AppendUvarint(buf, uint64(b.RawLength))
		}
	}
	return buf
}

var errShortIndex = errors.New("index data ends early (truncated)")

func decodeIndex(data []byte) ([]PackInfo, error) {
	packs := []PackInfo{}
	err := walkIndex(data, func(p PackInfo) {
		p.Blobs = slices.Clone(p.Blobs)
		packs = append(packs, p)
	})
	if err != nil {
		return nil, err
	}
	return packs, nil
}

// walkIndex decodes an index file and calls fn (unless nil) for each pack;
// the pack's Blobs slice is reused for the next one. fn is only called once
// the whole file decoded: a damaged file contributes nothing.
func walkIndex(data []byte, fn func(PackInfo)) error {
	if err := walkIndexOnce(data, nil); err != nil || fn == nil {
		return err
	}
	return walkIndexOnce(data, fn)
}

func walkIndexOnce(data []byte, fn func(PackInfo)) error {
	if len(data) < len(indexMagic) || string(data[:len(indexMagic)]) != indexMagic {
		return errors.New("not an index (bad magic)")
	}
	p := data[len(indexMagic):]
	uv := func() (uint64, error) {
		v, n := binary.Uvarint(p)
		if n <= 0 {
			return 0, errShortIndex
		}
		p = p[n:]
		return v, nil
	}
	fixed := func(dst []byte) error {
		if len(p) < len(dst) {
			return errShortIndex
		}
		copy(dst, p)
		p = p[len(dst):]
		return nil
	}
	np, err := uv()
	if err != nil {
		return err
	}
	if np > uint64(len(p)) {
		return fmt.Errorf("index claims %d packs in %d bytes", np, len(p))
	}
	var blobs []BlobInfo
	for range np {
		var pi PackInfo
		if err := fixed(pi.ID[:]); err != nil {
			return err
		}
		if err := fixed(pi.Hash[:]); err != nil {
			return err
		}
		size, err := uv()
		if err != nil {
			return err
		}
		pi.Size = int64(size)
		nb, err := uv()
		if err != nil {
			return err
		}
		if nb > uint64(len(p)) {
			return fmt.Errorf("index claims %d blobs in %d bytes", nb, len(p))
		}
		if uint64(cap(blobs)) < nb {
			blobs = make([]BlobInfo, nb)
		}
		pi.Blobs = blobs[:nb]
		for i := range pi.Blobs {
			b := &pi.Blobs[i]
			if len(p) < 2 {
				return errShortIndex
			}
			b.Type, b.Compressed = BlobType(p[0]), p[1]&flagCompressed != 0
			p = p[2:]
			if b.Type != DataBlob && b.Type != TreeBlob {
				return fmt.Errorf("blob %d of pack %s: unknown blob type %d", i, pi.ID.Short(), b.Type)
			}
			if err := fixed(b.ID[:]); err != nil {
				return err
			}
			var vs [3]uint64
			for j := range vs {
				if vs[j], err = uv(); err != nil {
					return err
				}
				if vs[j] > 1<<32-1 {
					return fmt.Errorf("blob %s: value %d out of range", b.ID.Short(), vs[j])
				}
			}
			b.Offset, b.Length, b.RawLength = uint32(vs[0]), uint32(vs[1]), uint32(vs[2])
		}
		if fn != nil {
			fn(pi)
		}
	}
	if len(p) != 0 {
		return fmt.Errorf("%d trailing bytes after the index", len(p))
	}
	return nil
}
