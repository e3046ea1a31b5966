#!/bin/bash
# A script shipped in plugins.zip (MWAA_COMPAT_PLUGINS_MARKER), run by DAGs by its path.
set -eu
printf '%s transformed by plugins.zip\n' "$(printf '%s' "$1" | tr '[:lower:]' '[:upper:]')"
