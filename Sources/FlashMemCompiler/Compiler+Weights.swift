// Weight images → chunks in the data section, one image at a time, and the progress line `fmc compile` prints
// while it packs them. Owned by the compiler driver (Compiler.swift).

import FMBFormat

/// Cuts packed weight images into chunks of whole rows and appends them to the data section, in image order.
/// Lowering's image sink hands it each image as soon as it is packed (`Compiler.compile`), so with a payload on a
/// `StreamingBundleWriter` only one image's texels are ever in memory. Not thread-safe.
final class WeightWriter {
    var payload: PayloadBuilder
    let chunkBytes: Int
    let codec: Codec
    private(set) var chunks: [Chunk] = []
    /// Chunk indices per image, in image order.
    private(set) var chunksOf: [[Int]] = []
    private(set) var weightBytes: UInt64 = 0
    private(set) var storedBytes: UInt64 = 0
    /// The first image whose texels did not match its extent (a lowering bug); later images are not written.
    private(set) var failure: CompileError?

    init(payload: PayloadBuilder, options: CompileOptions) {
        self.payload = payload
        self.chunkBytes = options.chunkBytes
        self.codec = options.codec
    }

    /// Images added so far.
    var imageCount: Int { chunksOf.count }

    func add(_ weight: WeightImage) {
        let index = UInt32(chunksOf.count)
        var mine: [Int] = []
        defer { chunksOf.append(mine) }
        guard failure == nil else { return }
        guard weight.texels.count == weight.byteSize else {
            failure = CompileError(file: weight.name, "weight image '\(weight.name)' has \(weight.texels.count) bytes, "
                                   + "expected \(weight.byteSize)")
            return
        }
        let rowBytes = weight.width * weight.format.texelBytes
        let rowsPerChunk = max(1, min(weight.height, chunkBytes / rowBytes))
        weight.texels.withUnsafeBytes { texels in
            for layer in 0..<weight.layers {
                var y = 0
                while y < weight.height {
                    let rows = min(rowsPerChunk, weight.height - y)
                    let start = (layer * weight.height + y) * rowBytes
                    let raw = UnsafeRawBufferPointer(rebasing: texels[start..<(start + rows * rowBytes)])
                    let stored = payload.appendChunk(raw, codec: codec)
                    mine.append(chunks.count)
                    chunks.append(Chunk(image: index, layer: UInt32(layer), y: UInt32(y), rows: UInt32(rows),
                                        stored: stored))
                    storedBytes += stored.range.size
                    y += rows
                }
            }
        }
        weightBytes += UInt64(weight.byteSize)
    }
}

/// "packed 1.2 GiB of weights (about 24% of 5.0 GiB)" lines, one per tenth of the expected total and at most one
/// per second otherwise, so a large model shows it is moving without flooding the terminal. The total is an
/// estimate from the float initializers (images pad to whole texel blocks and rows; small constants stay in the
/// arena), so the share is capped at 99% until lowering is done.
struct WeightProgress {
    let expected: UInt64
    private(set) var packed: UInt64 = 0
    private(set) var images = 0
    private var lastTenth = 0
    private var lastTime = ContinuousClock.now

    init(expected: UInt64) {
        self.expected = expected
    }

    /// Counts one packed image; returns a line when one is due.
    mutating func packed(_ bytes: UInt64) -> String? {
        packed += bytes
        images += 1
        let tenth = expected > 0 ? Int(min(packed, expected) * 10 / expected) : 0
        let now = ContinuousClock.now
        guard tenth > lastTenth || now - lastTime >= .seconds(1) else { return nil }
        lastTenth = max(lastTenth, tenth)
        lastTime = now
        return line
    }

    /// The last line, once lowering is done (nil when it packed nothing).
    var summary: String? {
        images > 0 ? "packed \(BundleInspector.bytes(packed)) of weights in \(images) images" : nil
    }

    private var line: String {
        // Past the estimate (padding to whole texel blocks and rows outgrows it in small models), no share.
        guard packed <= expected else { return "packed \(BundleInspector.bytes(packed)) of weights" }
        let share = expected > 0 ? min(99, Int(Double(packed) / Double(expected) * 100)) : 0
        return "packed \(BundleInspector.bytes(packed)) of weights (about \(share)% of \(BundleInspector.bytes(expected)))"
    }
}
