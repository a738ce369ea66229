#!/usr/bin/env bash
# Unpacks the carried binaries in DIR (default .device/bin, relative to the caller's directory): NAME.gz with
# gunzip, NAME.xz (fmc is 69 MB stripped, 17.6 MB as xz -9 against 26.7 MB gzipped: two compilers fit the 64 MiB
# the device carries) with Python's lzma, since the device machine need not have xz. Sourced by the device scripts.
unpack_bins() {
  local dir=${1:-bin} f
  for f in "$dir"/*.gz; do [ -e "$f" ] && gunzip -f "$f"; done
  for f in "$dir"/*.xz; do
    [ -e "$f" ] && python3 -c 'import lzma, os, shutil, sys
p = sys.argv[1]
with lzma.open(p) as src, open(p[:-3], "wb") as dst: shutil.copyfileobj(src, dst)
os.remove(p)' "$f"
  done
  chmod +x "$dir"/*
}
