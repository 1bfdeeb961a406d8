#!/bin/sh
# Installs Debian's PostgreSQL server for the test of `blockbuilder search` workers sharing a database
# (tests/search/test_search.py starts a throwaway server on loopback with initdb and pg_ctl, and stops it).
# Without root or apt-get the test is skipped with a reason, and everything else still runs.
if command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null \
        && exit 0
fi
echo "postgresql is not installed: the PostgreSQL test of 'blockbuilder search' will be skipped" >&2
exit 0
