package repo

import (
	"context"
	"encoding/json"

	"gocloud.dev/blob"

	"github.com/lifeboat-backup/lifeboat/engine/repo/chunker"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

// InitFormat1 creates a repository as lifeboat wrote them before format 2
// (unsigned config, one key file encrypted to owner + host) and returns
// the generated owner and host identities.
func InitFormat1(ctx context.Context, b *blob.Bucket, params chunker.Params, packSize int) (owner, host string, err error) {
	_, owner, ownerPub, err := newIdentity(false)
	if err != nil {
		return "", "", err
	}
	_, host, hostPub, err := newIdentity(false)
	if err != nil {
		return "", "", err
	}
	k := &keyFile{Version: 1, MACKey: randBytes(32), GearKey: randBytes(32),
		PackRecipients: []string{ownerPub}, MetaRecipients: []string{ownerPub, hostPub}}
	recips, err := ParseRecipients(k.MetaRecipients)
	if err != nil {
		return "", "", err
	}
	data, err := sealKeyFile(k, recips...)
	if err != nil {
		return "", "", err
	}
	if err := writeNew(ctx, b, "keys/"+snapshot.NewRandomID().String(), data); err != nil {
		return "", "", err
	}
	cj, err := json.Marshal(Config{Version: 1, ID: snapshot.NewRandomID(), Chunker: params, Compression: "fastest", PackSize: packSize})
	if err != nil {
		return "", "", err
	}
	return owner, host, writeNew(ctx, b, configKey, cj)
}
