# Helpers for the shell tests in tests/deploy (sourced).

# Ends the test with a message.
fail() { echo "FAIL: $*" >&2; exit 1; }

# Waits up to $1 seconds for the command after it to succeed (polling every
# 0.1 s); returns 1 if it never does.
wait_for() {
  local seconds=$1; shift
  for _ in $(seq $((seconds * 10))); do "$@" && return 0; sleep 0.1; done
  return 1
}

# A TCP port on 127.0.0.1 that was free a moment ago.
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
