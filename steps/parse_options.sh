# Kaldi-style option parsing, sourced after a script sets its defaults:
#   stage=0; nj=2; . steps/parse_options.sh
# turns `--stop-stage 3` into stop_stage=3 for every variable that already exists; `--help` prints them.
# Unknown options are an error. Positional arguments are left in "$@".
while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h)
      echo "usage: $0 [options] ${usage_args:-}"
      echo "options (default in brackets):"
      for var in ${option_names:-}; do echo "  --${var//_/-} [${!var}]"; done
      exit 0 ;;
    --*=*) name=${1%%=*}; value=${1#*=}; shift ;;
    --*) name=$1; [ $# -ge 2 ] || { echo "$0: option $name needs a value" >&2; exit 1; }; value=$2; shift 2 ;;
    *) break ;;
  esac
  var=${name#--}; var=${var//-/_}
  if ! declare -p "$var" >/dev/null 2>&1; then
    echo "$0: unknown option $name (see --help)" >&2; exit 1
  fi
  printf -v "$var" '%s' "$value"
done
unset name value var
