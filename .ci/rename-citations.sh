#!/usr/bin/env bash
# Points every citation of the external ZooKeeper notes at the project's own
# docs/zookeeper-semantics.md, which keeps the same section labels.
#
# Run once from anywhere in the repository, after the branches that add
# citations are merged; it rewrites tracked files in place and is idempotent.
# The forms it rewrites, as they appear in the tree:
#   `zookeeper-reference.md` A.4      -> `docs/zookeeper-semantics.md` A.4
#   Reference: zookeeper-reference.md A.1, Reference: H.5
#                                     -> Reference: docs/zookeeper-semantics.md …
#   (reference D.4), The reference (F.2)
#                                     -> (docs/zookeeper-semantics.md D.4), …
# and two generic phrases that mean the same file. Other uses of the word
# "reference" (a reference model, ZooKeeper as the reference) are left alone.
# tests/integration/docs.rs then checks that every cited label has a heading.
set -euo pipefail

cd "$(git rev-parse --show-toplevel)"
doc=docs/zookeeper-semantics.md
self=.ci/rename-citations.sh
# The test's own examples stay as written (and within rustfmt's width).
checker=tests/integration/docs.rs

git ls-files -z -- src tests benches examples fuzz .ci ARCHITECTURE.md README.md |
    grep -zvE -- "^($self|$checker)\$" |
    grep -zE '\.(rs|md|sh|py|java|toml|txt)$|^\.ci/[^.]+$' |
    xargs -0 -r sed -i -E \
        -e "s#zookeeper-reference\\.md#$doc#g" \
        -e "s#(^|[^-_[:alnum:]])([Rr])eference: ([A-J]\\.[0-9])#\\1\\2eference: $doc \\3#g" \
        -e "s#(^|[^-_[:alnum:]])reference (\\(?[A-J]\\.[0-9])#\\1$doc \\2#g" \
        -e "s#cites the reference section it checks#cites the section of $doc it checks#g" \
        -e "s#the exact bytes the reference gives#the exact bytes $doc gives#g"

left=$(git grep -n -E 'zookeeper-reference|[Rr]eference:? \(?[A-J]\.[0-9]' -- . ":!$self" ":!$checker" || true)
if [ -n "$left" ]; then
    echo "citations left in the old form:" >&2
    echo "$left" >&2
    exit 1
fi
echo "citations now name $doc; run: cargo test --test integration docs"
