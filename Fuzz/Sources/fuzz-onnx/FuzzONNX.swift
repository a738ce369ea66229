// libFuzzer target: untrusted bytes as an .onnx file → the importer, graph simplification (constant folding
// included) and shape inference: everything `fmc compile` does before lowering (which compiles shaders, too slow
// to fuzz). Every input must either throw or prepare a graph; a trap, an AddressSanitizer report, a hang or
// runaway memory is a bug.
//
// The importer maps a path (as fmc does), so each input is written to one scratch file per process first. The
// file sits alone in its own directory: external data locations that a mutation makes up resolve beside it
// and find nothing, or are refused for leaving the folder.

import FlashMemCompiler
import Foundation

private let scratch: String = {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fuzz-onnx-\(getpid())")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.appendingPathComponent("model.onnx").path
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzONNX(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Data(bytes: data ?? UnsafePointer(bitPattern: 1)!, count: data == nil ? 0 : size)
    guard FileManager.default.createFile(atPath: scratch, contents: bytes) else {
        fatalError("cannot write the scratch model \(scratch)")
    }
    _ = try? ONNXImporter.prepare(path: scratch)
    return 0
}
