// Constants the lowering makes out of the model's own weights, held the way the model's weights are: written to a
// temporary file that is mapped and unlinked at once, so their bytes are read through the mapping and their pages
// leave the resident set with the model's after each packed image (`LoweringContext.releaseSourcePages`). Held
// in memory, GPT-Neo-2.7B's 32 concatenated Q/K/V weights (`LoweringPasses.fuseSharedInputProducts`) were 2.5 GB
// for the whole lowering, and the compiler's peak RSS went from 1.2 to 5.9 GiB.

import Foundation
import FMBFormat
#if canImport(Glibc)
import Glibc
#endif

enum DerivedConstant {
    /// `parts` concatenated along `axis` into a tensor of `shape` (the parts agree on every other axis and on the
    /// dtype), written to a temporary file in `directory` (default: Foundation's temporary directory, $TMPDIR or
    /// /tmp) and mapped; the file is unlinked at once, so it goes when the mapping does. Reads each part once, in
    /// order. Throws `FileError`.
    static func concatenate(_ parts: [ConstantTensor], axis: Int, shape: [Int],
                            directory: String? = nil) throws -> (tensor: ConstantTensor, file: MappedFile) {
        let dir = directory ?? FileManager.default.temporaryDirectory.path
        var template = Array("\(dir)/fmc-constant-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        let path = String(cString: template)
        guard fd >= 0 else { throw FileError(path: path, call: "mkstemp", errno: errno) }
        defer { close(fd) }
        let mapped: MappedFile
        do {
            // Runs go through a buffer of about 8 MiB: one write(2) per buffer, not per run.
            let limit = 8 << 20
            var buffer: [UInt8] = []
            buffer.reserveCapacity(limit)
            try MovementCopy.forEachRun(of: parts, axis: axis, shape: shape) { run in
                buffer.append(contentsOf: run)
                if buffer.count >= limit {
                    try buffer.withUnsafeBytes { try FileIO.writeAll(fd, $0, path: path) }
                    buffer.removeAll(keepingCapacity: true)
                }
            }
            try buffer.withUnsafeBytes { try FileIO.writeAll(fd, $0, path: path) }
            mapped = try MappedFile(path: path)
        } catch {
            unlink(path)
            throw error
        }
        unlink(path)
        let count = shape.reduce(1, *) * parts[0].dtype.byteSize
        precondition(mapped.bytes.count == count, "the derived constant's file holds every byte")
        let bytes = TensorBytes(mapped: mapped, offset: 0, count: count)
        return (ConstantTensor(dtype: parts[0].dtype, shape: shape, bytes: bytes), mapped)
    }
}
