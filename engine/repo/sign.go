package repo

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

// ErrNotOwnerSigned: a config or key file that tells clients whom to
// encrypt to was not signed by the repository's owner (the pinned signer),
// or is older than the pinned generation. A backup host with write access
// can plant such objects; clients refuse them (docs/security.md).
var ErrNotOwnerSigned = errors.New("not signed by the repository owner")

// Pin is the public half of a repository's signing key, with the key
// generation it was written at: clients that hold it refuse a config
// signed by another key or with an older generation. init writes it into
// the identity files it generates, as a comment age ignores:
//
//	# lifeboat-repository: <repository id> signer ed25519:<base64> generation <n>
type Pin struct {
	Repo       snapshot.ID
	Signer     ed25519.PublicKey
	Generation int
}

const pinPrefix = "lifeboat-repository:"

// String returns the pin's text, the part after "# " of its comment line.
func (p Pin) String() string {
	return fmt.Sprintf("%s %s signer %s generation %d", pinPrefix, p.Repo, signerString(p.Signer), p.Generation)
}

// Comment returns the line to put into an age identity file.
func (p Pin) Comment() string { return "# " + p.String() }

func signerString(pub ed25519.PublicKey) string {
	return "ed25519:" + base64.StdEncoding.EncodeToString(pub)
}

func parseSigner(s string) (ed25519.PublicKey, error) {
	b64, ok := strings.CutPrefix(s, "ed25519:")
	if !ok {
		return nil, fmt.Errorf("signer %q: want ed25519:<base64>", s)
	}
	pub, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("signer %q: not an Ed25519 public key", s)
	}
	return ed25519.PublicKey(pub), nil
}

// ParsePin parses a pin as printed by init: the comment line, with or
// without its "# " and "lifeboat-repository:" prefixes.
func ParsePin(s string) (Pin, error) {
	s = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(s), "#"))
	s = strings.TrimSpace(strings.TrimPrefix(s, pinPrefix))
	f := strings.Fields(s)
	var p Pin
	if len(f) != 3 && len(f) != 5 || f[1] != "signer" || len(f) == 5 && f[3] != "generation" {
		return p, fmt.Errorf("pin %q: want \"<repository id> signer ed25519:<base64> [generation <n>]\"", s)
	}
	var err error
	if p.Repo, err = snapshot.ParseID(f[0]); err != nil {
		return p, fmt.Errorf("pin: repository id: %w", err)
	}
	if p.Signer, err = parseSigner(f[2]); err != nil {
		return p, fmt.Errorf("pin: %w", err)
	}
	p.Generation = 1
	if len(f) == 5 {
		if p.Generation, err = strconv.Atoi(f[4]); err != nil || p.Generation < 1 {
			return p, fmt.Errorf("pin: generation %q", f[4])
		}
	}
	return p, nil
}

// ParsePins returns the pins in an age identity file's comment lines.
func ParsePins(data []byte) ([]Pin, error) {
	var pins []Pin
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		rest, ok := strings.CutPrefix(line, "#")
		if !ok || !strings.HasPrefix(strings.TrimSpace(rest), pinPrefix) {
			continue
		}
		p, err := ParsePin(line)
		if err != nil {
			return nil, err
		}
		pins = append(pins, p)
	}
	return pins, sc.Err()
}

// ParseCredentials reads an age identity file's content: its identities
// and the pins in its comments.
func ParseCredentials(data []byte) (Credentials, error) {
	ids, err := ParseIdentities(data)
	if err != nil {
		return Credentials{}, err
	}
	pins, err := ParsePins(data)
	if err != nil {
		return Credentials{}, err
	}
	return Credentials{Identities: ids, Pins: pins}, nil
}

// pinFor returns the pin for repository id among pins.
func pinFor(pins []Pin, id snapshot.ID) (Pin, bool) {
	for _, p := range pins {
		if p.Repo == id {
			return p, true
		}
	}
	return Pin{}, false
}

// configSigContext separates config signatures from any other use of the key.
const configSigContext = "lifeboat config signature v2\x00"

// signConfig signs the config's JSON in compact form: the stored config is
// indented for people, and whitespace carries no meaning.
func signConfig(priv ed25519.PrivateKey, raw []byte) ([]byte, error) {
	msg, err := configMessage(raw)
	if err != nil {
		return nil, err
	}
	return ed25519.Sign(priv, msg), nil
}

func verifyConfig(pub ed25519.PublicKey, raw, sig []byte) bool {
	msg, err := configMessage(raw)
	return err == nil && ed25519.Verify(pub, msg, sig)
}

func configMessage(raw []byte) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(configSigContext)
	if err := json.Compact(&buf, raw); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
