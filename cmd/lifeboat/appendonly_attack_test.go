package main

// The append-only deployment (docs/security.md): the backup host's storage
// credentials cannot delete or overwrite history, tested on MinIO with a
// restricted policy and with S3 Object Lock.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gocloud.dev/gcerrors"

	"github.com/lifeboat-backup/lifeboat/engine/storage"
	"github.com/lifeboat-backup/lifeboat/engine/storage/miniotest"
)

// hostPolicy is the backup host's policy (docs/security.md): read, list and
// write, read an object's retention (status shows it); no s3:DeleteObject unless withDelete (Object Lock buckets, where a
// delete only adds a delete marker); never s3:DeleteObjectVersion,
// s3:BypassGovernanceRetention or any bucket configuration.
func hostPolicy(bucket string, withDelete bool) string {
	actions := `"s3:GetObject","s3:PutObject","s3:ListBucket","s3:GetBucketLocation","s3:GetObjectRetention"`
	if withDelete {
		actions += `,"s3:DeleteObject"`
	}
	return fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":[%s],`+
		`"Resource":["arn:aws:s3:::%s","arn:aws:s3:::%s/*"]}]}`, actions, bucket, bucket)
}

// restrictedCreds returns credentials limited to policy: an STS AssumeRole
// session with the policy inline (MinIO evaluates it as it would the
// policy of an IAM user; no mc or admin API needed).
func restrictedCreds(t *testing.T, srv *miniotest.Server, policy string) aws.Credentials {
	t.Helper()
	cl := sts.New(sts.Options{BaseEndpoint: aws.String(srv.Endpoint), Region: srv.Region,
		Credentials: credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, "")})
	out, err := cl.AssumeRole(context.Background(), &sts.AssumeRoleInput{RoleArn: aws.String("arn:minio:iam:::role/backup-host"),
		RoleSessionName: aws.String("backup-host"), Policy: aws.String(policy), DurationSeconds: aws.Int32(3600)})
	require.NoError(t, err)
	c := out.Credentials
	return aws.Credentials{AccessKeyID: *c.AccessKeyId, SecretAccessKey: *c.SecretAccessKey, SessionToken: *c.SessionToken}
}

func credEnv(c aws.Credentials) map[string]string {
	return map[string]string{"AWS_ACCESS_KEY_ID": c.AccessKeyID, "AWS_SECRET_ACCESS_KEY": c.SecretAccessKey, "AWS_SESSION_TOKEN": c.SessionToken}
}

func isAccessDenied(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "AccessDenied"
}

// TestAttackAppendOnlyMinIO: with only the host key and the restricted
// credentials, backups work (the locks they cannot delete are a warning),
// history cannot be deleted (forget fails, a raw delete is refused) or, with
// Object Lock, deleted or overwritten for good; status says which mode; the
// owner's credentials clean the stale locks and prune.
func TestAttackAppendOnlyMinIO(t *testing.T) {
	srv := miniotest.Shared(t)
	root := aws.Credentials{AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey}
	for _, objectLock := range []bool{false, true} {
		name := map[bool]string{false: "no-delete policy", true: "object lock"}[objectLock]
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			bucket := fmt.Sprintf("appendonly-%d-%t", time.Now().UnixNano()%1e9, objectLock)
			s3c := srv.Client()
			_, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket), ObjectLockEnabledForBucket: aws.Bool(objectLock)})
			require.NoError(t, err)
			if objectLock {
				_, err = s3c.PutObjectLockConfiguration(ctx, &s3.PutObjectLockConfigurationInput{Bucket: aws.String(bucket),
					ObjectLockConfiguration: &s3types.ObjectLockConfiguration{ObjectLockEnabled: s3types.ObjectLockEnabledEnabled,
						Rule: &s3types.ObjectLockRule{DefaultRetention: &s3types.DefaultRetention{Mode: s3types.ObjectLockRetentionModeGovernance, Days: aws.Int32(1)}}}})
				require.NoError(t, err)
			}
			dir := t.TempDir()
			url := srv.URL(bucket, "")
			src := filepath.Join(dir, "src")
			require.NoError(t, os.MkdirAll(src, 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(src, "a.txt"), []byte(strings.Repeat("lifeboat ", 5000)), 0o644))

			owner := (&cli{t: t, env: map[string]string{"LIFEBOAT_REPO": url}}).with(t, credEnv(root))
			owner.ok("init", "--owner-key-out", filepath.Join(dir, "owner.key"), "--host-key-out", filepath.Join(dir, "host.key"))
			owner.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "owner.key")
			hostCreds := restrictedCreds(t, srv, hostPolicy(bucket, objectLock))
			host := owner.with(t, credEnv(hostCreds))
			host.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "host.key")

			_, errs, code := host.run("backup", "files", src)
			require.Equal(t, 0, code, errs)
			if !objectLock {
				assert.Contains(t, errs, "lock not released")
			}
			require.NoError(t, os.WriteFile(filepath.Join(src, "b.txt"), []byte("second"), 0o644))
			_, errs, code = host.run("backup", "files", src)
			require.Equal(t, 0, code, "a backup beside the stale lock of the first: %s", errs)
			sns := snapshotIDs(t, owner)
			require.Len(t, sns, 2)

			// status: the mode of the credentials in use
			policy := filepath.Join(dir, "policy.yaml")
			require.NoError(t, os.WriteFile(policy, []byte("version: 1\nname: ao\nhost: h\nrepositories:\n  primary:\n    url: "+url+
				"\n    key_file: "+filepath.Join(dir, "host.key")+"\ntargets:\n  - name: f\n    kind: files\n    paths: ["+src+"]\n"), 0o600))
			hostStatus := host.with(t, map[string]string{"LIFEBOAT_REPO": "", "LIFEBOAT_KEY_FILE": ""})
			out, errs, _ := hostStatus.run("status", policy, "--journal", filepath.Join(dir, "journal"))
			if objectLock {
				assert.Contains(t, out, "Object Lock GOVERNANCE", errs)
			} else {
				assert.Contains(t, out, "append-only: these credentials cannot delete", errs)
			}
			ownerStatus := owner.with(t, map[string]string{"LIFEBOAT_REPO": "", "LIFEBOAT_KEY_FILE": ""})
			out, errs, _ = ownerStatus.run("status", policy, "--journal", filepath.Join(dir, "journal"))
			assert.Contains(t, out, "can delete", errs)

			// the stolen host tries to destroy history
			victim := "snapshots/" + sns[0]
			for k, v := range credEnv(hostCreds) {
				t.Setenv(k, v)
			}
			b, err := storage.OpenWith(ctx, url, storage.OpenOptions{})
			require.NoError(t, err)
			defer b.Close()
			if !objectLock {
				_, errs, code = host.run("forget", "--keep-last", "1")
				assert.NotEqual(t, 0, code, "forget with append-only credentials: %s", errs)
				assert.Equal(t, gcerrors.PermissionDenied, gcerrors.Code(b.Delete(ctx, victim)))
				assert.Len(t, snapshotIDs(t, owner), 2)
			} else {
				// a delete only hides the object behind a delete marker;
				// its version stays, and neither the host nor the owner
				// (without bypassing governance) can delete it.
				require.NoError(t, b.Delete(ctx, victim))
				require.NoError(t, b.WriteAll(ctx, "snapshots/"+sns[1], []byte("overwritten"), nil))
				hc := s3.New(s3.Options{BaseEndpoint: aws.String(srv.Endpoint), Region: srv.Region, UsePathStyle: true,
					Credentials: credentials.NewStaticCredentialsProvider(hostCreds.AccessKeyID, hostCreds.SecretAccessKey, hostCreds.SessionToken)})
				vs, err := s3c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket), Prefix: aws.String("snapshots/")})
				require.NoError(t, err)
				require.Len(t, vs.Versions, 3, "both snapshots' first versions and the overwrite")
				for _, v := range vs.Versions {
					if *v.Key == victim {
						continue
					}
					for who, cl := range map[string]*s3.Client{"host": hc, "owner": s3c} {
						_, err := cl.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: v.Key, VersionId: v.VersionId})
						require.Error(t, err, "%s deleted version %s of %s", who, *v.VersionId, *v.Key)
						if who == "host" {
							assert.True(t, isAccessDenied(err), "%v", err)
						}
					}
				}
			}
			for k, v := range credEnv(root) {
				t.Setenv(k, v)
			}
			if objectLock {
				// The owner undoes both: the delete marker goes, the
				// overwritten snapshot's first version is copied back.
				vs, err := s3c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket), Prefix: aws.String("snapshots/")})
				require.NoError(t, err)
				for _, m := range vs.DeleteMarkers {
					_, err := s3c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: m.Key, VersionId: m.VersionId})
					require.NoError(t, err)
				}
				var first s3types.ObjectVersion
				for _, v := range vs.Versions {
					if *v.Key == "snapshots/"+sns[1] && (first.LastModified == nil || v.LastModified.Before(*first.LastModified)) {
						first = v
					}
				}
				_, err = s3c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(bucket), Key: first.Key,
					CopySource: aws.String(bucket + "/" + *first.Key + "?versionId=" + *first.VersionId)})
				require.NoError(t, err)
				assert.Len(t, snapshotIDs(t, owner), 2, "the owner recovered both snapshots")
			}

			// the owner's credentials clean up and prune
			if !objectLock {
				out = owner.ok("unlock", "--all")
				assert.NotContains(t, out, "removed 0 locks", "the stale locks the host could not delete")
			}
			owner.ok("forget", "--keep-last", "1")
			owner.ok("prune")
			assert.Len(t, snapshotIDs(t, owner), 1)
			assert.Contains(t, owner.ok("check", "--read-data"), "no problems found")
		})
	}
}

func snapshotIDs(t *testing.T, c *cli) []string {
	t.Helper()
	var list []struct{ ID string }
	require.NoError(t, json.Unmarshal([]byte(c.ok("snapshots", "--json")), &list))
	var ids []string
	for _, s := range list {
		ids = append(ids, s.ID)
	}
	return ids
}
