#!/bin/sh
# One-shot MinIO/S3 setup for Switchboard (run by compose's minio-init service, or by hand
# with the mc client). Uses only generic S3 features (versioning, Object Lock, lifecycle)
# plus a user+policy; on Ceph RGW / SeaweedFS / Garage / AWS do the same with their tools.
set -eu
mc alias set sb http://minio:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD"

# Object Lock can only be enabled when the bucket is created; it implies versioning.
if ! mc ls "sb/$S3_BUCKET" >/dev/null 2>&1; then
  mc mb --with-lock "sb/$S3_BUCKET"
fi
mc version enable "sb/$S3_BUCKET"
# No default retention: Switchboard sets per-object retention from its policies and
# legal holds per recording. Lifecycle only cleans up what Switchboard already deleted.
mc ilm import "sb/$S3_BUCKET" < /storage/lifecycle.json

mc admin policy create sb switchboard-recordings /storage/switchboard-policy.json 2>/dev/null \
  || mc admin policy add sb switchboard-recordings /storage/switchboard-policy.json
mc admin user add sb "$S3_ACCESS_KEY" "$S3_SECRET_KEY"
mc admin policy attach sb switchboard-recordings --user "$S3_ACCESS_KEY" 2>/dev/null \
  || mc admin policy set sb switchboard-recordings "user=$S3_ACCESS_KEY"
echo "bucket $S3_BUCKET ready (versioning, object lock, lifecycle, least-privilege user $S3_ACCESS_KEY)"
