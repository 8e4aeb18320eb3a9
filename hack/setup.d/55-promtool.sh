#!/usr/bin/env bash
# promtool for the alert rules' tests (Debian's prometheus package; cached under ~/.cache/kubetrove/promtool/).
exec bash "$(dirname "$0")/../fetch-promtool.sh"
