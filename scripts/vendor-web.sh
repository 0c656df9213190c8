#!/bin/sh
# Re-fetch the web page's and the API documents' third-party files from the npm registry
# (`make vendor`). Each package is pinned below; the files are copied unchanged, with their
# licences, into src/convstore/web/static/vendor/ (the chat page) and src/convstore/web/apidocs/
# (Swagger UI and ReDoc). Bump a version here, run `make vendor`, update
# src/convstore/web/VENDOR.md, and run the web tests.
set -eu

HTM=3.1.1
PREACT=10.2.0  # only its licence: htm/preact/standalone bundles Preact 10
MARKDOWN_IT=15.0.3
SWAGGER_UI=5.35.0
REDOC=2.5.4

root=$(cd "$(dirname "$0")/.." && pwd)
page="$root/src/convstore/web/static/vendor"
docs="$root/src/convstore/web/apidocs"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

unpack() {  # unpack NAME VERSION: the package's tarball from the registry, into $work/NAME
    (cd "$work" && npm pack --silent "$1@$2" >/dev/null)
    mkdir -p "$work/$1"
    tar -xzf "$work/$1-$2.tgz" -C "$work/$1" --strip-components=1
}

unpack htm "$HTM"
unpack preact "$PREACT"
unpack markdown-it "$MARKDOWN_IT"
unpack swagger-ui-dist "$SWAGGER_UI"
unpack redoc "$REDOC"

rm -rf "$page" "$docs"
mkdir -p "$page" "$docs"
cp "$work/htm/preact/standalone.module.js" "$page/htm-preact-standalone.mjs"
cp "$work/htm/LICENSE" "$page/htm.LICENSE"
cp "$work/preact/LICENSE" "$page/preact.LICENSE"
cp "$work/markdown-it/dist/browser/markdown-it.esm.min.mjs" "$page/markdown-it.mjs"
cp "$work/markdown-it/LICENSE" "$page/markdown-it.LICENSE"
cp "$work/swagger-ui-dist/swagger-ui-bundle.js" "$work/swagger-ui-dist/swagger-ui.css" "$docs/"
cp "$work/swagger-ui-dist/swagger-ui-bundle.js.LICENSE.txt" "$docs/"
cp "$work/swagger-ui-dist/LICENSE" "$docs/swagger-ui-dist.LICENSE"
cp "$work/swagger-ui-dist/NOTICE" "$docs/swagger-ui-dist.NOTICE"
cp "$work/redoc/bundles/redoc.standalone.js" "$docs/"
cp "$work/redoc/bundles/redoc.standalone.js.LICENSE.txt" "$docs/"
cp "$work/redoc/LICENSE" "$docs/redoc.LICENSE"
echo "vendored htm $HTM, markdown-it $MARKDOWN_IT, swagger-ui-dist $SWAGGER_UI, redoc $REDOC"
