#!/usr/bin/env bash
# promtool for the alert rules' tests (cached under ~/.cache/kubetrove/promtool-<version>/).
exec bash "$(dirname "$0")/../build-promtool.sh"
