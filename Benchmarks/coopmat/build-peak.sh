#!/bin/sh
# Builds coopmat-peak (coopmat_peak.c) with shaderc linked statically (the archives fmc links, DESIGN.md
# "Toolchain"), so the binary needs only libvulkan.so.1, libstdc++ and libc on the device machine.
#   build-peak.sh [OUTPUT]   (default: .device/bin/coopmat-peak)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-.device/bin/coopmat-peak}
mkdir -p "$(dirname "$out")"
gcc -O2 -Wall -Wextra -Wno-missing-field-initializers -o "$out" "$here/coopmat_peak.c" -lvulkan -lshaderc_combined -lSPIRV -lglslang \
    -lMachineIndependent -lOSDependent -lOGLCompiler -lGenericCodeGen -lSPIRV-Tools-opt -lSPIRV-Tools \
    -lstdc++ -lpthread -lm
echo "built $out"
