#!/bin/sh
# Run the command given (the .deb test) only as root on a machine with dpkg; otherwise exit
# 77, which ctest reports as skipped (SKIP_RETURN_CODE).
if [ "$(id -u)" != 0 ] || ! command -v dpkg >/dev/null || ! command -v dpkg-deb >/dev/null; then
    echo "skipped: the .deb test installs packages, so it needs root and dpkg"
    exit 77
fi
exec "$@"
