# Sourced by the deploy tests: checks a command line against the flags the
# program really has (its --help), so deploy files cannot drift from the code.
#   check_flags PROGRAM_PATH ARG...   -> prints "PROGRAM: unknown flag --x" per bad flag; status 1 if any
check_flags() {
  local program=$1; shift
  local help status=0 arg flag
  help=$("$program" --help 2>&1) || { echo "$(basename "$program"): --help failed"; return 1; }
  for arg in "$@"; do
    case "$arg" in
      --*) flag=${arg%%=*} ;;
      *) continue ;;
    esac
    if ! grep -qE -- "(^|[ ,])$flag([ =,]|$)" <<<"$help"; then
      echo "$(basename "$program"): unknown flag $flag"
      status=1
    fi
  done
  return $status
}
