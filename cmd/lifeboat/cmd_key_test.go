package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine/repo"
)

// canDecrypt tells whether the identity file opens a stored object.
func canDecrypt(t *testing.T, keyFile, object string) bool {
	t.Helper()
	c, err := repo.ReadKeyFile(keyFile)
	require.NoError(t, err)
	data, err := os.ReadFile(object)
	require.NoError(t, err)
	_, err = age.Decrypt(bytes.NewReader(data), c.Identities...)
	return err == nil
}

// TestKeyRotation (issue 19, Must show): after `key rotate` the old host
// key fails to back up (exit 12) and cannot read metadata written after the
// rotation, while the new host key backs up on top of the old snapshots; an
// escrow owner key added with `key add` restores everything, snapshots
// written before it was added included.
func TestKeyRotation(t *testing.T) {
	c, dir, src := setup(t)
	repoDir := filepath.Join(dir, "repo")
	owner, oldHost, newHost := filepath.Join(dir, "owner.key"), filepath.Join(dir, "host.key"), filepath.Join(dir, "host2.key")
	host := c.with(t, map[string]string{"LIFEBOAT_KEY_FILE": oldHost})
	before := lastJSON(t, host.ok("backup", "files", src, "--json"))["snapshot_id"].(string)

	own := c.with(t, map[string]string{"LIFEBOAT_KEY_FILE": owner})
	out := own.ok("key", "rotate", "--host-key-out", newHost)
	assert.Contains(t, out, "generation 2")
	pin, err := os.ReadFile(newHost)
	require.NoError(t, err)
	assert.Contains(t, string(pin), "generation 2", "the new host key is pinned at the new generation")

	_, errs, code := host.run("backup", "files", src)
	assert.Equal(t, exitWrongKey, code, errs)

	require.NoError(t, os.WriteFile(filepath.Join(src, "new.txt"), []byte("after the rotation"), 0o644))
	host2 := c.with(t, map[string]string{"LIFEBOAT_KEY_FILE": newHost})
	sum := lastJSON(t, host2.ok("backup", "files", src, "--json"))
	after := sum["snapshot_id"].(string)
	assert.Equal(t, before, sum["parent"], "the new host reads the snapshots written before the rotation")

	assert.True(t, canDecrypt(t, oldHost, filepath.Join(repoDir, "snapshots", before)), "metadata written before the rotation stays readable by the old host key")
	assert.False(t, canDecrypt(t, oldHost, filepath.Join(repoDir, "snapshots", after)), "metadata written after the rotation")
	assert.True(t, canDecrypt(t, newHost, filepath.Join(repoDir, "snapshots", after)))

	escrow, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	escrowKey := filepath.Join(dir, "escrow.key")
	require.NoError(t, os.WriteFile(escrowKey, []byte(escrow.String()+"\n"), 0o600))
	own.ok("key", "add", escrow.Recipient().String())
	_, errs, code = host2.run("key", "add", "age1yv7j0k3qvf8kjx0q0zpfy9pvt7z6l7h3ljx8d7gmkm6n0m6c2e4sj0r6gq")
	assert.Equal(t, exitWrongKey, code, "a host key changes no keys: %s", errs)

	esc := c.with(t, map[string]string{"LIFEBOAT_KEY_FILE": escrowKey})
	for _, id := range []string{before, after} {
		to := filepath.Join(dir, "restore-"+id[:8])
		_, errs, code := esc.run("restore", id, "--to", to)
		require.Equal(t, 0, code, errs)
		assert.Contains(t, errs, "no pin", "the escrow key file has no pin line yet")
		got, err := os.ReadFile(filepath.Join(to, "src", "sub", "a.txt"))
		require.NoError(t, err)
		assert.Len(t, got, 90000)
	}
	assert.Contains(t, esc.ok("check", "--read-data"), "no problems found")
	pinLine := strings.TrimSpace(strings.TrimPrefix(out[strings.Index(out, "pin: "):], "pin: "))
	_, errs, code = esc.with(t, map[string]string{"LIFEBOAT_PIN": pinLine}).run("snapshots")
	require.Equal(t, 0, code, errs)
	assert.NotContains(t, errs, "no pin", "the pin given through LIFEBOAT_PIN")

	list := own.ok("key", "list")
	assert.Equal(t, 2, strings.Count(list, " owner "), list)
	assert.Equal(t, 1, strings.Count(list, " host "), list)
	assert.NotContains(t, list, "unexpected")
}

// TestKeyRemove: the last owner key file cannot be removed; another one can.
func TestKeyRemove(t *testing.T) {
	c, dir, _ := setup(t)
	own := c.with(t, map[string]string{"LIFEBOAT_KEY_FILE": filepath.Join(dir, "owner.key")})
	ownerRecip := ownerRecipient(t, filepath.Join(dir, "owner.key"))
	_, errs, code := own.run("key", "remove", ownerRecip)
	assert.Equal(t, exitFailure, code)
	assert.Contains(t, errs, "last owner key file")

	escrow, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	own.ok("key", "add", escrow.Recipient().String())
	own.ok("key", "remove", escrow.Recipient().String())
	assert.NotContains(t, own.ok("key", "list"), escrow.Recipient().String())
}

func ownerRecipient(t *testing.T, keyFile string) string {
	c, err := repo.ReadKeyFile(keyFile)
	require.NoError(t, err)
	return c.Identities[0].(*age.X25519Identity).Recipient().String()
}

// TestInitKeyFileFirst (issue 18): a bad --owner-key-out path used to leave
// a repository whose owner key was lost, and re-running init refused.
func TestInitKeyFileFirst(t *testing.T) {
	dir := t.TempDir()
	c := &cli{t: t, env: map[string]string{"LIFEBOAT_REPO": "file://" + filepath.Join(dir, "repo")}}
	host := filepath.Join(dir, "host.key")
	_, errs, code := c.run("init", "--owner-key-out", filepath.Join(dir, "no-such-dir", "owner.key"), "--host-key-out", host)
	require.NotEqual(t, 0, code)
	assert.Contains(t, errs, "no-such-dir")
	_, err := os.Stat(filepath.Join(dir, "repo", "config"))
	assert.True(t, os.IsNotExist(err), "no repository was created")
	_, err = os.Stat(host)
	assert.True(t, os.IsNotExist(err), "the host key file claimed first was removed again")

	out := c.ok("init", "--owner-key-out", filepath.Join(dir, "owner.key"), "--host-key-out", host)
	assert.Contains(t, out, "created repository")
	data, err := os.ReadFile(host)
	require.NoError(t, err)
	assert.Contains(t, string(data), "# lifeboat-repository: ")
}

// TestKeyOfAnotherRepository: a key file pinned to another repository is
// the wrong key for this one: exit 12 naming both repositories, not a
// generic failure.
func TestKeyOfAnotherRepository(t *testing.T) {
	_, dirA, _ := setup(t)
	b, _, src := setup(t)
	other := b.with(t, map[string]string{"LIFEBOAT_KEY_FILE": filepath.Join(dirA, "owner.key")})
	_, errs, code := other.run("backup", "files", src)
	assert.Equal(t, exitWrongKey, code, errs)
	assert.Contains(t, errs, "pinned to repository")
}
