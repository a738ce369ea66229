#!/usr/bin/env bash
# Regenerates the protobuf-c bindings of onnx.proto (needs protobuf-c-compiler).
# proto/onnx.proto is the copy shipped by the onnx Python package 1.23.2.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
protoc-c --proto_path=proto --c_out=. proto/onnx.proto
mv onnx.pb-c.h include/onnx.pb-c.h
