// Device features (format 1.3): `meta.requirements.features` (a reserved 0 before), the must-understand
// `deviceFeatures` header flag, the version the writer stamps, the reader's and validator's rules, and the
// device check. Bundles without features keep their bytes (golden/tiny.fmb, predicated.fmb, placed.fmb).

@testable import FMBFormat
import XCTest

final class DeviceFeatureTests: XCTestCase {
    /// `tiny()` whose first kernel needs cooperative matrices, its SPIR-V declaring the capability.
    static func featured(declared: DeviceFeatures = .cooperativeMatrixNV) -> (bundle: FMBundle, payload: [UInt8]) {
        var (bundle, payload) = Fixtures.tiny()
        // OpCapability Shader, OpCapability CooperativeMatrixNV (5357), OpExtension "SPV_NV_cooperative_matrix"
        // (a stand-in string word), then body words.
        bundle.spirv[0] = [0x0723_0203, 0x0001_0300, 0, 16, 0, 0x0002_0011, 1, 0x0002_0011, 5357,
                           0x0002_000A, 0x5F565053, 0x0003_000E, 0, 3]
        bundle.meta.requirements.features = declared
        return (bundle, payload)
    }

    private func parse(_ file: [UInt8]) throws -> ParsedBundle {
        try file.withUnsafeBytes { try BundleReader.parse(bytes: $0) }
    }

    private func issues(_ file: [UInt8]) -> String {
        do {
            _ = try parse(file)
            return ""
        } catch {
            return "\(error)"
        }
    }

    func testFeaturesRoundTripAsVersion1_3WithTheFlag() throws {
        let (bundle, payload) = Self.featured()
        let parsed = try parse(try BundleWriter.serialize(bundle, payload: payload))
        XCTAssertEqual(parsed.bundle, bundle)
        XCTAssertEqual(parsed.bundle.meta.requirements.features, .cooperativeMatrixNV)
        XCTAssertEqual(parsed.layout.minor, 3)
        XCTAssertEqual(parsed.layout.flags & FileLayout.deviceFeaturesFlag, FileLayout.deviceFeaturesFlag)
        XCTAssertNotEqual(FileLayout.deviceFeaturesFlag & FileLayout.mustUnderstandFlags, 0,
                          "a 1.2 reader must refuse the file rather than run kernels its device may not have")
        XCTAssertTrue(BundleInspector.requirementsLine(parsed.bundle.meta.requirements)
            .hasSuffix("features cooperativeMatrixNV"))
    }

    func testBundlesWithoutFeaturesKeepTheirVersionAndBytes() throws {
        let parsed = try parse(try Fixtures.tinyFile())
        XCTAssertEqual(parsed.layout.minor, 0)
        XCTAssertEqual(parsed.layout.flags, 0)
        XCTAssertEqual(parsed.bundle.meta.requirements.features, [])
    }

    func testFeaturesWithoutTheFlagOrInAnOlderMinorAreRefused() throws {
        let (bundle, payload) = Self.featured()
        var surgery = FileSurgery(try BundleWriter.serialize(bundle, payload: payload))
        surgery.set32(8, surgery.u32(8) & ~FileLayout.deviceFeaturesFlag)
        XCTAssertTrue(issues(surgery.bytes).contains("the deviceFeatures flag (0x4) is not set"), issues(surgery.bytes))

        surgery = FileSurgery(try BundleWriter.serialize(bundle, payload: payload))
        surgery.set16(6, 2)
        XCTAssertTrue(issues(surgery.bytes).contains("in a 1.2 bundle (device features are format 1.3)"),
                      issues(surgery.bytes))
    }

    func testTheFlagWithoutFeaturesIsRefused() throws {
        var surgery = FileSurgery(try Fixtures.tinyFile())
        surgery.set16(6, 3)
        surgery.set32(8, FileLayout.deviceFeaturesFlag)
        XCTAssertTrue(issues(surgery.bytes).contains("the deviceFeatures flag (0x4) is set, but "
                                                     + "meta.requirements.features is 0"), issues(surgery.bytes))
    }

    func testUnknownFeatureBitsAreRefused() throws {
        let (bundle, payload) = Self.featured(declared: DeviceFeatures(rawValue: 0x1 | 0x40))
        let text = issues(try BundleWriter.serialize(bundle, payload: payload))
        XCTAssertTrue(text.contains("unknown device feature bits 0x40"), text)
    }

    func testAKernelWhoseSpirvNeedsAFeatureTheBundleDoesNotDeclareIsRefused() throws {
        let (bundle, _) = Self.featured(declared: [])
        let found = BundleValidator.validate(bundle, dataSize: UInt64(Fixtures.tiny().payload.count))
        XCTAssertTrue(found.contains { $0.path == "meta.requirements.features"
                          && $0.message.contains("kernels[0]") && $0.message.contains("CooperativeMatrixNV") },
                      "\(found)")
        XCTAssertEqual(bundle.requirementsCoveringTables().features, .cooperativeMatrixNV)
        XCTAssertEqual(FMBundle.capabilities(of: bundle.spirv[0]), [1, 5357])
    }

    func testTheDeviceCheckNamesAMissingFeature() {
        let requirements = DeviceRequirements(features: .cooperativeMatrixNV)
        var limits = DeviceLimits(pushConstantBytes: 128, storageBufferRange: 1 << 27, imageDimension2D: 16384,
                                  imageArrayLayers: 2048, workgroupInvocations: 1024, sharedMemoryBytes: 32768)
        XCTAssertEqual(requirements.unmet(by: limits),
                       ["device features: the bundle needs cooperativeMatrixNV, which the device does not offer"])
        limits.features = .cooperativeMatrixNV
        XCTAssertEqual(requirements.unmet(by: limits), [])
    }
}
