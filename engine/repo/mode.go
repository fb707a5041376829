package repo

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// StorageMode is what the storage credentials in use may do to the
// repository's history, found by trying (ProbeStorage), not by trusting a
// flag: append-only is a property of the credentials and the bucket, which
// a config cannot vouch for.
type StorageMode struct {
	CanWrite  bool `json:"can_write"`
	CanDelete bool `json:"can_delete"`
	// ObjectLock is the retention mode of the config object ("GOVERNANCE",
	// "COMPLIANCE"), empty without S3 Object Lock.
	ObjectLock  string    `json:"object_lock,omitempty"`
	RetainUntil time.Time `json:"retain_until,omitzero"`
}

// probeKey is the one object ProbeStorage writes (and, if it may, deletes).
const probeKey = "probe"

// ProbeStorage finds out whether the credentials can write and delete, by
// writing and deleting the object "probe", and whether the bucket keeps
// the config under S3 Object Lock. Credentials that cannot delete leave
// "probe" behind (a few bytes, overwritten by the next probe).
func ProbeStorage(ctx context.Context, b *blob.Bucket) (StorageMode, error) {
	var m StorageMode
	if attrs, err := b.Attributes(ctx, configKey); err == nil {
		var head s3.HeadObjectOutput
		if attrs.As(&head) && head.ObjectLockMode != "" {
			m.ObjectLock = string(head.ObjectLockMode)
			if head.ObjectLockRetainUntilDate != nil {
				m.RetainUntil = *head.ObjectLockRetainUntilDate
			}
		}
	} else {
		return m, fmt.Errorf("read config attributes: %w", err)
	}
	err := b.WriteAll(ctx, probeKey, []byte("lifeboat storage probe: may these credentials delete?\n"), nil)
	if gcerrors.Code(err) == gcerrors.PermissionDenied {
		return m, nil
	}
	if err != nil {
		return m, fmt.Errorf("write %s: %w", probeKey, err)
	}
	m.CanWrite = true
	err = b.Delete(ctx, probeKey)
	if gcerrors.Code(err) == gcerrors.PermissionDenied {
		return m, nil
	}
	if err != nil {
		return m, fmt.Errorf("delete %s: %w", probeKey, err)
	}
	m.CanDelete = true
	return m, nil
}

// String says what the mode means for a stolen backup host.
func (m StorageMode) String() string {
	var s string
	switch {
	case !m.CanWrite:
		s = "read-only credentials"
	case m.CanDelete:
		s = "these credentials can delete: whoever holds them can destroy history"
	default:
		s = "append-only: these credentials cannot delete"
	}
	if m.ObjectLock != "" {
		s += fmt.Sprintf("; Object Lock %s, versions retained until %s", m.ObjectLock, m.RetainUntil.UTC().Format(time.RFC3339))
	}
	return s
}
