package restic

import (
	"fmt"
	"net/url"
	"path"
	"strings"

	"github.com/lifeboat-backup/lifeboat/policies"
)

// Location maps a repository URL in lifeboat's form to restic's form and
// the environment restic needs for it:
//
//	file:///srv/repo                         -> /srv/repo
//	/srv/repo                                -> /srv/repo
//	s3://bucket/prefix?endpoint=http://h:9000&region=r
//	s3://bucket?prefix=p&endpoint=...        -> s3:http://h:9000/bucket/prefix, AWS_DEFAULT_REGION=r
//	s3://bucket/prefix (no endpoint)         -> s3:s3.amazonaws.com/bucket/prefix
//	sftp:u@h:/srv/repo, rest:https://h/, s3:h/bucket, b2:, azure:, gs:b:/p, rclone:, swift:, local:
//	                                         -> verbatim (restic's own form, policies.IsResticLocation)
//
// S3 credentials come from the environment (AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY), as for the native engine.
func Location(raw string) (string, []string, error) {
	if strings.HasPrefix(raw, "/") {
		return path.Clean(raw), nil, nil
	}
	if policies.IsResticLocation(raw) {
		return raw, nil, nil // as RESTIC_REPOSITORY would be
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", nil, fmt.Errorf("restic repository URL %q: %v", raw, err)
	}
	switch u.Scheme {
	case "file":
		if u.Path == "" || u.Host != "" {
			return "", nil, fmt.Errorf("restic repository URL %q: want file:///absolute/path", raw)
		}
		return path.Clean(u.Path), nil, nil
	case "s3":
		if u.Host == "" {
			return "", nil, fmt.Errorf("restic repository URL %q: no bucket", raw)
		}
		q := u.Query()
		prefix := strings.Trim(path.Join(strings.Trim(u.Path, "/"), strings.Trim(q.Get("prefix"), "/")), "/")
		endpoint := q.Get("endpoint")
		if endpoint == "" {
			endpoint = "s3.amazonaws.com"
		} else if e, err := url.Parse(endpoint); err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" {
			return "", nil, fmt.Errorf("restic repository URL %q: endpoint %q is not http(s)://host[:port]", raw, endpoint)
		}
		loc := "s3:" + strings.TrimRight(endpoint, "/") + "/" + u.Host
		if prefix != "" && prefix != "." {
			loc += "/" + prefix
		}
		var env []string
		if region := q.Get("region"); region != "" {
			env = append(env, "AWS_DEFAULT_REGION="+region)
		}
		return loc, env, nil
	}
	return "", nil, fmt.Errorf("restic repository URL %q: the restic engine supports file:// and s3:// locations and restic's own repository strings (sftp:, rest:, s3:, b2:, azure:, gs:, rclone:)", raw)
}
