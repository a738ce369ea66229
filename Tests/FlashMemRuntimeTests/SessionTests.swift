import XCTest
@testable import FlashMemRuntime
import TestSupport

/// End-to-end runs of a hand-built bundle on the default device (lavapipe in CI).
final class SessionTests: XCTestCase {
    func input(seed: UInt64 = 7) -> [Float] {
        var rng = SplitMix(seed: seed)
        return (0..<TinyModel.n).map { _ in rng.float(in: -4...4) }
    }

    func assertClose(_ got: [Float], _ expected: [Float], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.count, expected.count, file: file, line: line)
        for (i, (g, e)) in zip(got, expected).enumerated() where abs(g - e) > 1e-5 * max(1, abs(e)) {
            XCTFail("element \(i): got \(g), expected \(e)", file: file, line: line)
            return
        }
    }

    func testStreamingAndPreloadMatchTheCPUAndEachOther() throws {
        let model = try TinyModel()
        XCTAssertTrue(model.bundle.chunks.contains { $0.codec == .zstd }, "W2 should be stored compressed")
        let x = input()
        let expected = model.reference(x)
        let inputs = [HostTensor(name: "x", shape: [2, 64], floats: x)]

        // A tiny staging request forces the ring to its minimum (two chunks), so slots are reused (and it must not
        // grow to hold the streamed set after the first run).
        var tiny = SessionOptions(loadMode: .streaming, stagingBytes: 1)
        tiny.holdStreamedSetBytes = 0
        let streaming = try Session(bundle: model.loaded(), device: device(), options: tiny)
        let preload = try Session(bundle: model.loaded(), device: device(),
                                  options: SessionOptions(loadMode: .preload))
        var outputs: [[HostTensor]] = []
        for _ in 0..<2 {
            outputs.append(try streaming.run(inputs: inputs))
            let stats = try XCTUnwrap(streaming.lastStats)
            XCTAssertEqual(stats.chunksStreamed, 12)
            XCTAssertEqual(stats.bytesStreamed, model.bundle.chunks.reduce(0) { $0 + $1.rawSize })
            XCTAssertNil(stats.loadSeconds)
        }
        for run in 0..<2 {
            outputs.append(try preload.run(inputs: inputs))
            let stats = try XCTUnwrap(preload.lastStats)
            XCTAssertEqual(stats.chunksStreamed, run == 0 ? 12 : 0, "preload streams only in its first run")
            XCTAssertEqual(stats.loadSeconds == nil, run > 0)
        }
        for output in outputs {
            XCTAssertEqual(output.count, 1)
            XCTAssertEqual(output[0].name, "y")
            XCTAssertEqual(output[0].shape, [2, 64])
            XCTAssertEqual(output[0].elementType, .float32)
            assertClose(output[0].floats(), expected)
            XCTAssertEqual(output[0].bytes, outputs[0][0].bytes, "all runs and both modes must agree bit for bit")
        }

        // Lifetimes [0,0], [1,2], [3,4] do not overlap: streaming overlays all three images.
        XCTAssertLessThan(streaming.memory.weightBytes, preload.memory.weightBytes)
        XCTAssertEqual(streaming.memory.unaliasedWeightBytes, preload.memory.weightBytes)
        XCTAssertEqual(streaming.weights.offsets, [0, 0, 0])
        XCTAssertEqual(Set(preload.weights.offsets).count, 3)
        XCTAssertEqual(streaming.memory.stagingBytes, 512, "two 128-byte chunks in 256-byte slots")
        XCTAssertTrue(streaming.warm.streamer!.ring.reuseWait.contains { $0 != nil }, "ring slots must be reused")
        XCTAssertNil(preload.warm.streamer, "preload streams nothing after loading")
        XCTAssertNil(preload.first, "preload frees its loading program after loading")
    }

    func testDifferentInputsGiveDifferentOutputsAcrossRuns() throws {
        // Guards against a run reading stale arena contents from the previous run.
        let model = try TinyModel()
        // Also guards the reuse of output storage: outputs the caller keeps must not change under it.
        let session = try Session(bundle: model.loaded(), device: device())
        var kept: [(x: [Float], y: HostTensor)] = []
        for seed in [1, 2, 3] as [UInt64] {
            let x = input(seed: seed)
            let y = try session.run(inputs: [HostTensor(name: "x", shape: [2, 64], floats: x)])
            assertClose(y[0].floats(), model.reference(x))
            kept.append((x, y[0]))
        }
        for (x, y) in kept { assertClose(y.floats(), model.reference(x)) }
        for seed in [4, 5] as [UInt64] {   // outputs dropped each time: storage is reused in place
            let x = input(seed: seed)
            assertClose(try session.run(inputs: [HostTensor(name: "x", shape: [2, 64], floats: x)])[0].floats(),
                        model.reference(x))
        }
    }

    /// Residency outlives runs: the first run loads every image, later runs copy only the streamed ones (none when
    /// all are resident), and outputs stay bit-identical to preload.
    func testResidentImagesAreLoadedOnceAndKept() throws {
        let model = try TinyModel()
        let x = input()
        let inputs = [HostTensor(name: "x", shape: [2, 64], floats: x)]
        let preload = try Session(bundle: model.loaded(), device: device(), options: SessionOptions(loadMode: .preload))
        let reference = try preload.run(inputs: inputs)[0].bytes
        let chunkBytes = model.bundle.chunks.map(\.rawSize)
        let imageBytes = model.bundle.images.indices.map { i in
            zip(model.bundle.chunks, chunkBytes).filter { $0.0.image == UInt32(i) }.reduce(UInt64(0)) { $0 + $1.1 }
        }
        for resident in [[false, true, false], [true, true, true], [true, false, false]] {
            var bundle = model.bundle
            bundle.placement = try TinyModel.streamedPlacement(bundle, resident: resident)
            let session = try Session(bundle: LoadedBundle(bundle: bundle, payload: model.payload, path: "tiny.fmb"),
                                      device: device())
            XCTAssertEqual(session.memory.residentImages, resident.filter { $0 }.count)
            for run in 0..<3 {
                let y = try session.run(inputs: inputs)
                XCTAssertEqual(y[0].bytes, reference, "resident \(resident), run \(run) differs from preload")
                let streamed = session.lastStats!.bytesStreamed
                let expected = run == 0 ? imageBytes.reduce(0, +)
                    : imageBytes.indices.filter { !resident[$0] }.reduce(UInt64(0)) { $0 + imageBytes[$1] }
                XCTAssertEqual(streamed, expected, "resident \(resident), run \(run)")
            }
            XCTAssertTrue(session.weightsResident)
        }
    }

    /// A weight space larger than one segment becomes several allocations, each image inside one.
    func testWeightSpaceSpansSeveralAllocations() throws {
        let model = try TinyModel()
        var bundle = model.bundle
        let sizes = bundle.images.map { alignUp($0.byteSize, 256) }
        let segment = sizes.max()!
        let placed = try SlotPlacement.place(sizes: sizes, alignments: sizes.map { _ in 256 }, resident: [true, true, true],
                                             windows: bundle.imageWindows(), segmentBytes: segment)
        bundle.placement = Placement(weightSpaceBytes: placed.end, segmentBytes: segment, slotAlignment: 256,
                                     method: .allResident, slots: sizes.indices.map {
                                         Placement.Slot(resident: true, offset: placed.offsets[$0], size: sizes[$0]) })
        let session = try Session(bundle: LoadedBundle(bundle: bundle, payload: model.payload, path: "tiny.fmb"),
                                  device: device())
        XCTAssertEqual(session.memory.weightAllocations, 3)
        let x = input()
        for _ in 0..<2 {
            assertClose(try session.run(inputs: [HostTensor(name: "x", shape: [2, 64], floats: x)])[0].floats(),
                        model.reference(x))
        }
        XCTAssertEqual(session.lastStats!.bytesStreamed, 0)
    }

    /// The runtime refuses to go past the plan's budget, e.g. when the device pads images past their slots.
    func testBudgetIsEnforcedAtSessionCreation() throws {
        let model = try TinyModel()
        var bundle = model.bundle
        bundle.placement = try TinyModel.streamedPlacement(bundle)
        bundle.schedule.budgetBytes = bundle.meta.arenaSize + bundle.placement!.weightSpaceBytes
        XCTAssertNoThrow(try Session(bundle: LoadedBundle(bundle: bundle, payload: model.payload, path: "tiny.fmb"),
                                     device: device()))
        // Slots smaller than the images: the validator refuses them before the session touches the device.
        for i in bundle.placement!.slots.indices { bundle.placement!.slots[i] = Placement.Slot(resident: false, offset: 0, size: 16) }
        bundle.placement!.weightSpaceBytes = 16
        bundle.schedule.budgetBytes = bundle.meta.arenaSize + 16
        XCTAssertThrowsError(try Session(bundle: LoadedBundle(bundle: bundle, payload: model.payload, path: "tiny.fmb"),
                                         device: device())) { error in
            XCTAssertTrue(error is FormatError && "\(error)".contains("placement.slots[0].size"), "\(error)")
        }
    }

    /// A bundle without a placement (format 1.0/1.1) is refused with a message saying what to do.
    func testBundlesWithoutAPlacementAreRefused() throws {
        let model = try TinyModel()
        var bundle = model.bundle
        bundle.placement = nil
        XCTAssertThrowsError(try Session(bundle: LoadedBundle(bundle: bundle, payload: model.payload, path: "tiny.fmb"),
                                         device: device())) { error in
            XCTAssertTrue("\(error)".contains("compile the model again"), "\(error)")
        }
    }

    func testPreloadCanLoadBeforeTheFirstRun() throws {
        let model = try TinyModel()
        let session = try Session(bundle: model.loaded(), device: device(), options: SessionOptions(loadMode: .preload))
        XCTAssertFalse(session.weightsResident)
        let load = try session.loadWeights()
        XCTAssertEqual(load.bytes, model.bundle.chunks.reduce(0) { $0 + $1.rawSize })
        XCTAssertTrue(session.weightsResident)
        XCTAssertEqual(try session.loadWeights().bytes, 0, "a second load does nothing")
        let x = input()
        let y = try session.run(inputs: [HostTensor(name: "x", shape: [2, 64], floats: x)])
        assertClose(y[0].floats(), model.reference(x))
        XCTAssertNil(session.lastStats?.loadSeconds)
        XCTAssertEqual(session.lastStats?.chunksStreamed, 0)
    }

    func testFloat16InputIsConvertedAtTheBoundary() throws {
        let model = try TinyModel(inputType: .float16)
        let x = input().map { halfToFloat(floatToHalf($0)) }
        let halves = x.map(floatToHalf)
        let session = try Session(bundle: model.loaded(), device: device())
        let y = try session.run(inputs: [HostTensor(name: "x", elementType: .float16, shape: [2, 64],
                                                    bytes: halves.withUnsafeBytes { Array($0) })])
        assertClose(y[0].floats(), model.reference(x))
    }

    func testProfileReportsOneTimePerStep() throws {
        let model = try TinyModel()
        let session = try Session(bundle: model.loaded(), device: device(), options: SessionOptions(profile: true))
        _ = try session.run(inputs: [HostTensor(name: "x", shape: [2, 64], floats: input())])
        let times = try XCTUnwrap(session.lastStats?.stepSeconds)
        XCTAssertEqual(times.count, 5)
        XCTAssertTrue(times.allSatisfy { $0 >= 0 && $0 < 10 })
    }

    func testInputMismatchesAreClearErrors() throws {
        let model = try TinyModel()
        let session = try Session(bundle: model.loaded(), device: device())
        func message(_ inputs: [HostTensor]) -> String {
            do {
                _ = try session.run(inputs: inputs)
                return "no error"
            } catch { return "\(error)" }
        }
        let x = input()
        XCTAssertTrue(message([]).contains("missing inputs: x"))
        XCTAssertTrue(message([]).contains("x: float32 [2, 64]"), "lists expected inputs with shapes")
        XCTAssertTrue(message([HostTensor(name: "x", shape: [128], floats: x)]).contains("has shape [128]"))
        XCTAssertTrue(message([HostTensor(name: "x", shape: [2, 64], int64s: x.map { Int64($0) })]).contains("is int64"))
        XCTAssertTrue(message([HostTensor(name: "x", shape: [2, 64], floats: x),
                               HostTensor(name: "z", shape: [1], floats: [0])]).contains("unknown input \"z\""))
        // The session still works after rejected inputs.
        let y = try session.run(inputs: [HostTensor(name: "x", shape: [2, 64], floats: x)])
        assertClose(y[0].floats(), model.reference(x))
    }

    func testUnmetRequirementsAreListedBeforeAnythingIsCreated() throws {
        var requirements = TinyModel.requirements
        requirements.pushConstantBytes = 1 << 20
        requirements.imageArrayLayers = 1 << 30
        let model = try TinyModel(requirements: requirements)
        XCTAssertThrowsError(try Session(bundle: model.loaded(), device: device())) { error in
            guard case let RuntimeError.requirementsUnmet(_, bundle, unmet) = error else {
                return XCTFail("unexpected error \(error)")
            }
            XCTAssertEqual(bundle, "tiny.fmb")
            XCTAssertEqual(unmet.count, 2, "\(unmet)")
            XCTAssertTrue(unmet[0].hasPrefix("push constants: the bundle needs 1048576 bytes, the device allows"), unmet[0])
            XCTAssertTrue(unmet[1].hasPrefix("image array layers: the bundle needs 1073741824"), unmet[1])
            XCTAssertTrue("\(error)".hasPrefix("tiny.fmb cannot run on "), "\(error)")
        }
    }

    func testScheduleThatWouldDeadlockIsRejected() throws {
        var model = try TinyModel()
        model.bundle.schedule.issueStep[4] = 3   // a W1 chunk issued after step 2, which reads W1
        XCTAssertThrowsError(try Session(bundle: model.loaded(), device: device())) { error in
            XCTAssertTrue("\(error)".contains("schedule.issueStep[4]"), "\(error)")
        }
    }

    func testCorruptCompressedChunkFailsTheRunAndTheSessionRecovers() throws {
        var model = try TinyModel()
        let chunk = try XCTUnwrap(model.bundle.chunks.firstIndex { $0.codec == .zstd })
        let range = model.bundle.chunks[chunk].payload
        for i in Int(range.offset)..<Int(range.offset + range.size) { model.payload[i] ^= 0x5A }
        let session = try Session(bundle: model.loaded(), device: device())
        let inputs = [HostTensor(name: "x", shape: [2, 64], floats: input())]
        XCTAssertThrowsError(try session.run(inputs: inputs)) { error in
            XCTAssertTrue("\(error)".contains("chunks[\(chunk)]"), "\(error)")
        }
        // The failed run drained; a later run fails the same way instead of hanging.
        XCTAssertThrowsError(try session.run(inputs: inputs))
    }
}
