package schedule

import (
	"errors"
	"fmt"

	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/policies"
)

// ErrDrillCannotRead: a drill timer would start drills that cannot read
// the snapshots' content (exit 12 on every run).
var ErrDrillCannotRead = errors.New("the scheduled drill cannot read content")

// DrillCanRead reports why a drill started by a timer, with no --key-file,
// could not read content, or nil. A restic repository and a native one in
// passphrase mode are read with the policy's own password. Otherwise the
// drill reads with drill.key_file (the owner key on the drill host): the
// primary's key_file is the backup host's key, which cannot restore. A
// drill.key_file naming a file is read here, so a typo fails now, not at
// the first drill.
func DrillCanRead(p *policies.Policy) error {
	pr := p.Repositories.Primary
	if pr.Engine == "restic" || (pr.KeyFile == "" && (pr.PasswordFile != "" || pr.Password != "")) {
		return nil
	}
	if p.Drill.KeyFile == "" {
		return fmt.Errorf("policy %s: %w: drill.schedule is set, but the policy has no drill.key_file and "+
			"repositories.primary.key_file is the backup host's key, which cannot restore; set drill.key_file "+
			"to the owner key on this host (file or env:NAME), or remove drill.schedule", p.Name, ErrDrillCannotRead)
	}
	if p.Drill.KeyFile.EnvName() != "" {
		return nil // the unit's environment is not this one's
	}
	data, err := p.Drill.KeyFile.Read()
	if err == nil {
		_, err = repo.ParseCredentials(data)
	}
	if err != nil {
		return fmt.Errorf("policy %s: %w: drill.key_file: %v", p.Name, ErrDrillCannotRead, err)
	}
	return nil
}
