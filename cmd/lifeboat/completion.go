package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

// policyDir is where `systemd install` users keep policies; POLICY
// completes its YAML files as well as those next to what is typed.
const policyDir = "/etc/lifeboat"

// addCompletions makes the shell completion (`lifeboat completion bash`)
// offer snapshot IDs where a command's usage names a SNAPSHOT or ID,
// policy files for POLICY and --policy, and the repository's target names
// for --target. It reads the usage lines, so a new command gets it too.
func (a *app) addCompletions(root *cobra.Command) {
	_ = root.RegisterFlagCompletionFunc("policy", a.completePolicies)
	var walk func(*cobra.Command)
	walk = func(cmd *cobra.Command) {
		if cmd.ValidArgsFunction == nil && cmd.Runnable() {
			if words := usageArgs(cmd.Use); slices.ContainsFunc(words, func(w string) bool { return argKind(w) != "" }) {
				cmd.ValidArgsFunction = a.completeArgs(words)
			}
		}
		if f := cmd.LocalNonPersistentFlags().Lookup("target"); f != nil {
			_ = cmd.RegisterFlagCompletionFunc("target", a.completeTargets)
		}
		for _, c := range cmd.Commands() {
			walk(c)
		}
	}
	walk(root)
}

// usageArgs are the argument words of a command's Use line ("ls SNAPSHOT|latest
// [PATH]": SNAPSHOT|latest, [PATH]), flags left out.
func usageArgs(use string) []string {
	var words []string
	for _, w := range strings.Fields(use)[1:] {
		if strings.HasPrefix(strings.TrimLeft(w, "["), "-") {
			break
		}
		words = append(words, w)
	}
	return words
}

// argKind is what an argument word names: "snapshot", "policy" or "".
func argKind(word string) string {
	w := strings.Trim(word, "[].")
	switch {
	case strings.Contains(w, "SNAPSHOT") || w == "ID" || strings.HasPrefix(w, "ID|"):
		return "snapshot"
	case strings.HasPrefix(w, "POLICY"):
		return "policy"
	}
	return ""
}

func (a *app) completeArgs(words []string) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		i := len(args)
		if i >= len(words) {
			if last := words[len(words)-1]; !strings.Contains(last, "...") {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			i = len(words) - 1
		}
		switch argKind(words[i]) {
		case "snapshot":
			return a.completeSnapshots(cmd, args, toComplete)
		case "policy":
			return a.completePolicies(cmd, args, toComplete)
		}
		return nil, cobra.ShellCompDirectiveDefault // a path, a directory, ...
	}
}

// completionSnapshots lists the repository's snapshots the way the command
// would open it (flags, environment, --policy), briefly and without a lock;
// nil when it cannot.
func (a *app) completionSnapshots(cmd *cobra.Command) []*snapshot.Snapshot {
	if a.usePolicy() != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
	defer cancel()
	var sns []*snapshot.Snapshot
	a.stderr = &strings.Builder{} // warnings would garble the shell's line
	_ = a.withEngine(ctx, noLock, "", func(ctx context.Context, e engine.Engine) (err error) {
		sns, err = e.Snapshots(ctx)
		return err
	})
	return sns
}

// completeSnapshots offers latest and the short IDs, newest first, each
// described by time, target and host; --target narrows them.
func (a *app) completeSnapshots(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	target := ""
	if f := cmd.Flags().Lookup("target"); f != nil && f.Value.Type() == "string" {
		target = f.Value.String()
	}
	out := []cobra.Completion{cobra.CompletionWithDesc("latest", "the newest snapshot (of --target)")}
	sns := a.completionSnapshots(cmd)
	for i := len(sns) - 1; i >= 0; i-- {
		sn := sns[i]
		if target != "" && sn.Target != target {
			continue
		}
		if id := sn.ID.Short(); strings.HasPrefix(id, toComplete) {
			out = append(out, cobra.CompletionWithDesc(id, sn.Time.Local().Format("2006-01-02 15:04:05")+" "+sn.Target+" on "+sn.Host))
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeTargets offers the target names of the repository's snapshots
// and of the policy (--policy, or a POLICY argument).
func (a *app) completeTargets(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	var names []string
	if a.v.GetString("policy") == "" && a.policy == nil && len(args) > 0 {
		if words := usageArgs(cmd.Use); len(words) > 0 && argKind(words[0]) == "policy" {
			if p, err := a.loadPolicy(args[0]); err == nil {
				a.policy = p
			}
		}
	}
	for _, sn := range a.completionSnapshots(cmd) {
		names = append(names, sn.Target)
	}
	if a.policy != nil {
		for _, t := range a.policy.Targets {
			names = append(names, t.Name)
		}
	}
	slices.Sort(names)
	var out []cobra.Completion
	for _, n := range slices.Compact(names) {
		if strings.HasPrefix(n, toComplete) {
			out = append(out, n)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completePolicies offers the YAML files (and directories, to descend)
// where the typed path points, and /etc/lifeboat's policies; a policy
// file is described by its name.
func (a *app) completePolicies(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	dirs := []string{filepath.Dir(toComplete)}
	if !strings.Contains(toComplete, "/") {
		dirs = []string{".", policyDir}
	}
	var out []cobra.Completion
	directive := cobra.ShellCompDirectiveNoFileComp
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			p := e.Name()
			if dir != "." || strings.HasPrefix(toComplete, "./") {
				p = filepath.Join(dir, p)
			}
			switch {
			case !strings.HasPrefix(p, toComplete) || strings.HasPrefix(e.Name(), "."):
			case e.IsDir():
				out = append(out, p+"/")
				directive |= cobra.ShellCompDirectiveNoSpace // to go on into it
			case strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml"):
				out = append(out, cobra.CompletionWithDesc(p, policyName(filepath.Join(dir, e.Name()))))
			}
		}
	}
	return out, directive
}

// policyName is a policy file's name: key, read without validating, or "".
func policyName(path string) string {
	data, err := os.ReadFile(path)
	if err != nil || len(data) > 1<<20 {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "name:"); ok {
			return "policy " + strings.Trim(strings.TrimSpace(v), `"'`)
		}
	}
	return ""
}
