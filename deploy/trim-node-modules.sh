#!/bin/sh
# Drops from a production node_modules what nothing reads at run time: type
# declarations (@types and *.d.ts; @kubernetes/client-node's generated API
# alone carries 28 MB of them), source maps and Markdown. Run by the
# Dockerfile's build stage after `npm prune --omit=dev`, and by
# test/unit/deploy/image-tree.test.ts on the tree it assembles.
set -eu
dir=${1:?usage: trim-node-modules.sh NODE_MODULES_DIR}
rm -rf "$dir/@types"
find "$dir" -type f \( -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.map' -o -name '*.md' \) -delete
