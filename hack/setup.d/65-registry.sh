#!/usr/bin/env bash
# The local OCI registry the real node pulls from, and crane, which pushes hack/images' builds to it.
exec bash "$(dirname "$0")/../build-registry.sh"
