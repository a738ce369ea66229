// A bundle with tensor-core kernels (gemm_cm.comp) on a device without VK_NV_cooperative_matrix — lavapipe, what
// CI has — is refused before any Vulkan object is made, naming the extension, why the device cannot, and the
// compile option that avoids it; the same product compiled with `--tensor-cores off` runs. The kernel's numbers
// need a device with the units (Benchmarks/coopmat-bench.sh).

import FMBFormat
import XCTest
@testable import FlashMemCompiler
@testable import FlashMemRuntime
import TestSupport

final class CoopmatDeviceTests: XCTestCase {
    private func bundle(cooperativeMatrix: Bool) throws -> LoadedBundle {
        var b = GraphBuilder()
        b.input("a", [64, 96])
        b.constant("w", [96, 80])
        b.node("MatMul", ["a", "w"], "y", [64, 80])
        b.outputs = ["y"]
        // A tile asked for: the rule leaves a product this small (1 MFLOP) to the plain kernels.
        let program = try Lowering.lower(b.graph(), precision: .fp16, cooperativeMatrix: cooperativeMatrix,
                                         coopmatTile: cooperativeMatrix ? CoopmatTile.small : nil,
                                         compiler: ShaderCompiler())
        var options = CompileOptions()
        options.precision = .fp16
        let compiled = try Compiler.assemble(program, name: "coopmat", options: options)
        return LoadedBundle(bundle: compiled.bundle, payload: compiled.payload)
    }

    func testADeviceWithoutCooperativeMatricesRefusesSuchABundleNamingWhatIsMissing() throws {
        let device = try device()
        try XCTSkipIf(device.hasCooperativeMatrix, "this device has VK_NV_cooperative_matrix; the refusal needs one without")
        let loaded = try bundle(cooperativeMatrix: true)
        XCTAssertEqual(loaded.bundle.meta.requirements.features, .cooperativeMatrixNV)
        XCTAssertThrowsError(try Session(bundle: loaded, device: device)) { error in
            guard case RuntimeError.requirementsUnmet(_, _, let unmet) = error else {
                return XCTFail("expected requirementsUnmet, got \(error)")
            }
            XCTAssertTrue(unmet.contains { $0.contains("cooperativeMatrixNV") }, "\(unmet)")
            XCTAssertTrue(unmet.contains { $0.contains("VK_NV_cooperative_matrix") && $0.contains("--tensor-cores off") },
                          "\(unmet)")
        }
    }

    func testADeviceOpenedWithoutTheExtensionSaysSo() throws {
        let plain = try makeDevice(options: DeviceOptions(cooperativeMatrix: false))
        XCTAssertFalse(plain.hasCooperativeMatrix)
        XCTAssertFalse(plain.deviceLimits.features.contains(.cooperativeMatrixNV))
        let unmet = plain.unmetRequirements(of: try bundle(cooperativeMatrix: true).bundle)
        let reason = plain.physical.cooperativeMatrixUnavailableReason ?? "the device was opened without it"
        XCTAssertTrue(unmet.contains { $0.contains(reason) }, "\(unmet)")
    }

    func testThePlainPathOfTheSameProductRuns() throws {
        let loaded = try bundle(cooperativeMatrix: false)
        XCTAssertEqual(loaded.bundle.meta.requirements.features, [])
        let session = try Session(bundle: loaded, device: device())
        var random = SplitMix(seed: 7)
        let a = (0..<(64 * 96)).map { _ in random.float(in: -1...1) }
        let y = try session.run(inputs: [HostTensor(name: "a", shape: [64, 96], floats: a)])[0]
        XCTAssertEqual(y.shape, [64, 80])
        // GraphBuilder's default weight values, w[k, n] = (7 · (k · 80 + n)) % 11 − 5: small integers, exact in fp16.
        let got = y.floats()
        for m in 0..<64 {
            for n in 0..<80 {
                let want = (0..<96).reduce(0.0) { $0 + Double(a[m * 96 + $1]) * Double((($1 * 80 + n) * 7) % 11 - 5) }
                XCTAssertEqual(Double(got[m * 80 + n]), want, accuracy: 1e-3 * max(1, abs(want)), "y[\(m), \(n)]")
            }
        }
    }
}
