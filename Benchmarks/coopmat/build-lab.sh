#!/bin/sh
# Builds gemm-lab (gemm_lab.c) with shaderc linked statically, as build-peak.sh builds coopmat-peak.
#   build-lab.sh [OUTPUT]   (default: .device/bin/gemm-lab)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-.device/bin/gemm-lab}
mkdir -p "$(dirname "$out")"
gcc -O2 -Wall -Wextra -Wno-missing-field-initializers -o "$out" "$here/gemm_lab.c" -lvulkan -lshaderc_combined -lSPIRV \
    -lglslang -lMachineIndependent -lOSDependent -lOGLCompiler -lGenericCodeGen -lSPIRV-Tools-opt -lSPIRV-Tools \
    -lstdc++ -lpthread -lm
echo "built $out"
