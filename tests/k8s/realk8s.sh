# Sourced by the shell tests: a real kube-apiserver + etcd (tests/k8s/realk8s.py serve).
#   realk8s_start DIR [serve flags]   start it (exit 77 when $PILOT_PEERS_BIN lacks the
#                                     binaries), source DIR/env, print the versions
#   realk8s_ctl COMMAND [ARG...]      a fault or a token (realk8s.py ctl)
#   realk8s_stop                      clean shutdown (also call it from the EXIT trap)
# Needs $src (the source tree).
realk8s_pid=
realk8s_dir=
realk8s_start() {
    realk8s_dir=$1
    shift
    mkdir -p "$realk8s_dir"
    /usr/bin/python3 "$src/tests/k8s/realk8s.py" serve "$realk8s_dir" "$@" \
        >"$realk8s_dir/serve.log" 2>&1 &
    realk8s_pid=$!
    local rc
    for _ in $(seq 900); do
        [ -s "$realk8s_dir/env" ] && break
        if ! kill -0 "$realk8s_pid" 2>/dev/null; then
            rc=0
            wait "$realk8s_pid" || rc=$?
            realk8s_pid=
            cat "$realk8s_dir/serve.log"
            [ "$rc" = 77 ] && exit 77
            echo "FAIL: the real API server did not start (rc $rc)"
            exit 1
        fi
        sleep 0.2
    done
    [ -s "$realk8s_dir/env" ] || { cat "$realk8s_dir/serve.log"; echo "FAIL: no cluster after 180 s"; exit 1; }
    # shellcheck disable=SC1091
    . "$realk8s_dir/env"
    echo "against $REALK8S_VERSIONS ($(tail -1 "$realk8s_dir/serve.log"))"
}
realk8s_ctl() { /usr/bin/python3 "$src/tests/k8s/realk8s.py" ctl "$realk8s_dir" "$@"; }
realk8s_stop() {
    if [ -n "$realk8s_pid" ]; then
        kill -TERM "$realk8s_pid" 2>/dev/null || true
        wait "$realk8s_pid" 2>/dev/null || true
        realk8s_pid=
    fi
}
