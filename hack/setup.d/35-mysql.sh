#!/usr/bin/env bash
# MySQL 9.7 (a Debian sid root) and 8.0.31 (a Maven Central jar) for the integration tier
# (cached under ~/.cache/kubetrove/mysql-9.7-sid/ and mysql-8.0.31/).
exec bash "$(dirname "$0")/../build-mysql.sh"
