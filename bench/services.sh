# Sourced by the bench/ wrappers: DynamoDB Local through scripts/lib/services.sh, and a venv
# with boto3 in .tools/bench-venv (git-ignored) for the drivers.
bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../scripts/lib/services.sh
source "$bench_dir/../scripts/lib/services.sh"

BOTO3_VERSION=1.44.8
bench_venv="$repo_root/.tools/bench-venv"
if ! "$bench_venv/bin/python" -c 'import boto3' 2>/dev/null; then
    log "installing boto3==$BOTO3_VERSION into .tools/bench-venv"
    python3 -m venv "$bench_venv"
    "$bench_venv/bin/pip" install --quiet --disable-pip-version-check "boto3==$BOTO3_VERSION"
fi
trap stop_services EXIT
start_dynamodb_local
if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
    (cd "$repo_root" && cargo build --release --quiet -p ingest-feedback)
fi
