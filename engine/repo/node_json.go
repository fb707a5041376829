package repo

import (
	"unicode/utf8"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

// nodeJSON is the stored form of a Node. JSON strings must be valid UTF-8,
// but file names need not be: names that are not valid UTF-8 are stored
// byte-exact in the *_raw fields (base64), which win over the string ones.
type nodeJSON struct {
	snapshot.Entry
	Content     []snapshot.ID         `json:"content,omitempty"`
	Digest      *snapshot.BlockDigest `json:"digest,omitempty"`
	PathRaw     []byte                `json:"path_raw,omitempty"`
	LinkRaw     []byte                `json:"link_raw,omitempty"`
	HardlinkRaw []byte                `json:"hardlink_raw,omitempty"`
}

func rawIfInvalid(s string) []byte {
	if utf8.ValidString(s) {
		return nil
	}
	return []byte(s)
}

func nodeToJSON(n *snapshot.Node) *nodeJSON {
	return &nodeJSON{Entry: n.Entry, Content: n.Content, Digest: n.Digest,
		PathRaw: rawIfInvalid(n.Path), LinkRaw: rawIfInvalid(n.LinkTarget), HardlinkRaw: rawIfInvalid(n.HardlinkTo)}
}

func (j *nodeJSON) node() *snapshot.Node {
	n := &snapshot.Node{Entry: j.Entry, Content: j.Content, Digest: j.Digest}
	if j.PathRaw != nil {
		n.Path = string(j.PathRaw)
	}
	if j.LinkRaw != nil {
		n.LinkTarget = string(j.LinkRaw)
	}
	if j.HardlinkRaw != nil {
		n.HardlinkTo = string(j.HardlinkRaw)
	}
	return n
}
