// Weight copies merged into one region per run of chunks (ChunkStreamer.copyRegion): which chunks form one region,
// and that streaming with merged copies equals one copy per chunk and preload, bit for bit, on lavapipe.

import CVulkan
import FMBFormat
import XCTest
@testable import FlashMemCompiler
@testable import FlashMemRuntime
import TestSupport

final class CopyRegionTests: XCTestCase {
    /// A chunk of an image `width` texels of 16 bytes wide.
    private func chunk(layer: UInt32, y: UInt32, rows: UInt32, width: UInt32 = 64) -> Chunk {
        Chunk(image: 0, layer: layer, y: y, rows: rows, payload: DataRange(offset: 0, size: 0),
              rawSize: UInt64(rows) * UInt64(width) * 16, codec: .none, checksum: 0)
    }

    private func region(_ chunks: [Chunk], offsets: [UInt64]? = nil) -> VkBufferImageCopy? {
        var next: UInt64 = 4096
        let packed = chunks.map { c -> UInt64 in defer { next += c.rawSize }; return next }
        return ChunkStreamer.copyRegion(chunks, offsets: offsets ?? packed, width: 64, layerHeight: 16)
    }

    func testRowsOfOneLayerAndWholeLayersAreOneRegion() throws {
        // The next rows of one layer: one region from the first row, as many rows as the chunks.
        let rows = try XCTUnwrap(region([chunk(layer: 2, y: 4, rows: 4), chunk(layer: 2, y: 8, rows: 8)]))
        XCTAssertEqual(rows.bufferOffset, 4096)
        XCTAssertEqual(rows.imageSubresource.baseArrayLayer, 2)
        XCTAssertEqual(rows.imageSubresource.layerCount, 1)
        XCTAssertEqual(rows.imageOffset.y, 4)
        XCTAssertEqual(rows.imageExtent.height, 12)
        XCTAssertEqual(rows.imageExtent.width, 64)

        // Whole consecutive layers: one region of three layers.
        let layers = try XCTUnwrap(region((3..<6).map { chunk(layer: $0, y: 0, rows: 16) }))
        XCTAssertEqual(layers.imageSubresource.baseArrayLayer, 3)
        XCTAssertEqual(layers.imageSubresource.layerCount, 3)
        XCTAssertEqual(layers.imageOffset.y, 0)
        XCTAssertEqual(layers.imageExtent.height, 16)

        // One chunk is always its own region.
        XCTAssertEqual(region([chunk(layer: 1, y: 3, rows: 5)])?.imageExtent.height, 5)
    }

    func testChunksThatDoNotContinueEachOtherAreNot() {
        XCTAssertNil(region([chunk(layer: 0, y: 0, rows: 4), chunk(layer: 0, y: 8, rows: 4)]), "a gap in the rows")
        XCTAssertNil(region([chunk(layer: 0, y: 8, rows: 8), chunk(layer: 1, y: 0, rows: 16)]), "part of a layer, then the next")
        XCTAssertNil(region([chunk(layer: 0, y: 0, rows: 16), chunk(layer: 2, y: 0, rows: 16)]), "a layer skipped")
        XCTAssertNil(region([chunk(layer: 0, y: 0, rows: 16), chunk(layer: 1, y: 0, rows: 8)]), "a part of the next layer")
        let a = chunk(layer: 0, y: 0, rows: 4), b = chunk(layer: 0, y: 4, rows: 4)
        XCTAssertNil(region([a, b], offsets: [0, a.rawSize + 256]), "bytes apart in the ring (it wrapped)")
        XCTAssertNotNil(region([a, b], offsets: [256, 256 + a.rawSize]))
    }

    /// A product whose weight image has 13 layers of 16 rows, cut into chunks of part of a layer (4 KiB) or of whole
    /// layers (1 MiB): streamed with merged copies, streamed with one copy per chunk and preloaded, the outputs are
    /// equal; the merged run records fewer copy commands than chunks (`RunStats.copyCommands`), the other one each.
    /// Decoding on 1 or 3 threads (`SessionOptions.decodeThreads`) instead of every core changes nothing either.
    func testMergedCopiesEqualOneCopyPerChunk() throws {
        var b = GraphBuilder()
        b.input("a", [8, 256])
        b.constant("w", [256, 3072])
        b.node("MatMul", ["a", "w"], "y", [8, 3072])
        b.outputs = ["y"]
        var rng = ReferenceOps.SeededRandom(seed: 21)
        let feeds = [HostTensor(name: "a", shape: [8, 256], floats: rng.floats(8 * 256))]
        let program = try Lowering.lower(b.graph(), precision: .fp32, compiler: ShaderCompiler())
        // Chunks of 256 KiB are half a layer of the weight's 1024 × 32 × 7 image: the first run's waves (a quarter of
        // its 3.5 MiB ring) hold three, which merge.
        for chunkBytes in [4096, 256 << 10] {
            var options = CompileOptions()
            options.chunkBytes = chunkBytes
            let compiled = try Compiler.assemble(program, name: "copies", options: options)
            let loaded = LoadedBundle(bundle: compiled.bundle, payload: compiled.payload)
            let chunks = compiled.bundle.chunks
            var outputs: [[HostTensor]] = []
            for (mode, perChunk, threads) in [(LoadMode.streaming, false, 0), (.streaming, true, 0), (.preload, false, 0),
                                              (.streaming, false, 1), (.streaming, false, 3)] {
                var sessionOptions = SessionOptions(loadMode: mode)
                sessionOptions.copyPerChunk = perChunk
                sessionOptions.decodeThreads = threads
                let session = try Session(bundle: loaded, device: device(), options: sessionOptions)
                for run in 0..<2 {  // the first run copies every chunk; the plan keeps them resident after
                    outputs.append(try session.run(inputs: feeds))
                    let stats = try XCTUnwrap(session.lastStats)
                    guard mode == .streaming, run == 0 else { continue }
                    XCTAssertEqual(stats.chunksStreamed, chunks.count)
                    if perChunk {
                        XCTAssertEqual(stats.copyCommands, chunks.count)
                    } else {
                        XCTAssertLessThan(stats.copyCommands, chunks.count, "chunks of \(chunkBytes) bytes: merged")
                    }
                }
            }
            for other in outputs.dropFirst() { XCTAssertEqual(other, outputs[0], "chunks of \(chunkBytes) bytes") }
        }
    }

    /// The copies' time is the union of their timestamp intervals: overlapping ones (a start stamped while an earlier
    /// copy runs) count once, disjoint ones add up, zero-length ones (the later chunks of a merged copy) add nothing.
    func testCopyTimeIsTheUnionOfTheCopiesIntervals() {
        XCTAssertEqual(Session.unionLength([]), 0)
        XCTAssertEqual(Session.unionLength([(0, 2), (1, 3)]), 3, "overlapping: their sum would be 4")
        XCTAssertEqual(Session.unionLength([(5, 6), (0, 1), (2, 4)]), 4, "disjoint, in any order")
        XCTAssertEqual(Session.unionLength([(0, 10), (2, 3), (3, 3), (9, 12)]), 12, "nested and zero-length")
        XCTAssertEqual(Session.unionLength([(2, 1)]), 0, "reversed counts nothing")
    }
}
