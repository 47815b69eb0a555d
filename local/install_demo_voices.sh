#!/usr/bin/env bash
# Install what the embedded demo corpus is spoken with: espeak-ng, mbrola and the MBROLA voices (Debian contrib and
# non-free), RHVoice and SVOX Pico voices (non-free), Open JTalk and its NITech voice (main, contrib), flite, Festival
# and its voices (Debian main), sox, and libspandsp2 (decodes the G.722 recordings that stage 0 downloads).
#
# Usage: local/install_demo_voices.sh [--dry-run]
#   Does nothing (exit 0) when every package is installed already.
#   --dry-run: show the apt source edits it would make and the missing packages; change nothing.
#   As root: adds `contrib non-free` to the components of this machine's existing Debian apt sources (deb822
#   *.sources entries, and one-line `deb` entries of sources.list), runs apt-get update and installs the packages.
#   Where non-free cannot be had, installs the Debian main voices only (a smaller corpus) and says so.
#   As any other user: prints the commands to run as root and exits 1.
# The package list comes from the `packages` column of local/demo/voices.tsv. MBROLA voices are free for
# non-commercial, non-military use only.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
table=$here/demo/voices.tsv
apt_etc=${APT_ETC:-/etc/apt}   # overridable so that the source editing can be tried on a copy
# Debian main; mbrola itself is in contrib and comes with the voices. libspandsp2 decodes the G.722 recordings.
tools="espeak-ng flite festival sox libspandsp2"
dry_run=false
[ "${1:-}" = --dry-run ] && dry_run=true

# Packages of the table: all, and those of the rows that Debian main alone provides.
all_voice_pkgs=$(awk -F'\t' '!/^#/ && $1 != "speaker" {gsub(",", " ", $6); print $6}' "$table" | tr ' ' '\n' | sort -u)
# Voices outside Debian main (contrib, non-free): MBROLA, RHVoice, SVOX Pico, the NITech HTS voice.
non_main='^(mbrola|rhvoice|libttspico|hts-voice-)'
main_voice_pkgs=$(awk -F'\t' -v non_main="$non_main" '!/^#/ && $1 != "speaker" {n = split($6, p, ",");
                  for (i = 1; i <= n; i++) if (p[i] !~ non_main) print p[i]}' "$table" | sort -u)
all_pkgs=$(echo $tools mbrola $all_voice_pkgs | tr ' ' '\n' | sort -u | tr '\n' ' ')
main_pkgs=$(echo $tools $main_voice_pkgs | tr ' ' '\n' | sort -u | tr '\n' ' ')

missing_pkgs() {  # the packages of "$@" that dpkg does not have installed (one dpkg-query for all)
  local installed
  installed=$(dpkg-query -W -f='${Package} ${Status}\n' "$@" 2>/dev/null | awk '/ install ok installed$/ {print $1}')
  printf '%s\n' "$@" | awk 'NR == FNR {ok[$1] = 1; next} !($1 in ok)' <(echo "$installed") -
}

installable_pkgs() {  # the packages of "$@" that apt has a candidate version of (one apt-cache call for all)
  local policy
  # Captured whole, then parsed: under pipefail, `apt-cache | grep -q` fails when grep exits first (SIGPIPE).
  policy=$(apt-cache policy "$@" 2>/dev/null) || true
  awk '/^[^ \t].*:$/ {pkg = substr($0, 1, length($0) - 1)} $1 == "Candidate:" && $2 != "(none)" {print pkg}' \
    <<<"$policy"
}

missing=$(missing_pkgs $all_pkgs)
if [ -z "$missing" ] && ! $dry_run; then
  echo "$0: all $(echo $all_pkgs | wc -w) demo voice packages are installed" \
       "($(ls /usr/share/mbrola | wc -l) MBROLA voices)"
  exit 0
fi

codename=$( . /etc/os-release 2>/dev/null; echo "${VERSION_CODENAME:-}")

# Add contrib and non-free to the Components of Debian deb822 entries: those signed by the Debian archive keyring or
# naming this release's suites. Idempotent; other repositories are left alone.
add_components_deb822() {
  awk -v codename="$codename" '
    function flush(   i, debian, line) {
      debian = (block ~ /Signed-By:[^\n]*debian-archive-keyring/) || \
               (codename != "" && block ~ ("\nSuites:[^\n]*[ \t]" codename "([ \t-]|\n|$)"))
      n = split(block, lines, "\n")
      for (i = 1; i <= n; i++) {
        line = lines[i]
        if (debian && line ~ /^Components:/) {
          if (line !~ /[ \t]contrib([ \t]|$)/) line = line " contrib"
          if (line !~ /[ \t]non-free([ \t]|$)/) line = line " non-free"
        }
        if (i > 1 || line != "") print line
      }
      block = ""
    }
    /^[ \t]*$/ { flush(); print; next }
    { block = block "\n" $0 }
    END { flush() }
  ' "$1"
}

# The same for one-line entries: `deb [options] uri suite components...` of this release.
add_components_oneline() {
  awk -v codename="$codename" '
    /^[ \t]*deb(-src)?[ \t]/ {
      line = $0; sub(/[ \t]+#.*$/, "", line)
      n = split(line, f, /[ \t]+/); s = 2
      if (f[s] ~ /^\[/) { while (s <= n && f[s] !~ /\]$/) s++; s++ }   # skip [options]
      suite = f[s + 1]
      if (codename == "" || suite ~ ("^" codename "([-/]|$)")) {
        if (line !~ /[ \t]contrib([ \t]|$)/) line = line " contrib"
        if (line !~ /[ \t]non-free([ \t]|$)/) line = line " non-free"
        print line; next
      }
    }
    { print }
  ' "$1"
}

enable_contrib_non_free() {
  local f tmp changed=0
  for f in "$apt_etc"/sources.list.d/*.sources "$apt_etc"/sources.list; do
    [ -f "$f" ] || continue
    # A dot name without the .sources/.list ending, which apt ignores, in the same directory for an atomic rename.
    tmp=$(mktemp "$(dirname "$f")/.$(basename "$f").XXXXXX.tmp")
    case $f in
      *.sources) add_components_deb822 "$f" > "$tmp" ;;
      *) add_components_oneline "$f" > "$tmp" ;;
    esac
    if cmp -s "$f" "$tmp"; then
      rm -f "$tmp"
    else
      echo "$0: enabling contrib non-free in $f:"; diff "$f" "$tmp" | sed 's/^/  /' || true
      if $dry_run; then
        rm -f "$tmp"
      else
        chmod --reference="$f" "$tmp" && chown --reference="$f" "$tmp" && mv "$tmp" "$f"
      fi
      changed=1
    fi
  done
  [ $changed = 1 ] || echo "$0: contrib and non-free already enabled in $apt_etc"
}

if $dry_run; then
  enable_contrib_non_free
  echo "$0: missing packages: ${missing:-none}"
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  cat >&2 <<EOF
$0: these packages are missing and installing them needs root:
  $(echo $missing)
Run this script as root (it edits the apt sources, updates and installs):
  sudo $0
or by hand, as root:
  1. add "contrib non-free" to the Components: line of each Debian entry in $apt_etc/sources.list.d/*.sources
     (and to each "deb" line of $apt_etc/sources.list);
  2. apt-get update
  3. apt-get install -y --no-install-recommends $(echo $missing)
Without contrib and non-free, install only the Debian main voices (a smaller corpus):
  apt-get install -y --no-install-recommends $(echo $(missing_pkgs $main_pkgs))
EOF
  exit 1
fi

enable_contrib_non_free
export DEBIAN_FRONTEND=noninteractive
apt-get update -q

installable=$(installable_pkgs $missing)
unavailable=$(printf '%s\n' $missing | awk 'NR == FNR {ok[$1] = 1; next} !($1 in ok)' <(echo "$installable") - |
              tr '\n' ' ')
if [ -n "$installable" ]; then
  apt-get install -y -q --no-install-recommends $installable
fi
if [ -n "${unavailable// /}" ]; then
  still=$(missing_pkgs $main_pkgs)
  if [ -n "$still" ]; then
    echo "$0: cannot install Debian main packages: $still" >&2
    exit 1
  fi
  echo "$0: WARNING: not available from this machine's apt sources (contrib/non-free refused?): $unavailable" >&2
  echo "$0: WARNING: falling back to the Debian main voices: the demo corpus will have fewer speakers" >&2
fi
echo "$0: done; $(ls /usr/share/mbrola 2>/dev/null | wc -l) MBROLA voices installed"
