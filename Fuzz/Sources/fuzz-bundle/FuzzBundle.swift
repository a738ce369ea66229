// libFuzzer target: untrusted bytes → the bundle reader and its one validator, then what the runtime derives from
// a bundle that passed before it touches Vulkan. Every input must either throw (FileError / FormatError) or load;
// a trap, an AddressSanitizer report, a hang or runaway memory is a bug.
//
// Each input is tried twice: as is, and "resealed" (the section table's and the sections' fm64 checksums
// recomputed), because a random mutation almost never keeps a checksum right: without resealing the fuzzer would
// only ever exercise the header and table checks, never the section decoders or the meaning pass behind them.

@testable import FlashMemRuntime
import FMBFormat
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzBundle(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: data == nil ? 0 : size))
    exercise(input)
    if let resealed = Reseal.resealed(input), resealed != input {
        // For turning a crash into a regression file: the bytes the reader saw (`fuzz-bundle CRASH_FILE`).
        if let out = ProcessInfo.processInfo.environment["FUZZ_RESEALED_OUT"] {
            _ = FileManager.default.createFile(atPath: out, contents: Data(resealed))
        }
        exercise(resealed)
    }
    return 0
}

/// Reads `bytes` the way the runtime does, then uses what loaded.
private func exercise(_ bytes: [UInt8]) {
    // The checksum verification pass decodes every chunk (zstd included); run it on every input.
    guard let loaded = try? BundleReader.load(bytes: bytes, verifyChecksums: true) else { return }
    do {
        try loaded.validate()
    } catch {
        fatalError("BundleReader.load accepted a bundle that validate() refuses: \(error)")
    }
    // What a Session derives before creating any Vulkan object; it trusts the validator for every index.
    let plan = ExecutionPlan(loaded)
    _ = plan.streamingBatches(stepCount: loaded.bundle.program.count)
    _ = BundleInspector.describe(loaded)
    _ = MemoryTimeline(bundle: loaded.bundle).svg(title: "fuzz")  // fmc inspect --timeline
}

/// Recomputes the checksums the structure pass checks, where the header and section table are in bounds.
enum Reseal {
    static func resealed(_ input: [UInt8]) -> [UInt8]? {
        var bytes = input
        guard bytes.count >= FileLayout.headerSize else { return nil }
        func u32(_ at: Int) -> Int { Int(bytes.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: UInt32.self)) }) }
        func u64(_ at: Int) -> UInt64 { bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: UInt64.self)) } }
        func put(_ value: UInt64, at: Int) {
            withUnsafeBytes(of: value.littleEndian) { bytes.replaceSubrange(at..<(at + 8), with: $0) }
        }
        let tableOffset = u64(24), count = u32(32), entrySize = u32(36)
        guard entrySize >= FileLayout.sectionEntrySize, count <= 1024, tableOffset <= UInt64(bytes.count),
              Int(tableOffset) + count * entrySize <= bytes.count else { return nil }
        for i in 0..<count {
            let at = Int(tableOffset) + i * entrySize
            let offset = u64(at + 8), length = u64(at + 16)
            guard offset <= UInt64(bytes.count), length <= UInt64(bytes.count) - offset else { continue }
            let sum = bytes.withUnsafeBytes { Checksum.fm64(UnsafeRawBufferPointer(rebasing: $0[Int(offset)..<Int(offset + length)])) }
            put(sum, at: at + 24)
        }
        let table = Int(tableOffset)..<(Int(tableOffset) + count * entrySize)
        put(bytes.withUnsafeBytes { Checksum.fm64(UnsafeRawBufferPointer(rebasing: $0[table])) }, at: 40)
        return bytes
    }
}
