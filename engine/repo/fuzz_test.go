package repo

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"gocloud.dev/blob/memblob"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

// The fuzz tests of this file feed what a backup host (or bit rot) can
// put into the objects a client reads: a snapshot's metadata stream, its
// manifest, key files and the config. Each parser must fail with an error,
// never panic or hang, and what it accepts must be usable.

func sampleNodes() []*snapshot.Node {
	mt := time.Date(2026, 11, 25, 2, 30, 0, 0, time.UTC)
	return []*snapshot.Node{
		{Entry: snapshot.Entry{Path: "src", Type: snapshot.TypeDir, Mode: 0o755, ModTime: mt, User: "root", Group: "root"}},
		{Entry: snapshot.Entry{Path: "src/a.txt", Type: snapshot.TypeFile, Mode: 0o644, Size: 90000, ModTime: mt, UID: 1000, GID: 1000,
			Xattrs: []snapshot.Xattr{{Name: "user.x", Value: []byte("v")}}}, Content: []snapshot.ID{{1}, {2}}},
		{Entry: snapshot.Entry{Path: "src/l\xff\xfe", Type: snapshot.TypeSymlink, LinkTarget: "../\x80x", ModTime: mt}},
		{Entry: snapshot.Entry{Path: "src/h", Type: snapshot.TypeFile, HardlinkTo: "src/a.txt", ModTime: mt}},
		{Entry: snapshot.Entry{Path: "src/\x1b[2J", Type: snapshot.TypeCharDev, Mode: 0o600, ModTime: mt}},
	}
}

func FuzzTreeReader(f *testing.F) {
	var stream bytes.Buffer
	for _, n := range sampleNodes() {
		line, err := json.Marshal(nodeToJSON(n))
		if err != nil {
			f.Fatal(err)
		}
		stream.Write(append(line, '\n'))
		f.Add(append(line, '\n'))
	}
	f.Add(stream.Bytes())
	f.Add([]byte("{}\n{\"path\":\"x\"}\n"))
	f.Add([]byte("{\"path\":\"x\"}")) // incomplete last line
	f.Add([]byte("\n\n"))
	f.Add([]byte(`{"path_raw":"/w==","content":["zz"]}` + "\n"))
	f.Add([]byte(`{"mtime":"99999-01-01T00:00:00Z"}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tr := &TreeReader{rd: bufio.NewReader(bytes.NewReader(data)), sn: &snapshot.Snapshot{}}
		for i := 0; ; i++ {
			n, err := tr.Next()
			if err != nil {
				if errors.Is(err, io.EOF) && i > len(data) {
					t.Fatalf("more nodes (%d) than bytes", i)
				}
				return
			}
			// What decodes encodes and decodes to the same node.
			line, err := json.Marshal(nodeToJSON(n))
			if err != nil {
				t.Fatalf("node %q does not encode: %v", n.Path, err)
			}
			var j nodeJSON
			if err := json.Unmarshal(line, &j); err != nil {
				t.Fatalf("node %q: re-encoded line does not decode: %v", n.Path, err)
			}
			back := j.node()
			if back.Path != n.Path || back.LinkTarget != n.LinkTarget || back.HardlinkTo != n.HardlinkTo ||
				len(back.Content) != len(n.Content) || back.Size != n.Size || back.Type != n.Type {
				t.Fatalf("round trip changed node %q: %+v != %+v", n.Path, back, n)
			}
		}
	})
}

// fuzzRepo is a repository on a memory bucket, opened with the host key.
func fuzzRepo(f *testing.F) (*Repository, *InitResult) {
	ctx := context.Background()
	b := memblob.OpenBucket(nil)
	res, err := Init(ctx, b, InitOptions{})
	if err != nil {
		f.Fatal(err)
	}
	host, err := ParseIdentities([]byte(res.HostIdentity))
	if err != nil {
		f.Fatal(err)
	}
	r, err := Open(ctx, b, Credentials{Identities: host})
	if err != nil {
		f.Fatal(err)
	}
	return r, res
}

func FuzzSnapshotManifest(f *testing.F) {
	r, _ := fuzzRepo(f)
	ctx := context.Background()
	sn := &snapshot.Snapshot{Time: time.Date(2026, 11, 25, 2, 30, 0, 0, time.UTC), Target: "files", Kind: "files", Host: "shop-db-1",
		Tags: []string{"nightly"}, Paths: []string{"/srv/www"}, Tree: []snapshot.ID{{1}, {2}}, Parent: &snapshot.ID{3}}
	good, err := json.Marshal(sn)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"time":"2099-01-01T00:00:00Z","host":"\u001b[2J","tree":[]}`))
	f.Add([]byte(`{"time":"0001-01-01T00:00:00Z","parent":"00"}`))
	f.Add([]byte(`[`))
	f.Add([]byte(strings.Replace(string(good), `"nightly"`, `1`, 1)))
	f.Fuzz(func(t *testing.T, plain []byte) {
		if len(plain) == 0 {
			return // sealMeta of nothing is a different object (empty), loadMeta says so
		}
		enc, err := r.sealMeta(plain)
		if err != nil {
			t.Fatal(err)
		}
		id := snapshot.NewRandomID()
		key := snapshotKey(id)
		if err := r.b.WriteAll(ctx, key, enc, nil); err != nil {
			t.Fatal(err)
		}
		defer r.b.Delete(ctx, key)
		got, err := r.LoadSnapshot(ctx, id)
		if err != nil {
			var ce *CorruptError
			if !errors.As(err, &ce) || ce.Object != key {
				t.Fatalf("manifest %q: error does not name %s as corrupt: %v", plain, key, err)
			}
			return
		}
		if got.ID != id {
			t.Fatalf("manifest %q: ID %s, stored as %s", plain, got.ID, id)
		}
		var ce *CorruptError
		// A manifest dated far ahead of its write is suspect, never latest.
		if _, err := r.FindSnapshot(ctx, "latest", nil); err != nil && !errors.As(err, &ce) && !errors.Is(err, ErrNotFound) {
			t.Fatalf("manifest %q: latest: %v", plain, err)
		}
	})
}

func FuzzKeyFile(f *testing.F) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		f.Fatal(err)
	}
	k := keyFile{Version: 2, Created: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), MACKey: bytes.Repeat([]byte{1}, 32),
		GearKey: bytes.Repeat([]byte{2}, 32), PackRecipients: []string{id.Recipient().String()}, MetaRecipients: []string{id.Recipient().String()},
		Identity: id.String()}
	good, err := json.Marshal(k)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"mac_key":"","gear_key":""}`))
	f.Add([]byte(strings.Replace(string(good), id.String(), "AGE-SECRET-KEY-1", 1)))
	f.Add([]byte(`{"version":2,"mac_key":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=","gear_key":"AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=","signing_key":"AA=="}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, plain []byte) {
		var enc bytes.Buffer
		w, err := age.Encrypt(&enc, id.Recipient())
		if err != nil {
			t.Fatal(err)
		}
		w.Write(plain)
		w.Close()
		for _, format := range []int{formatUnsigned, FormatVersion} {
			kf, err := openKeyFile(enc.Bytes(), []age.Identity{id}, format)
			if err != nil {
				if errors.Is(err, errNoMatch) {
					t.Fatalf("key file %q: the identity no longer matches", plain)
				}
				continue
			}
			if len(kf.MACKey) != 32 || len(kf.GearKey) != 32 {
				t.Fatalf("key file %q accepted with keys of %d and %d bytes", plain, len(kf.MACKey), len(kf.GearKey))
			}
			kf.withIdentity(nil) // a bad identity is an error, not a panic
		}
		// The stored bytes themselves (not age) are an error too.
		openKeyFile(plain, []age.Identity{id}, FormatVersion)
	})
}

func FuzzConfig(f *testing.F) {
	r, res := fuzzRepo(f)
	ctx := context.Background()
	good, err := r.b.ReadAll(ctx, configKey)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	v1, err := json.Marshal(Config{Version: formatUnsigned, ID: res.RepoID, Chunker: r.cfg.Chunker, Compression: "default", PackSize: 1})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(v1)
	f.Add([]byte(`{"version":2,"config":{},"signature":""}`))
	f.Add([]byte(`{"version":1,"chunker":{"min":0,"avg":0,"max":0}}`))
	f.Add([]byte(`{"version":3}`))
	f.Add([]byte(`{"version":2,"config":"x"}`))
	pins := []Pin{res.Pin}
	f.Fuzz(func(t *testing.T, data []byte) {
		b := memblob.OpenBucket(nil)
		defer b.Close()
		if err := b.WriteAll(ctx, configKey, data, nil); err != nil {
			t.Fatal(err)
		}
		for _, p := range [][]Pin{nil, pins} {
			cfg, err := loadConfig(ctx, b, p)
			if err != nil {
				continue
			}
			if cfg.PackSize <= 0 {
				t.Fatalf("config %q accepted with pack size %d", data, cfg.PackSize)
			}
			if err := cfg.Chunker.Validate(); err != nil {
				t.Fatalf("config %q accepted with chunker %v: %v", data, cfg.Chunker, err)
			}
			if p != nil && !bytes.Equal(data, good) && cfg.Signed() {
				// Only the owner's own signed bytes pass a pin (a
				// re-encoding of them may too: same signed config).
				var sc signedConfig
				var gsc signedConfig
				_ = json.Unmarshal(data, &sc)
				_ = json.Unmarshal(good, &gsc)
				if !bytes.Equal(sc.Config, gsc.Config) {
					t.Fatalf("config %q passes the pin but is not the signed one", data)
				}
			}
		}
	})
}
