#!/usr/bin/env bash
# MinIO (S3-compatible object storage) for the backup integration tests and benchmark (cached under ~/.cache/kubetrove/).
exec bash "$(dirname "$0")/../build-minio.sh"
