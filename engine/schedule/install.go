package schedule

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/lifeboat-backup/lifeboat/internal/atomicfile"
)

// UnitDir is where installed units go: /etc/systemd/system, or with user
// ~/.config/systemd/user.
func UnitDir(user bool) (string, error) {
	if !user {
		return "/etc/systemd/system", nil
	}
	cfg, err := os.UserConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(cfg, "systemd", "user"), nil
}

// WriteUnits writes units into dir, each atomically, and returns their
// paths.
func WriteUnits(dir string, units []Unit) ([]string, error) {
	var paths []string
	for _, u := range units {
		path := filepath.Join(dir, u.Name)
		if err := atomicfile.WriteFile(path, []byte(u.Text), 0o644); err != nil {
			return paths, err
		}
		paths = append(paths, path)
	}
	return paths, nil
}

// ActivateCommands are the systemctl commands that activate installed
// units: daemon-reload, then enable --now of every timer and of the
// always-running archivers.
func ActivateCommands(units []Unit, user bool) [][]string {
	systemctl := []string{"systemctl"}
	if user {
		systemctl = append(systemctl, "--user")
	}
	cmds := [][]string{append(append([]string(nil), systemctl...), "daemon-reload")}
	for _, u := range units {
		if strings.HasSuffix(u.Name, ".timer") || strings.HasPrefix(u.Name, "lifeboat-binlog@") {
			cmds = append(cmds, append(append([]string(nil), systemctl...), "enable", "--now", u.Name))
		}
	}
	return cmds
}
