import Foundation
import XCTest
@testable import FlashMemRuntime
import CVulkan
import TestSupport

/// Runtime faults (issue 12, item 4): each is a typed error with a message naming what is wrong, and the process, the
/// device and other sessions keep working. Truncated bundles and single-byte flips are `BundleIntegrityTests`';
/// 1,000 sessions created and destroyed are `SessionChurnTests`'.
final class RuntimeFaultTests: XCTestCase {
    let inputs: [HostTensor] = {
        var rng = SplitMix(seed: 11)
        return [HostTensor(name: "x", shape: [2, 64], floats: (0..<TinyModel.n).map { _ in rng.float(in: -1...1) })]
    }()

    func temporaryPath(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(getpid()).fmb").path
    }

    /// A healthy session on the shared device still runs and matches the CPU: the fault left nothing broken.
    func assertDeviceStillWorks(file: StaticString = #filePath, line: UInt = #line) throws {
        let model = try TinyModel()
        let y = try Session(bundle: model.loaded(), device: device()).run(inputs: inputs)
        let expected = model.reference(inputs[0].floats())
        for (g, e) in zip(y[0].floats(), expected) {
            XCTAssertEqual(g, e, accuracy: 1e-5 * max(1, abs(e)), file: file, line: line)
        }
    }

    /// Lavapipe cannot be made to lose its device, so only the error itself is checked: a lost device says what
    /// it means for the app, other results say only what failed.
    func testALostDeviceSaysTheDeviceAndItsSessionsAreGone() {
        let lost = VulkanError(call: "vkQueueSubmit", result: VK_ERROR_DEVICE_LOST.rawValue, context: "step 3")
        XCTAssertTrue(lost.isDeviceLost)
        XCTAssertTrue(lost.description.hasPrefix("vkQueueSubmit failed (step 3): VK_ERROR_DEVICE_LOST — the GPU was lost"),
                      lost.description)
        XCTAssertTrue(lost.description.contains("open a new Device"), lost.description)
        let oom = VulkanError(call: "vkAllocateMemory", result: VK_ERROR_OUT_OF_DEVICE_MEMORY.rawValue)
        XCTAssertFalse(oom.isDeviceLost)
        XCTAssertEqual(oom.description, "vkAllocateMemory failed: VK_ERROR_OUT_OF_DEVICE_MEMORY")
    }

    func testAWaitThatRunsOutOfTimeSaysHowToWaitLonger() {
        let late = VulkanError(call: "vkWaitSemaphores", result: VK_TIMEOUT.rawValue,
                               context: "timeline value 294, after waiting 600 s")
        XCTAssertTrue(late.isTimeout)
        XCTAssertFalse(late.isDeviceLost)
        XCTAssertTrue(late.description.hasPrefix("vkWaitSemaphores failed (timeline value 294, after waiting 600 s): VK_TIMEOUT"),
                      late.description)
        XCTAssertTrue(late.description.contains("waitTimeoutSeconds (fmrun --wait-timeout SECONDS)"), late.description)
        XCTAssertFalse(VulkanError(call: "vkAllocateMemory", result: VK_ERROR_OUT_OF_DEVICE_MEMORY.rawValue).isTimeout)
    }

    func testMissingFileIsAFileErrorNamingThePath() throws {
        XCTAssertThrowsError(try openBundle(path: "/nonexistent/model.fmb")) { error in
            guard let error = error as? FileError else { return XCTFail("not a FileError: \(error)") }
            XCTAssertEqual(error.path, "/nonexistent/model.fmb")
            XCTAssertEqual(error.errno, ENOENT)
        }
        try assertDeviceStillWorks()
    }

    func testWrongInputNameDtypeAndShapeAreInputMismatches() throws {
        let session = try Session(bundle: TinyModel().loaded(), device: device())
        let x = inputs[0]
        let cases: [(given: [HostTensor], says: String)] = [
            ([HostTensor(name: "q", shape: [2, 64], floats: x.floats())], "unknown input \"q\""),
            ([HostTensor(name: "x", shape: [2, 64], int64s: x.floats().map { Int64($0) })], "is int64"),
            ([HostTensor(name: "x", shape: [64, 2], floats: x.floats())], "has shape [64, 2]"),
            ([HostTensor(name: "x", shape: [2, 64], floats: x.floats()), x], "x"),
        ]
        for (given, says) in cases {
            XCTAssertThrowsError(try session.run(inputs: given)) { error in
                guard case RuntimeError.inputMismatch = error else { return XCTFail("not an input mismatch: \(error)") }
                XCTAssertTrue("\(error)".contains(says), "\(error)")
                XCTAssertTrue("\(error)".contains("x: float32 [2, 64]"), "lists the expected inputs: \(error)")
            }
        }
        XCTAssertEqual(try session.run(inputs: inputs)[0].shape, [2, 64], "the session runs after rejected inputs")
    }

    /// A bundle written in place or truncated while a session holds its mapping: the next run (or preload) is a
    /// `bundleChanged` error instead of silently streaming bytes no checksum looks at again (warm runs skip verified
    /// chunks) or a SIGBUS on pages past the new end. Reopening the file then sees the change for what it is.
    func testBundleChangedOnDiskWhileMappedIsAClearError() throws {
        let model = try TinyModel()
        let path = temporaryPath("changed")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let intact = try BundleWriter.serialize(model.bundle, payload: model.payload)
        let layout = try XCTUnwrap(intact.withUnsafeBytes { BundleValidator.checkFile($0).layout })
        let chunk = model.bundle.chunks[0]  // uncompressed, streamed every run
        let chunkByte = layout.dataRange.lowerBound + Int(chunk.payload.offset)

        func writeInPlace(_ bytes: [UInt8], at offset: Int) throws {
            let fd = open(path, O_WRONLY)
            XCTAssertGreaterThanOrEqual(fd, 0)
            defer { close(fd) }
            XCTAssertEqual(bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) }, bytes.count)
        }
        // File modification times come from a coarse clock (a jiffy): let one pass between writes.
        func tick() { usleep(20_000) }

        for mode in LoadMode.allCases {
            // Written in place, same size: one weight byte.
            try Data(intact).write(to: URL(fileURLWithPath: path))
            var session: Session? = try Session(bundle: openBundle(path: path), device: device(),
                                                options: SessionOptions(loadMode: mode))
            let reference = try session!.run(inputs: inputs)[0].bytes
            tick()
            try writeInPlace([intact[chunkByte] ^ 0x40], at: chunkByte)
            XCTAssertThrowsError(try session!.run(inputs: inputs), "\(mode)") { error in
                guard case let RuntimeError.bundleChanged(errorPath, reason) = error else {
                    return XCTFail("\(mode): not bundleChanged: \(error)")
                }
                XCTAssertEqual(errorPath, path)
                XCTAssertTrue(reason.contains("modification time"), reason)
            }
            session = nil
            // Opened again, the flipped byte is found by its chunk's checksum before anything is copied.
            let reopened = try Session(bundle: openBundle(path: path), device: device(), options: SessionOptions(loadMode: mode))
            XCTAssertThrowsError(try reopened.run(inputs: inputs)) { error in
                XCTAssertTrue("\(error)".contains("chunks[0]"), "\(mode): \(error)")
            }

            // Truncated to its first half: reading the chunks' pages now would raise SIGBUS.
            try Data(intact).write(to: URL(fileURLWithPath: path))
            let cut = try Session(bundle: openBundle(path: path), device: device(), options: SessionOptions(loadMode: mode))
            tick()
            XCTAssertEqual(truncate(path, off_t(intact.count / 2)), 0)
            if mode == .preload {
                XCTAssertThrowsError(try cut.loadWeights()) { error in
                    guard case RuntimeError.bundleChanged = error else { return XCTFail("not bundleChanged: \(error)") }
                }
            }
            XCTAssertThrowsError(try cut.run(inputs: inputs), "\(mode)") { error in
                guard case let RuntimeError.bundleChanged(_, reason) = error else {
                    return XCTFail("\(mode): not bundleChanged: \(error)")
                }
                XCTAssertTrue(reason.contains("size went from \(intact.count) to \(intact.count / 2) bytes"), reason)
                XCTAssertTrue("\(error)".hasPrefix("\(path): the file changed on disk"), "\(error)")
            }
            XCTAssertEqual(reference.count, TinyModel.n * 4)
        }
        try assertDeviceStillWorks()
    }

    /// A plan larger than the device: weight segments that each fit one allocation but together pass the heap (a
    /// driver that overcommits, as lavapipe does, would hand them out), and an arena larger than the heap. Both are
    /// `RuntimeError.memory` at session creation, before anything is allocated for the weights.
    func testAPlanLargerThanTheDeviceIsAMemoryError() throws {
        let device = try device()
        let model = try TinyModel()
        let heap = try XCTUnwrap(device.info.deviceLocalHeapBytes.max(), "lavapipe has one device-local heap")
        let segment: UInt64 = 1 << 30
        let allocations = VK.DeviceMemory.live.load(ordering: .relaxed)

        // Weights: W0 and W1 resident in the first segment, W2 resident one segment past the heap's end.
        var bundle = model.bundle
        // Slots of 1 MiB: room for the device's own image sizes (padded past byteSize), so the plan is used as is.
        let slot: UInt64 = 1 << 20
        let far = (heap / segment + 1) * segment
        let offsets: [UInt64] = [0, slot, far]
        bundle.placement = Placement(weightSpaceBytes: far + slot, segmentBytes: segment, slotAlignment: 256,
                                     method: .allResident, slots: offsets.map {
                                         Placement.Slot(resident: true, offset: $0, size: slot) })
        XCTAssertThrowsError(try Session(bundle: LoadedBundle(bundle: bundle, payload: model.payload, path: "huge.fmb"),
                                         device: device)) { error in
            guard case let RuntimeError.memory(what, reason) = error else { return XCTFail("not a memory error: \(error)") }
            XCTAssertEqual(what, "weights")
            XCTAssertTrue(reason.contains("exceed the \(heap)-byte memory heap"), reason)
        }

        // Arena: one buffer larger than the heap.
        bundle = model.bundle
        bundle.meta.arenaSize = alignUp(heap + 1, 4096)
        XCTAssertThrowsError(try Session(bundle: LoadedBundle(bundle: bundle, payload: model.payload, path: "huge.fmb"),
                                         device: device)) { error in
            guard case let RuntimeError.memory(what, reason) = error else { return XCTFail("not a memory error: \(error)") }
            XCTAssertTrue(what.hasPrefix("arena"), what)
            // Past the heap; lavapipe even truncates the buffer's size to 32 bits, which the session refuses first.
            XCTAssertTrue(reason.contains("exceed") || reason.contains("cannot hold this arena"), reason)
        }
        XCTAssertEqual(VK.DeviceMemory.live.load(ordering: .relaxed), allocations, "failed sessions freed what they had")
        try assertDeviceStillWorks()
    }
}
