#!/bin/sh
# Installs Debian's headless Chromium for the browser test of `blockbuilder explore`
# (tests/serving/test_explore.py drives it with Playwright; no browser is ever downloaded by Playwright).
# Without root or apt-get the test is skipped with a reason, and everything else still runs.
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
        && exit 0
fi
echo "chromium is not installed: the browser test of 'blockbuilder explore' will be skipped" >&2
exit 0
