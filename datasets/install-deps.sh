#!/usr/bin/env bash
# Installs, from Debian's packages, everything trit builds and runs with, and the
# Fashion-MNIST dataset (dataset-fashion-mnist puts its gzipped IDX files in
# /usr/share/datasets/fashion-mnist). Safe to run again: it installs only what is missing.
set -euo pipefail
packages=(g++ cmake make libeigen3-dev libstb-dev doctest-dev zlib1g-dev libcli11-dev
          nlohmann-json3-dev libzstd-dev dataset-fashion-mnist)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "Fashion-MNIST: /usr/share/datasets/fashion-mnist"
