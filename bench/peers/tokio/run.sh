#!/bin/sh
# Build tokio-bench offline against /usr/share/cargo/registry (see
# .cargo/config.toml) and run it, forwarding all arguments, e.g.
#   ./run.sh --workers 2 --iters 3 --only spawn_many_local
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
# Build output goes to stderr so stdout stays the bench's figure lines.
cargo build --release --offline --quiet --bin tokio-bench 1>&2
exec "$here/target/release/tokio-bench" "$@"
