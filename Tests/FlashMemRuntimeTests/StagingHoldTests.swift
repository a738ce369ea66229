// A staging ring that holds every chunk a run streams keeps them decoded between runs (ChunkStreamer.decoded):
// later warm runs only copy. On lavapipe: the outputs stay those of preload, and the bytes read from the bundle
// show which runs decoded.

import FMBFormat
import XCTest
@testable import FlashMemCompiler
@testable import FlashMemRuntime
import TestSupport

final class StagingHoldTests: XCTestCase {
    /// Three products (1, 1 and 0.25 MiB of weights) in 4 KiB chunks, planned for 60% of the weights: some stay resident,
    /// the rest stream every run. With a ring that holds every chunk, the first run's program decodes them all, the
    /// warm program (sharing that ring) decodes its streamed set once after it, and later runs read nothing from the
    /// bundle; after releaseDeviceMemory the same again. With a small ring, every run decodes what it streams. Outputs
    /// equal preload's.
    func testARingThatHoldsTheStreamedSetDecodesItOnce() throws {
        var b = GraphBuilder()
        b.input("a", [8, 256])
        b.constant("w1", [256, 1024])
        b.constant("w2", [1024, 256])
        b.constant("w3", [256, 256])
        b.node("MatMul", ["a", "w1"], "h", [8, 1024])
        b.node("MatMul", ["h", "w2"], "g", [8, 256])
        b.node("MatMul", ["g", "w3"], "y", [8, 256])
        b.outputs = ["y"]
        var rng = ReferenceOps.SeededRandom(seed: 5)
        let feeds = [HostTensor(name: "a", shape: [8, 256], floats: rng.floats(8 * 256))]
        let program = try Lowering.lower(b.graph(), precision: .fp32, compiler: ShaderCompiler())
        var options = CompileOptions()
        options.chunkBytes = 4096
        options.memoryBudget = .fractionOfWeights(0.6)
        let compiled = try Compiler.assemble(program, name: "hold", options: options)
        let loaded = LoadedBundle(bundle: compiled.bundle, payload: compiled.payload)
        let expected = try Session(bundle: loaded, device: device(), options: SessionOptions(loadMode: .preload))
            .run(inputs: feeds)

        var large = SessionOptions(loadMode: .streaming)
        large.stagingBytes = 64 << 20
        let held = try Session(bundle: loaded, device: device(), options: large)
        func runs(_ count: Int) throws -> [(read: UInt64, streamed: UInt64)] {
            try (0..<count).map { _ in
                XCTAssertEqual(try held.run(inputs: feeds), expected)
                let stats = try XCTUnwrap(held.lastStats)
                return (stats.bytesRead, stats.bytesStreamed)
            }
        }
        for round in ["new session", "after releaseDeviceMemory"] {
            let r = try runs(4)
            XCTAssertLessThan(r[1].streamed, r[0].streamed, "\(round): some weights stay resident")
            XCTAssertGreaterThan(r[1].streamed, 0, "\(round): a budget of half the weights streams every run")
            XCTAssertEqual(r[0].read, r[0].streamed, "\(round): the first run decodes every chunk")
            XCTAssertEqual(r[1].read, r[1].streamed, "\(round): the first run's program wrote the shared ring")
            XCTAssertEqual(r[2].read, 0, "\(round): later runs find the streamed set in the ring")
            XCTAssertEqual(r[3].read, 0, round)
            XCTAssertTrue(held.releaseDeviceMemory())
        }

        var small = SessionOptions(loadMode: .streaming)
        small.stagingBytes = 16 << 10
        small.holdStreamedSetBytes = 0
        let ring = try Session(bundle: loaded, device: device(), options: small)
        for run in 0..<3 {
            XCTAssertEqual(try ring.run(inputs: feeds), expected)
            let stats = try XCTUnwrap(ring.lastStats)
            XCTAssertEqual(stats.bytesRead, stats.bytesStreamed, "run \(run): a ring smaller than the set decodes it all")
            XCTAssertEqual(stats.memory.stagingBytes, ring.memory.stagingBytes)
            XCTAssertLessThan(stats.memory.stagingBytes, stats.bytesStreamed, "run \(run): the ring stays small")
        }

        // A small ring, but a streamed set under holdStreamedSetBytes: the first warm run grows the ring to hold it
        // (the first run does not), decodes into it, and later runs only copy; the session reports the grown ring.
        var growing = small
        growing.holdStreamedSetBytes = 64 << 20
        let grows = try Session(bundle: loaded, device: device(), options: growing)
        var rings: [UInt64] = []
        for run in 0..<4 {
            XCTAssertEqual(try grows.run(inputs: feeds), expected)
            let stats = try XCTUnwrap(grows.lastStats)
            rings.append(stats.memory.stagingBytes)
            XCTAssertEqual(stats.bytesRead, run < 2 ? stats.bytesStreamed : 0, "run \(run)")
        }
        XCTAssertLessThan(rings[0], rings[1], "the first warm run grew the ring")
        XCTAssertGreaterThanOrEqual(rings[1], try XCTUnwrap(grows.lastStats).bytesStreamed, "it holds the streamed set")
        XCTAssertEqual(rings[3], rings[1])
        XCTAssertTrue(grows.releaseDeviceMemory())
        for run in 0..<3 {
            XCTAssertEqual(try grows.run(inputs: feeds), expected)
            let stats = try XCTUnwrap(grows.lastStats)
            XCTAssertEqual(stats.bytesRead, run < 2 ? stats.bytesStreamed : 0, "after releaseDeviceMemory, run \(run)")
        }

        // A streamed set over holdStreamedSetBytes: the ring never grows.
        var over = small
        over.holdStreamedSetBytes = 64 << 10
        let stays = try Session(bundle: loaded, device: device(), options: over)
        for run in 0..<3 {
            XCTAssertEqual(try stays.run(inputs: feeds), expected)
            let stats = try XCTUnwrap(stays.lastStats)
            XCTAssertEqual(stats.bytesRead, stats.bytesStreamed, "run \(run): a set over the limit is decoded every run")
        }
    }
}
