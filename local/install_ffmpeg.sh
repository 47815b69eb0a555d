#!/usr/bin/env bash
# Installs ffmpeg, which the VoxCeleb recipe needs: stage 0 writes VoxCeleb2's m4a files into wav.scp as
# `ffmpeg ... |` pipes and reads their durations with ffprobe; local/rehearse_voxceleb.sh encodes its m4a with it.
#
# Usage: local/install_ffmpeg.sh
#   Does nothing (exit 0) when ffmpeg and ffprobe are on the PATH.
#   As root with apt-get (Debian/Ubuntu): apt-get update (a fresh machine has no package lists), then installs
#   ffmpeg without its recommends (Debian 12: 79 packages, 41 MB downloaded, 132 MB on disk).
#   As any other user, or without apt-get: prints what to run and exits 1.
set -euo pipefail
command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  cat >&2 <<MSG
$0: ffmpeg is missing; the VoxCeleb recipe decodes VoxCeleb2's m4a files through it. As root:
  apt-get update && apt-get install -y --no-install-recommends ffmpeg
(or your system's package manager's ffmpeg package)
MSG
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends ffmpeg
